"""`make bench`: throughput and peak memory of every path, against plain baselines, in one run.

Each path streams the same synthetic day from the bundled Mixpanel server (gzip bodies replayed
from memory, so the server costs almost nothing) and runs in its own process, so its peak RSS is
its own. Results go to benchmarks/RESULTS.md.

    python benchmarks/run.py [--sizes 10000,100000,1000000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import date
from importlib.metadata import version
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from airflow_provider_mixpanel.testing.server import MixpanelTestServer  # noqa: E402
from devtools.emulators import GCSEmulator, S3Emulator  # noqa: E402

BUCKET = "bench-bucket"
SIZES = (10_000, 100_000, 1_000_000)
PATHS = (
    "baseline-ceiling",
    "baseline-naive",
    "hook-normalized",
    "hook-raw",
    "sink-normalized-gzip",
    "sink-raw-gzip",
    "s3-normalized",
    "s3-raw",
    "gcs-normalized",
    "gcs-raw",
    "cli-devnull",
)
LEVELS = (1, 3, 6, 9)
WINDOW_DAYS = 8
WINDOW_EVENTS_PER_DAY = 5_000
# Per-connection throttle of the windows benchmark (gzip bytes/s): one day takes ~3 s to arrive.
THROTTLE_BYTES_PER_SECOND = 100_000
WINDOWS_TARGET = 3.0
RSS_BUDGET_MIB = 64
NORMALIZED_TARGET = 3.0
RAW_TARGET = 0.70


def run_path(path: str, events: int, env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, str(HERE / "paths.py"), path, str(events)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if result.returncode != 0:
        raise SystemExit(f"{path} {events} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    line = [x for x in result.stdout.splitlines() if x.startswith("{")][-1]
    measured = json.loads(line)
    measured["events_per_s"] = measured["events"] / measured["seconds"]
    print(
        f"  {path:24s} {events:>9,} events  {measured['events_per_s']:>10,.0f} ev/s  "
        f"peak {measured['peak_rss_mib']:7.1f} MiB",
        flush=True,
    )
    return measured


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = ", ".join(
        f"{p} {version(p)}"
        for p in ("apache-airflow", "msgspec", "requests", "urllib3", "boto3", "google-cloud-storage")
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; {versions}"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop every server
    sizes = [int(s) for s in args.sizes.split(",")]
    paths = args.paths.split(",")
    results: dict[tuple[str, int], dict] = {}
    levels: dict[str, dict] = {}
    windows: dict[str, dict] = {}
    bytes_per_event = 0.0
    started = time.monotonic()
    with S3Emulator() as s3, GCSEmulator() as gcs:
        s3.client().create_bucket(Bucket=BUCKET)
        gcs.client().create_bucket(BUCKET)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
        base_env.update(
            AIRFLOW_HOME=str(HERE / ".airflow-home"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW_CONN_AWS_DEFAULT=s3.connection_json(),
            AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT=gcs.connection_json(),
            STORAGE_EMULATOR_HOST=gcs.url,
            BENCH_BUCKET=BUCKET,
            PYTHONPATH=str(HERE.parent),
        )
        for events in sizes:
            with MixpanelTestServer(events_per_day=events, cache_bodies=True) as server:
                env = {**base_env, "AIRFLOW_CONN_MIXPANEL_DEFAULT": server.connection_json()}
                warm = requests.get(
                    f"{server.url}/api/2.0/export",
                    params={"from_date": "2024-03-01", "to_date": "2024-03-01", "project_id": 12345},
                    auth=("test-user", "test-secret"),
                    headers={"Accept-Encoding": "gzip"},
                    timeout=600,
                )
                warm.raise_for_status()
                bytes_per_event = len(warm.content) / events
                print(f"{events:,} events/day: {bytes_per_event:.0f} bytes per event", flush=True)
                for path in paths:
                    results[path, events] = run_path(path, events, env)
                if events == max(sizes):
                    for level in LEVELS:
                        measured = run_path("sink-normalized-gzip", events, {**env, "BENCH_GZIP_LEVEL": str(level)})
                        levels[f"gzip level {level}"] = measured
                    levels["zstd level 3"] = run_path("sink-normalized-zstd", events, env)
                    levels["none"] = run_path("sink-normalized-none", events, env)
        throttled = MixpanelTestServer(events_per_day=WINDOW_EVENTS_PER_DAY, bytes_per_second=THROTTLE_BYTES_PER_SECOND)
        with throttled:
            env = {**base_env, "AIRFLOW_CONN_MIXPANEL_DEFAULT": throttled.connection_json()}
            print(
                f"Windows: {WINDOW_DAYS} days x {WINDOW_EVENTS_PER_DAY:,} events, throttled per connection", flush=True
            )
            for name in ("windows-1", "windows-4"):
                windows[name] = run_path(name, WINDOW_DAYS * WINDOW_EVENTS_PER_DAY, env)
    speeds = compression_speeds()
    report = render(results, levels, windows, speeds, bytes_per_event, sizes, paths, time.monotonic() - started)
    Path(args.output).write_text(report)
    print(f"\nWrote {args.output}")
    return 0 if "**missed**" not in report else 1


def compression_speeds() -> dict[str, tuple[float, float]]:
    """Single-thread speed (MB/s of JSONL in) and size ratio of each compressor on the same data."""
    import zlib

    import zstandard

    from airflow_provider_mixpanel.jsonl import dumps_line
    from airflow_provider_mixpanel.records import normalize_event
    from airflow_provider_mixpanel.testing.data import SyntheticEvents

    lines = SyntheticEvents(100_000).day_lines(date(2024, 3, 1))
    data = b"".join(dumps_line(normalize_event(json.loads(line))) for line in lines)
    measured = {}
    for name, compress in {
        "gzip level 1": lambda d: zlib.compress(d, 1, 31),
        "gzip level 6": lambda d: zlib.compress(d, 6, 31),
        "gzip level 9": lambda d: zlib.compress(d, 9, 31),
        "zstd level 1": lambda d: zstandard.ZstdCompressor(level=1).compress(d),
        "zstd level 3": lambda d: zstandard.ZstdCompressor(level=3).compress(d),
    }.items():
        best = float("inf")
        for _ in range(3):
            begin = time.perf_counter()
            out = compress(data)
            best = min(best, time.perf_counter() - begin)
        measured[name] = (len(data) / 1e6 / best, len(out) / len(data))
    return measured


def render(
    results: dict,
    levels: dict,
    windows: dict,
    speeds: dict,
    bytes_per_event: float,
    sizes: list[int],
    paths: list[str],
    elapsed: float,
) -> str:
    big, small = max(sizes), min(sizes)
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {machine()}.",
        "",
        f"Reproduce: `make bench` (`python benchmarks/run.py --sizes {','.join(map(str, sizes))}`); "
        f"this run took {elapsed / 60:.1f} min. Every path streams the same synthetic day (about "
        f"{bytes_per_event:.0f}-byte "
        "events with nested properties and non-ASCII text) from the bundled Mixpanel server over HTTP on "
        "127.0.0.1, gzip on the wire, and runs in its own process; times exclude interpreter start and "
        "imports except for the CLI. The *sink* paths run the operators' whole write path (JSONL, "
        "compression on the writer thread, part rotation) into the same counting sink as the baselines.",
        "",
        "## Throughput and peak memory",
        "",
        "| path | "
        + " | ".join(f"{n:,} events: ev/s" for n in sizes)
        + " | MB/s (largest) | "
        + " | ".join(f"peak RSS {n:,} (MiB)" for n in sizes)
        + " |",
        "|---|" + "---:|" * (2 * len(sizes) + 1),
    ]
    for path in paths:
        row = [path]
        row += [f"{results[path, n]['events_per_s']:,.0f}" for n in sizes]
        largest = results[path, big]
        row.append(f"{largest['events'] * bytes_per_event / 1e6 / largest['seconds']:,.0f}")
        row += [f"{results[path, n]['peak_rss_mib']:.0f}" for n in sizes]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Targets (same run, same sink)", ""]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    naive = results["baseline-naive", big]["events_per_s"]
    ceiling = results["baseline-ceiling", big]["events_per_s"]
    normalized = results["sink-normalized-gzip", big]["events_per_s"]
    raw = results["sink-raw-gzip", big]["events_per_s"]
    lines.append(
        f"- Normalized events to gzip JSONL: {normalized:,.0f} ev/s = **{normalized / naive:.1f}x** the naive "
        f"baseline ({naive:,.0f} ev/s); target >= {NORMALIZED_TARGET:.0f}x: "
        f"{verdict(normalized / naive >= NORMALIZED_TARGET)}."
    )
    lines.append(
        f"- Raw events to gzip: {raw:,.0f} ev/s = **{raw / ceiling:.0%}** of the byte ceiling "
        f"({ceiling:,.0f} ev/s); target >= {RAW_TARGET:.0%}: {verdict(raw / ceiling >= RAW_TARGET)}."
    )
    worst = max(paths, key=lambda p: results[p, big]["peak_rss_mib"] - results[p, small]["peak_rss_mib"])
    growth = results[worst, big]["peak_rss_mib"] - results[worst, small]["peak_rss_mib"]
    lines.append(
        f"- Peak RSS at {big:,} events within {RSS_BUDGET_MIB} MiB of {small:,} for every path: largest growth "
        f"{growth:.1f} MiB ({worst}): {verdict(growth <= RSS_BUDGET_MIB)}."
    )
    for path in paths:
        grow = results[path, big]["peak_rss_mib"] - results[path, small]["peak_rss_mib"]
        before, after = results[path, small]["peak_rss_mib"], results[path, big]["peak_rss_mib"]
        lines.append(f"  - {path}: {before:.0f} -> {after:.0f} MiB (+{grow:.1f})")
    if levels:
        lines += [
            "",
            f"## Compression ({big:,} normalized events, sink path)",
            "",
            "| compression | ev/s | output MB | ratio to uncompressed |",
            "|---|---:|---:|---:|",
        ]
        one, six = levels["gzip level 1"], levels["gzip level 6"]
        lines.insert(
            len(lines) - 2,
            f"Default gzip level: 6. It writes {1 - six['bytes_out'] / one['bytes_out']:.0%} less than level 1 "
            f"at {six['events_per_s'] / one['events_per_s']:.0%} of its speed in this run (compression runs on "
            "the writer thread beside the parsing; these rows move by 10-20% between runs on this shared 2-core "
            "machine). Real exports arrive far slower than either level compresses (Mixpanel takes minutes to "
            "serve a large day), so the default favours smaller files; pass compression_level=1 where the "
            "worker's CPU is the limit. Level 9 saves little more. zstd level 3 writes the smallest files and, "
            "alone on one core, compresses several times faster than gzip (second table).\n",
        )
        plain = levels["none"]["bytes_out"]
        for name, measured in levels.items():
            lines.append(
                f"| {name} | {measured['events_per_s']:,.0f} | {measured['bytes_out'] / 1e6:,.1f} | "
                f"{measured['bytes_out'] / plain:.3f} |"
            )
    if speeds:
        lines += [
            "",
            "Single-thread compression of the same normalized JSONL (87 MB), best of 3:",
            "",
            "| compressor | MB/s in | size ratio |",
            "|---|---:|---:|",
        ]
        lines += [f"| {name} | {speed:,.0f} | {ratio:.3f} |" for name, (speed, ratio) in speeds.items()]
    if windows:
        one, four = windows["windows-1"], windows["windows-4"]
        gain = four["events_per_s"] / one["events_per_s"]
        lines += [
            "",
            f"## Concurrent windows ({WINDOW_DAYS} days x {WINDOW_EVENTS_PER_DAY:,} events, server throttled to "
            f"{THROTTLE_BYTES_PER_SECOND / 1e3:.0f} kB/s per connection, sink path)",
            "",
            "| max_active_windows | ev/s | seconds | peak RSS (MiB) |",
            "|---:|---:|---:|---:|",
            f"| 1 | {one['events_per_s']:,.0f} | {one['seconds']:.1f} | {one['peak_rss_mib']:.0f} |",
            f"| 4 | {four['events_per_s']:,.0f} | {four['seconds']:.1f} | {four['peak_rss_mib']:.0f} |",
            "",
            f"- 4 windows at once: **{gain:.1f}x** the throughput of one; target >= {WINDOWS_TARGET:.0f}x: "
            f"{verdict(gain >= WINDOWS_TARGET)}. Memory grows by "
            f"{four['peak_rss_mib'] - one['peak_rss_mib']:.0f} MiB for 3 more windows (a part buffer, a batch "
            "queue and a response buffer each).",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
