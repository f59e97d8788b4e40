"""The cost of deriving the identity mappings on the events path, in one run: the operator's whole
``execute`` with and without ``identity_key``, normalized and raw, interleaved, best of each; the
per-line cost on the JSONL roads; and the memory of the devices remembered. Not part of ``make test``.

The day is a file of synthetic export lines with visitors on Simplified ID Merge (most of them
identified by then, several devices each), written once and served by the bundled Mixpanel server
over HTTP on 127.0.0.1, gzip on the wire, replayed from memory; the operator writes into an
in-memory counting store.

    python benchmarks/identity.py [--events 100000] [--repeats 2]

Results go to benchmarks/RESULTS.md, between the ``identity.py`` markers only.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from paths import memory_store  # noqa: E402
from run import load_average, machine, write_section  # noqa: E402

from airflow_provider_mixpanel.event_lines import event_line_normalizer, raw_line_checker  # noqa: E402
from airflow_provider_mixpanel.identity import IdentityMappings  # noqa: E402
from airflow_provider_mixpanel.testing import IdentityMerge, MixpanelTestServer  # noqa: E402
from airflow_provider_mixpanel.testing.data import SyntheticEvents  # noqa: E402

DAY = date(2024, 4, 15)
SECTION = "identity.py"


# (name, events per new visitor): how many events a device has in the day. "sparse": about two
# events per device a day, most identified lines a device's first of the day (the worst case);
# "busy": about thirty (sessions of a few dozen events, as an active product has).
SCENARIOS = (("sparse", 100), ("busy", 3000))


def export_file(events: int, folder: Path, per_visitor: int) -> tuple[Path, dict[str, int]]:
    """One day of export lines whose visitors arrived over the 45 days before, as an export at the
    end of the day answers them; and what the day holds."""
    identity = IdentityMerge(start=DAY - timedelta(days=45), new_visitors_per_day=max(1, events // per_visitor))
    synthetic = SyntheticEvents(events, identity=identity)
    assert synthetic.visitors is not None
    at = int(datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC).timestamp() * 1000) + 86_400_000
    path = folder / f"day-{per_visitor}.jsonl"
    identified = 0
    with path.open("wb") as out:
        for line in synthetic.day_lines(DAY, resolve=synthetic.visitors.resolved_at(at)):
            identified += b'"$user_id"' in line
            out.write(line)
    return path, {"events": events, "identified": identified}


def operator_rate(*, identity: bool, raw: bool) -> tuple[float, int]:
    """Events per second of the operator's whole execute, and the mappings it wrote."""
    from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

    options: dict[str, Any] = {"identity_key": "id/{window}/part-{part}.jsonl.gz"} if identity else {}
    operator = MixpanelStreamToS3Operator(
        task_id="bench",
        s3_bucket="sink",
        s3_key="ev/{window}/part-{part}.jsonl.gz",
        from_date=str(DAY),
        to_date=str(DAY),
        raw=raw,
        **options,
    )
    store = memory_store(keep=False)
    operator._object_store = lambda bucket: store(bucket)  # type: ignore[method-assign]
    operator.hook.settings  # noqa: B018 - connection lookup outside the timing
    started = time.perf_counter()
    manifest = operator.execute({})
    seconds = time.perf_counter() - started
    return manifest["records"] / seconds, (manifest["identity"] or {}).get("records", 0)


def line_costs(path: Path, rounds: int = 5) -> dict[str, float]:
    """Microseconds per line of each JSONL road, with and without the identity mappings."""
    lines = path.read_bytes().splitlines()
    costs: dict[str, float] = {}
    for road in ("normalized", "raw"):
        for with_identity in (False, True):
            best = float("inf")
            for _ in range(rounds):
                mappings = IdentityMappings() if with_identity else None
                convert = raw_line_checker(mappings) if road == "raw" else event_line_normalizer(identity=mappings)
                started = time.perf_counter()
                for line in lines:
                    convert(line)
                best = min(best, time.perf_counter() - started)
            costs[f"{road}{'+identity' if with_identity else ''}"] = best / len(lines) * 1e6
    return costs


def remembered_memory(devices: int, bound: int) -> float:
    """Peak MiB traced while ``devices`` distinct devices each map once, remembering at most ``bound``."""
    line = (
        b'{"event":"Sign Up","properties":{"time":1713139200,"distinct_id":"u%d","$device_id":"%016x",'
        b'"$insert_id":"i%d","$user_id":"u%d"}}'
    )
    mappings = IdentityMappings(lambda mapping: None, max_devices=bound)
    convert = event_line_normalizer(identity=mappings)
    tracemalloc.start()
    for n in range(devices):
        convert(line % (n, n, n, n))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    loads = [load_average()]
    started = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name, per_visitor in SCENARIOS:
            path, day = export_file(args.events, Path(folder), per_visitor)
            with MixpanelTestServer(export_file=path, cache_bodies=True) as server:
                os.environ["AIRFLOW_CONN_MIXPANEL_DEFAULT"] = server.connection_json()
                operator_rate(identity=False, raw=False)  # warm the server's body cache and the imports
                runs: dict[tuple[bool, bool], list[float]] = {}
                mappings = 0
                for _ in range(args.repeats):
                    for raw in (False, True):
                        for identity in (False, True):
                            rate, written = operator_rate(identity=identity, raw=raw)
                            runs.setdefault((raw, identity), []).append(rate)
                            mappings = max(mappings, written)
            results.append((name, day, runs, mappings, line_costs(path)))
            loads.append(load_average())
    bound = 100_000
    memory = {n: remembered_memory(n, bound) for n in (100_000, 1_000_000)}
    loads.append(load_average())
    minutes = (time.monotonic() - started) / 60
    body = render(args, results, memory, bound, loads, minutes)
    write_section(SECTION, body)
    print(body)
    return 0


def render(
    args: argparse.Namespace,
    results: list[tuple[str, dict[str, int], dict[tuple[bool, bool], list[float]], int, dict[str, float]]],
    memory: dict[int, float],
    bound: int,
    loads: list[str],
    minutes: float,
) -> str:
    lines = [
        "## Identity mappings on the events path (issue 22)",
        "",
        f"Machine: {machine()}. Load average at the start, after each scenario and at the end: "
        f"{' / '.join(loads)}; the two cores are shared, so read the ratios, taken within this run.",
        "",
        f"Reproduce: `python benchmarks/identity.py --events {args.events} --repeats {args.repeats}` "
        f"({minutes:.1f} min). One day of {args.events:,} synthetic export lines on Simplified ID Merge "
        "(visitors who arrived over 45 days, most logged in by then, on one to three devices), served by the "
        "bundled server (gzip, replayed from memory); the operator's whole `execute` into an in-memory counting "
        f"store, with and without `identity_key`, interleaved, best of {args.repeats}. *Sparse*: about two events "
        "per device that day, so nearly every identified device's line is its first of the day and writes a "
        "mapping (the worst case); *busy*: about thirty.",
        "",
        "| scenario | lines with `$user_id` | mappings written | output | without: events/s | with "
        "`identity_key`: events/s | overhead | per line without / with (µs) |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for name, day, runs, mappings, costs in results:
        for raw in (False, True):
            without, with_ = max(runs[(raw, False)]), max(runs[(raw, True)])
            road = "raw" if raw else "normalized"
            lines.append(
                f"| {name} | {day['identified']:,} | {mappings:,} | {road} gzip JSONL | {without:,.0f} | "
                f"{with_:,.0f} | **{(without / with_ - 1) * 100:+.0f}%** | "
                f"{costs[road]:.2f} / {costs[road + '+identity']:.2f} |"
            )
    lines += [
        "",
        "Runs, events/s: "
        + "; ".join(
            f"{name} {'raw' if raw else 'normalized'}{' + identity' if identity else ''} "
            + ", ".join(f"{r:,.0f}" for r in runs[(raw, identity)])
            for name, _, runs, _, _ in results
            for raw in (False, True)
            for identity in (False, True)
        )
        + ". Per line: the day's lines through the JSONL road alone in this process, best of 5.",
        "",
        "The normalized road reads `$device_id` and `$user_id` in the parse it already does; an identified "
        "line then costs a dictionary lookup when its device is written already, and a mapping record when "
        "it is not. The raw road's object check becomes a parse that reads them.",
        "",
        f"Memory of the devices remembered (bound {bound:,}), traced peak while every line maps a new "
        "device: " + "; ".join(f"{n:,} devices {mib:.1f} MiB" for n, mib in memory.items()) + ": flat past the bound.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
