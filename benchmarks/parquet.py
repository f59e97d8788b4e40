"""Normalized events to Parquet against normalized events to gzip JSONL, in one run: throughput,
bytes written and peak RSS at 10,000 and 1,000,000 events a day. Not part of ``make test``.

Each path is the operator's whole ``execute`` (one day, one part: rotation off, so the Parquet
encoder holds a whole day's part open) into an in-memory counting store, in a process of its own
so its peak RSS (VmHWM) is its own. The day streams from the bundled Mixpanel server over HTTP on
127.0.0.1, gzip on the wire, bodies replayed from memory.

    python benchmarks/parquet.py [--sizes 10000,1000000] [--repeats 2]

Results go to benchmarks/RESULTS.md, between the ``parquet.py`` markers only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

DAY = "2024-03-01"
SIZES = (10_000, 1_000_000)
SECTION = "parquet.py"
RSS_BUDGET_MIB = 64
# (path, output_format, compression, row group MiB of JSONL or None for the default); the last is
# an experiment (why row groups are 32 MiB), not a configuration users get.
EXPERIMENT = "parquet-zstd-64MiB-row-groups"
PATHS = (
    ("jsonl-gzip", "jsonl", "gzip", None),
    ("parquet-zstd", "parquet", "zstd", None),
    ("parquet-snappy", "parquet", "snappy", None),
    (EXPERIMENT, "parquet", "zstd", 64),
)


# ---------------------------------------------------------------- one path, in its own process


def run_child(name: str, events: int) -> None:
    import logging

    from paths import memory_store

    from airflow_provider_mixpanel.transfers import parquet  # imports pyarrow, untimed like every import
    from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

    logging.disable(logging.WARNING)
    _, output_format, compression, row_group_mib = next(p for p in PATHS if p[0] == name)
    if row_group_mib is not None:
        parquet.ROW_GROUP_BYTES = row_group_mib * 1024 * 1024
    suffix = ".parquet" if output_format == "parquet" else ".jsonl.gz"
    operator = MixpanelStreamToS3Operator(
        task_id="bench",
        s3_bucket="sink",
        s3_key=f"bench/{{window}}/part-{{part}}{suffix}",
        from_date=DAY,
        to_date=DAY,
        output_format=output_format,
        compression=compression,
    )
    warmup = _first_use(output_format)
    store = memory_store(keep=False)
    operator._object_store = lambda bucket: store(bucket)  # type: ignore[method-assign]
    operator.hook.settings  # noqa: B018 - connection lookup outside the timing
    started = time.perf_counter()
    manifest = operator.execute({})
    seconds = time.perf_counter() - started
    if manifest["records"] != events:
        raise SystemExit(f"{name}: wrote {manifest['records']} records, expected {events}")
    print(
        json.dumps(
            {
                "path": name,
                "events": events,
                "seconds": seconds,
                "bytes_out": manifest["bytes"],
                "first_use_seconds": warmup,
                **_rss(),
            }
        )
    )


def _first_use(output_format: str) -> float:
    """pyarrow's one-off cost in a process (its compute functions are set up on the first cast,
    ~0.25 s), paid before the timing like an import, and reported on its own."""
    if output_format != "parquet":
        return 0.0
    from airflow_provider_mixpanel.schemas import record_columns
    from airflow_provider_mixpanel.transfers.parquet import ParquetEncoder

    started = time.perf_counter()
    encoder = ParquetEncoder(record_columns("events", raw=False))
    record = {"event_name": "e", "event_time": "2024-03-01T00:00:00+00:00", "distinct_id": "u", "insert_id": "i"}
    encoder.compress(json.dumps({**record, "properties": {}}).encode() + b"\n")
    encoder.flush()
    return time.perf_counter() - started


def _rss() -> dict[str, float]:
    """Peak RSS (VmHWM) of this process, MiB. Not ru_maxrss: it carries the parent's across fork."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return {"peak_rss_mib": int(line.split()[1]) / 1024}
    return {"peak_rss_mib": float("nan")}


# ---------------------------------------------------------------- the run


def measure(name: str, events: int, env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", name, str(events)],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        raise SystemExit(f"{name} {events} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    measured = json.loads([x for x in result.stdout.splitlines() if x.startswith("{")][-1])
    measured["events_per_s"] = events / measured["seconds"]
    print(
        f"  {name:30s} {events:>9,}  {measured['events_per_s']:>9,.0f} ev/s  {measured['bytes_out'] / 1e6:8.1f} MB"
        f"  peak {measured['peak_rss_mib']:6.1f} MiB",
        flush=True,
    )
    return measured


def report(best: dict[tuple[str, int], dict[str, Any]], sizes: list[int], header: str) -> str:
    small, large = sizes[0], sizes[-1]
    lines = [
        header,
        "",
        "## Parquet vs gzip JSONL (normalized events, one part per day, counting store)",
        "",
        f"| path | {' | '.join(f'{n:,} events: ev/s' for n in sizes)} | MB/s of JSONL ({large:,}) "
        f"| bytes written ({large:,}) | vs gzip JSONL | {' | '.join(f'peak RSS {n:,} (MiB)' for n in sizes)} "
        "| RSS growth (MiB) |",
        "|---|" + "---:|" * (2 * len(sizes) + 4),
    ]
    gzip_bytes = best["jsonl-gzip", large]["bytes_out"]
    for name, *_ in PATHS:
        rows = [best[name, n] for n in sizes]
        top = rows[-1]
        jsonl_mb_s = top["jsonl_bytes"] / top["seconds"] / 1e6
        rates = " | ".join(f"{r['events_per_s']:,.0f}" for r in rows)
        peaks = " | ".join(f"{r['peak_rss_mib']:.0f}" for r in rows)
        lines.append(
            f"| {name} | {rates} | {jsonl_mb_s:.0f} | {top['bytes_out']:,} | {top['bytes_out'] / gzip_bytes:.0%} "
            f"| {peaks} | {rows[-1]['peak_rss_mib'] - rows[0]['peak_rss_mib']:+.1f} |"
        )
    growth = {name: best[name, large]["peak_rss_mib"] - best[name, small]["peak_rss_mib"] for name, *_ in PATHS}
    worst = max((name for name in growth if name != EXPERIMENT), key=lambda k: growth[k])
    parquet, gzip_ = best["parquet-zstd", large], best["jsonl-gzip", large]
    pyarrow_mib = best["parquet-zstd", small]["peak_rss_mib"] - best["jsonl-gzip", small]["peak_rss_mib"]
    lines += [
        "",
        f"- Parquet (zstd) at {large:,} events: {parquet['events_per_s']:,.0f} ev/s = "
        f"**{parquet['events_per_s'] / gzip_['events_per_s']:.0%}** of gzip JSONL's {gzip_['events_per_s']:,.0f} ev/s, "
        f"writing **{parquet['bytes_out'] / gzip_['bytes_out']:.0%}** of its bytes.",
        f"- Peak RSS growth from {small:,} to {large:,} events within {RSS_BUDGET_MIB} MiB for every shipped "
        "configuration: largest "
        f"{growth[worst]:+.1f} MiB ({worst}): {'met' if growth[worst] <= RSS_BUDGET_MIB else '**missed**'}. "
        "The Parquet encoder holds one row group's columns (32 MiB of JSONL by default) until it writes them; "
        "JSONL holds nothing past a batch. Row groups of 64 MiB of JSONL (the experiment) grow by "
        f"{growth[EXPERIMENT]:+.1f} MiB, too close to the budget for one window, let alone "
        "several at once: hence 32 MiB.",
        f"- Importing pyarrow costs a worker {pyarrow_mib:.0f} MiB at {small:,} events (Parquet's peak minus gzip "
        f"JSONL's), and its first use {parquet['first_use_seconds']:.2f} s, once per process (excluded from the "
        "times, like imports).",
        "- The synthetic events repeat a handful of templates, so every format compresses them better than real "
        "Mixpanel data; the ratios between formats are what carries over.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        run_child(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="events per day, comma-separated")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each path at each size; the best is kept")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    from run import base_env, load_average, machine, write_section

    from airflow_provider_mixpanel.testing.server import MixpanelTestServer

    started = time.monotonic()
    best: dict[tuple[str, int], dict[str, Any]] = {}
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="bench-parquet-") as scratch:
        env0 = base_env(BENCH_TMP=scratch)
        for events in sizes:
            with MixpanelTestServer(events_per_day=events, cache_bodies=True) as server:
                env = {**env0, "AIRFLOW_CONN_MIXPANEL_DEFAULT": server.connection_json()}
                jsonl_bytes = _jsonl_bytes(server)
                print(f"{events:,} events/day ({jsonl_bytes / events:.0f} bytes of normalized JSONL each)", flush=True)
                for _ in range(args.repeats):  # interleaved: the machine is shared
                    for name, *_ in PATHS:
                        measured = measure(name, events, env)
                        measured["jsonl_bytes"] = jsonl_bytes
                        if (name, events) not in best or measured["seconds"] < best[name, events]["seconds"]:
                            best[name, events] = measured
    loads.append(load_average())
    header = (
        f"Machine: {machine()}; pyarrow {_version('pyarrow')}.\n\n"
        f"Reproduce: `python benchmarks/parquet.py --sizes {','.join(map(str, sizes))} --repeats {args.repeats}`; "
        f"this run took {(time.monotonic() - started) / 60:.1f} min, best of {args.repeats} per path, load average "
        f"{' -> '.join(loads)}. Times exclude interpreter start and imports."
    )
    write_section(SECTION, report(best, sizes, header))
    print(f"Wrote the {SECTION} section of {HERE / 'RESULTS.md'}")


def _jsonl_bytes(server: Any) -> int:
    """Bytes of the day's normalized JSONL (what both formats encode)."""
    from airflow_provider_mixpanel.event_lines import event_line_normalizer

    normalize = event_line_normalizer()
    return sum(len(normalize(line.rstrip(b"\n"))) for line in server.final_day_lines(_day()))


def _day() -> Any:
    from datetime import date

    return date.fromisoformat(DAY)


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
