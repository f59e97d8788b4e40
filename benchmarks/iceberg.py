"""Iceberg table output against plain Parquet parts (issue 21), printed as Markdown for RESULTS.md.

1. Commit time per window against the time to write its parts: one day of N events (default
   100,000) through the operator into moto's S3 with a SQLite catalog; the commit is timed inside
   the run (``IcebergTable.commit``), the rest of the execute is the parts.
2. A backfill of D days (default 30) into the table and into plain Parquet parts, same server,
   same settings: wall time ratio.
3. Catalog metadata after R daily look-back runs (default 365 runs of 6 days each, one small part
   per day, local warehouse): bytes of the table's metadata folder, without and with snapshot
   expiry (keep the snapshots of the last 7 runs).

    python benchmarks/iceberg.py [--events 100000] [--days 30] [--runs 365]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from airflow_provider_mixpanel.testing.server import MixpanelTestServer  # noqa: E402
from devtools.emulators import S3Emulator  # noqa: E402

FIRST_DAY = date(2024, 1, 1)
# The daily example's look-back: each run commits this many days before its own.
LOOKBACK_DAYS = 5
# Expiry keeps the snapshots of this many runs (a week of daily runs, for time travel).
KEEP_RUNS = 7


def _environment(s3: S3Emulator, mixpanel: MixpanelTestServer, home: Path) -> dict[str, str]:
    properties = {
        "type": "sql",
        "uri": f"sqlite:///{home}/catalog.db",
        "warehouse": "s3://bench/warehouse",
        "s3.endpoint": s3.url,
        "s3.access-key-id": "testing",
        "s3.secret-access-key": "testing",
        "s3.region": "us-east-1",
    }
    return {
        "AIRFLOW_CONN_ICEBERG_DEFAULT": json.dumps({"conn_type": "iceberg", "extra": properties}),
        "AIRFLOW_CONN_AWS_DEFAULT": s3.connection_json(),
        "AIRFLOW_CONN_MIXPANEL_DEFAULT": mixpanel.connection_json(),
    }


def _export(first: date, last: date, *, table: str | None, key: str) -> tuple[float, list[float]]:
    """Wall seconds of one execute, and the seconds of each Iceberg commit in it."""
    from airflow_provider_mixpanel.transfers import iceberg_table
    from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

    commits: list[float] = []
    real_commit = iceberg_table.IcebergTable.commit

    def timed(self, window, parts):
        started = time.perf_counter()
        try:
            return real_commit(self, window, parts)
        finally:
            commits.append(time.perf_counter() - started)

    iceberg_table.IcebergTable.commit = timed  # type: ignore[method-assign]
    try:
        operator = MixpanelStreamToS3Operator(
            task_id="bench",
            s3_bucket="bench",
            s3_key=key,
            output_format="parquet",
            window_days=1,
            max_active_windows=4,
            iceberg_table=table,
            from_date=str(first),
            to_date=str(last),
        )
        started = time.perf_counter()
        operator.execute({"run_id": "bench"})
        return time.perf_counter() - started, commits
    finally:
        iceberg_table.IcebergTable.commit = real_commit  # type: ignore[method-assign]


def commit_and_backfill(events: int, days: int) -> list[str]:
    lines = []
    with tempfile.TemporaryDirectory() as home, S3Emulator() as s3:
        s3.client().create_bucket(Bucket="bench")
        mixpanel = MixpanelTestServer(events_per_day=events).start()
        try:
            os.environ.update(_environment(s3, mixpanel, Path(home)))
            day = FIRST_DAY
            wall, commits = _export(day, day, table="bench.one_day", key="one/{window}/part-{part}.parquet")
            plain, _ = _export(day, day, table=None, key="one-plain/{window}/part-{part}.parquet")
            lines += [
                f"One day of {events:,} events: execute {wall:.2f} s with the table, {plain:.2f} s plain parts; "
                f"the commit took {commits[0]:.3f} s ({commits[0] / (wall - commits[0]):.1%} of the "
                f"{wall - commits[0]:.2f} s spent writing the parts).",
            ]
            mixpanel.config.events_per_day = max(events // 10, 1000)
            last = FIRST_DAY + timedelta(days=days - 1)
            table_wall, commits = _export(
                FIRST_DAY, last, table="bench.backfill", key="bf/{window}/part-{part}.parquet"
            )
            plain_wall, _ = _export(FIRST_DAY, last, table=None, key="bf-plain/{window}/part-{part}.parquet")
            lines.append(
                f"{days}-day backfill of {mixpanel.config.events_per_day:,} events a day (4 windows at once): "
                f"{table_wall:.1f} s into the table, {plain_wall:.1f} s plain parts, ratio "
                f"{table_wall / plain_wall:.2f}; median commit {sorted(commits)[len(commits) // 2]:.3f} s."
            )
        finally:
            mixpanel.stop()
    return lines


def _folder_bytes(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def metadata_after_runs(runs: int, *, expire: bool) -> str:
    """``runs`` daily runs of LOOKBACK_DAYS + 1 commits each into a local table."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyiceberg.catalog.sql import SqlCatalog

    from airflow_provider_mixpanel.schemas import record_columns
    from airflow_provider_mixpanel.transfers.iceberg_table import (
        TABLE_PROPERTIES,
        iceberg_schema,
        partition_spec,
        window_filter,
    )
    from airflow_provider_mixpanel.transfers.windows import Window

    with tempfile.TemporaryDirectory() as home:
        root = Path(home)
        catalog = SqlCatalog("bench", uri=f"sqlite:///{root}/catalog.db", warehouse=f"file://{root}/warehouse")
        catalog.create_namespace("bench")
        schema = iceberg_schema(record_columns("events", raw=False))
        table = catalog.create_table(
            "bench.year", schema=schema, partition_spec=partition_spec(schema, dated=True), properties=TABLE_PROPERTIES
        )
        started = time.perf_counter()
        run_snapshots: list[list[int]] = []
        for run in range(runs):
            today = FIRST_DAY + timedelta(days=run + LOOKBACK_DAYS)
            before = {s.snapshot_id for s in table.snapshots()}
            for back in range(LOOKBACK_DAYS, -1, -1):
                day = today - timedelta(days=back)
                path = root / "parts" / f"{day}-{run}.parquet"
                path.parent.mkdir(exist_ok=True)
                moment = pa.array([f"{day}T12:00:00+00:00"]).cast(pa.timestamp("us", tz="UTC"))
                strings = pa.array(["x"], pa.string())
                pq.write_table(
                    pa.table(
                        [strings, moment, strings, pa.array([f"{day}-{run}"]), strings], names=schema.column_names
                    ),
                    path,
                )
                transaction = table.transaction()
                transaction.delete(window_filter(Window(day, day)))
                transaction.add_files([f"file://{path}"], check_duplicate_files=False)
                table = transaction.commit_transaction()
            run_snapshots.append([s.snapshot_id for s in table.snapshots() if s.snapshot_id not in before])
            if expire and len(run_snapshots) > KEEP_RUNS:
                old = run_snapshots.pop(0)
                table.maintenance.expire_snapshots().by_ids(old).commit()
        size, count = _folder_bytes(Path(table.location().removeprefix("file://")) / "metadata")
        current = Path(table.metadata_location.removeprefix("file://")).stat().st_size
        kept = f"expiring all but the last {KEEP_RUNS} runs" if expire else "no expiry"
        return (
            f"{runs} daily runs x {LOOKBACK_DAYS + 1} commits, {kept}: "
            f"{len(table.snapshots()):,} snapshots, current metadata.json {current / 1024:,.0f} KiB, metadata folder "
            f"{size / 1024 / 1024:,.1f} MiB in {count:,} files ({time.perf_counter() - started:.0f} s)."
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=365)
    parser.add_argument("--only", choices=("commit", "metadata"), default=None)
    args = parser.parse_args()
    lines = []
    if args.only in (None, "commit"):
        lines += commit_and_backfill(args.events, args.days)
    if args.only in (None, "metadata"):
        lines += [metadata_after_runs(args.runs, expire=False), metadata_after_runs(args.runs, expire=True)]
    print("\n".join(f"- {line}" for line in lines))


if __name__ == "__main__":
    main()
