"""Late events: what a daily export at 00:30 loses, and what ``lookback_days`` recovers. Not part
of ``make test``.

The bundled Mixpanel server processes each event late by a lag drawn from its late-arrival model
(90% within a minute, a tail of hours, 0.5% up to five days; see ``docs/testing.rst``) and, on a
manual clock, answers an export at simulated time T with the events processed by T. The S3
operator (moto's S3 server, in this process) runs 30 consecutive daily runs, each at 00:30 of the
day after the day it exports:

- ``lookback_days=0``: the share of each day's final events that never reach storage;
- ``lookback_days=5``: every day older than five days must hold exactly the server's final content
  (its ``$insert_id`` list, in order, each once); the share still missing for the most recent days.

    python benchmarks/lateness.py [--days 30] [--events-per-day 20000] [--lookback-days 5]

Results go to benchmarks/RESULTS.md, between the ``lateness.py`` markers only.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

SECTION = "lateness.py"
# The first day exported; any day works, the lags are drawn per (day, index).
FIRST_DAY = date(2024, 3, 1)
DAYS = 30
# Enough events that a share of 0.1% is 20 events.
EVENTS_PER_DAY = 20_000
# Mixpanel's /track accepts events up to 5 days old: the example DAG's choice.
LOOKBACK_DAYS = 5
# A daily run's time: half an hour after the day it exports ends.
RUN_AFTER_DAY_END = timedelta(minutes=30)
BUCKET = "lateness"
ONE_DAY = timedelta(days=1)


@dataclass
class Phase:
    """One series of daily runs with one ``lookback_days``."""

    lookback_days: int
    prefix: str
    requests: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    manifests: int = 0
    days: dict[date, DayResult] = field(default_factory=dict)


@dataclass(frozen=True)
class DayResult:
    """What storage holds for a day after the last run, against the day's final content."""

    stored: int
    final: int
    #: the final content exactly: its $insert_id list, in order, each once
    exact: bool
    #: every stored record is in the final content, and stored once
    subset_once: bool

    @property
    def missing(self) -> float:
        return 1 - self.stored / self.final if self.final else 0.0


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def run_phase(server: Any, s3: Any, phase: Phase, days: list[date]) -> None:
    from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

    started = time.perf_counter()
    for day in days:
        server.clock.set(midnight(day) + ONE_DAY + RUN_AFTER_DAY_END)
        before = len(server.export_requests())
        result = MixpanelStreamToS3Operator(
            task_id=f"daily_{day}",
            s3_bucket=BUCKET,
            s3_key=f"{phase.prefix}/{{window}}/part-{{part}}.jsonl.gz",
            from_date=str(day),
            to_date=str(day),
            lookback_days=phase.lookback_days,
            max_file_size_bytes=256 * 1024 * 1024,
        ).execute({})
        phase.requests += len(server.export_requests()) - before
        phase.bytes_written += result["bytes"]
        phase.manifests += len(result["manifests"])
    phase.seconds = time.perf_counter() - started
    client = s3.client()
    for day in days:
        ids = stored_insert_ids(client, f"{phase.prefix}/{day}/")
        expected = list(server.expected_insert_ids(day))
        once = len(set(ids)) == len(ids)
        phase.days[day] = DayResult(
            len(ids), len(expected), ids == expected and once, once and set(ids) <= set(expected)
        )


def stored_insert_ids(client: Any, prefix: str) -> list[str]:
    """The insert ids of a day's parts, in part order (the manifest lists the parts)."""
    manifest = json.loads(client.get_object(Bucket=BUCKET, Key=f"{prefix}_manifest.json")["Body"].read())
    ids: list[str] = []
    for part in manifest["parts"]:
        key = part["uri"].split(f"{BUCKET}/", 1)[1]
        body = gzip.decompress(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        ids += [json.loads(line)["insert_id"] for line in body.splitlines()]
    return ids


def report(no_lookback: Phase, lookback: Phase, days: list[date], events_per_day: int, header: str) -> str:
    last = days[-1]
    losses = [result.missing for result in no_lookback.days.values()]
    settled = [d for d in days if (last - d).days >= lookback.lookback_days]
    recent = [d for d in days if (last - d).days < lookback.lookback_days]
    exact = [d for d in settled if lookback.days[d].exact]
    per_run = len(days)
    lines = [
        header,
        "",
        f"## Late events: {len(days)} daily runs at 00:30 "
        f"({events_per_day:,} events a day, default late-arrival model)",
        "",
        f"| | lookback_days=0 | lookback_days={lookback.lookback_days} |",
        "|---|---:|---:|",
        f"| export requests per run | {no_lookback.requests / per_run:.0f} | {lookback.requests / per_run:.0f} |",
        f"| bytes written per run (gzip) | {no_lookback.bytes_written / per_run:,.0f} | "
        f"{lookback.bytes_written / per_run:,.0f} |",
        f"| manifests written per run | {no_lookback.manifests / per_run:.0f} | {lookback.manifests / per_run:.0f} |",
        f"| seconds for {per_run} runs | {no_lookback.seconds:.0f} | {lookback.seconds:.0f} |",
        "",
        "- `lookback_days=0`: each day's final events that never reach storage: mean "
        f"**{statistics.mean(losses):.2%}**, min {min(losses):.2%}, max {max(losses):.2%} (of {events_per_day:,} a "
        "day). Every stored record is in the final content, stored once: "
        f"{all(r.subset_once for r in no_lookback.days.values())}.",
        f"- `lookback_days={lookback.lookback_days}`: **{len(exact)} of {len(settled)}** days older than "
        f"{lookback.lookback_days} days hold exactly the server's final content ($insert_id list equal, in order, "
        "each record once).",
        f"- `lookback_days={lookback.lookback_days}`, the most recent days after the last run "
        f"(at {last + ONE_DAY} 00:30), share still missing:",
        "",
        "| day | age at the last run (days) | re-exports so far | missing |",
        "|---|---:|---:|---:|",
    ]
    for day in reversed(recent):
        age = (last - day).days
        lines.append(f"| {day} | {age} | {age} | {lookback.days[day].missing:.3%} |")
    ratio = lookback.bytes_written / no_lookback.bytes_written if no_lookback.bytes_written else 0.0
    lines += [
        "",
        f"- Cost of `lookback_days={lookback.lookback_days}`: "
        f"{lookback.requests / no_lookback.requests:.0f}x the export requests "
        f"({lookback.requests / per_run:.0f} a run, of Mixpanel's 60 per project per hour) and "
        f"{ratio:.1f}x the bytes.",
        "- The killed-worker case (a real `SIGKILL` with a multipart upload open, then the next run) is the test "
        "`tests/integration/transfers/test_crash_leftovers.py::test_sigkilled_upload_is_aborted_by_the_next_run`: "
        "the next run aborts the leftover upload and writes a complete day with its manifest.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--events-per-day", type=int, default=EVENTS_PER_DAY)
    parser.add_argument("--lookback-days", type=int, default=LOOKBACK_DAYS)
    parser.add_argument("--output", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()

    os.environ.setdefault("AIRFLOW_HOME", str(HERE / ".airflow-home"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)
    from run import load_average, machine, write_section

    from airflow_provider_mixpanel.testing import MixpanelTestServer, SimClock
    from devtools.emulators import S3Emulator

    logging.disable(logging.WARNING)  # a log line per part and per run otherwise
    days = [FIRST_DAY + n * ONE_DAY for n in range(args.days)]
    started = time.perf_counter()
    load_before = load_average()
    clock = SimClock.manual(midnight(FIRST_DAY))
    with (
        MixpanelTestServer(events_per_day=args.events_per_day, late_arrival=True, clock=clock) as server,
        S3Emulator() as s3,
    ):
        os.environ["AIRFLOW_CONN_MIXPANEL_DEFAULT"] = server.connection_json()
        os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = s3.connection_json()
        s3.client().create_bucket(Bucket=BUCKET)
        no_lookback = Phase(0, "lookback-0")
        run_phase(server, s3, no_lookback, days)
        print(f"lookback_days=0: {no_lookback.requests} requests in {no_lookback.seconds:.0f} s", flush=True)
        lookback = Phase(args.lookback_days, f"lookback-{args.lookback_days}")
        run_phase(server, s3, lookback, days)
        print(f"lookback_days={args.lookback_days}: {lookback.requests} requests in {lookback.seconds:.0f} s")
    minutes = (time.perf_counter() - started) / 60
    header = (
        f"Machine: {machine()}.\n\nReproduce: `python benchmarks/lateness.py --days {args.days} --events-per-day "
        f"{args.events_per_day} --lookback-days {args.lookback_days}`; this run took {minutes:.1f} min, load "
        f"average {load_before} -> {load_average()}. Simulated time on a manual clock: each run is set to 00:30 of "
        "the day after the day it exports; the S3 operator writes to moto's S3 server."
    )
    body = report(no_lookback, lookback, days, args.events_per_day, header)
    print(body)
    write_section(SECTION, body, Path(args.output))
    print(f"Wrote the {SECTION} section of {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
