"""`make demo`: the daily example DAG end to end, offline.

Starts the bundled Mixpanel-compatible server and the S3 (moto) and GCS (fake-gcs-server)
emulators on 127.0.0.1, runs ``airflow dags test example_mixpanel_events_to_s3`` in a throwaway
AIRFLOW_HOME, shows what was written, then runs ``example_mixpanel_events_to_iceberg`` into an
Iceberg table (a SQLite catalog, its warehouse in the S3 emulator) and queries it with DuckDB, and
stops every server, also when something fails.
"""

from __future__ import annotations

import gzip
import json
import signal
import sys
import time
from pathlib import Path

# The sandbox is repository tooling (devtools/, not in the wheel): import it from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from airflow_provider_mixpanel.transfers.lease import LEASE_FILENAME
from devtools.sandbox import S3_BUCKET, Sandbox

DAG_ID = "example_mixpanel_events_to_s3"
ICEBERG_DAG_ID = "example_mixpanel_events_to_iceberg"
ICEBERG_TABLE = "mixpanel.events"
DAY = "2024-03-01"
EVENTS_PER_DAY = 20_000


def main() -> int:
    # A TERM (a CI timeout, kill) unwinds like Ctrl-C, so every server is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    print(
        "Starting the Mixpanel test server, S3 and GCS emulators and a fresh Airflow home "
        f"({EVENTS_PER_DAY:,} events/day)..."
    )
    with Sandbox(events_per_day=EVENTS_PER_DAY) as sandbox:
        assert sandbox.mixpanel and sandbox.s3
        print(
            f"  Mixpanel: {sandbox.mixpanel.url}   S3: {sandbox.s3.url}   GCS: {sandbox.gcs.url if sandbox.gcs else ''}"
        )
        print(f"Running: airflow dags test {DAG_ID} {DAY}")
        sandbox.dags_test(DAG_ID, DAY)
        client = sandbox.s3.client()
        objects = client.list_objects_v2(Bucket=S3_BUCKET).get("Contents", [])
        per_day: dict[str, int] = {}
        sample: list[bytes] = []
        print("\nWritten (the day the run exports, and the five days before it that lookback_days=5 replaces):")
        for item in objects:
            key = item["Key"]
            body = client.get_object(Bucket=S3_BUCKET, Key=key)["Body"].read()
            if key.endswith("/_manifest.json"):
                manifest = json.loads(body)
                print(f"  s3://{S3_BUCKET}/{key}  completion manifest: {manifest['records']:,} records")
                continue
            if key.endswith("/" + LEASE_FILENAME):
                lease = json.loads(body)
                print(f"  s3://{S3_BUCKET}/{key}  one writer per window: lease {lease['state']}")
                continue
            lines = gzip.decompress(body).splitlines()
            day = key.split("/")[-2]
            per_day[day] = per_day.get(day, 0) + len(lines)
            sample = sample or lines[:2]
            print(f"  s3://{S3_BUCKET}/{key}  {item['Size']:,} bytes gzip, {len(lines):,} records")
        print(f"\nRecords per day: {per_day} (the server holds {EVENTS_PER_DAY:,} a day)")
        print("First records:")
        for line in sample:
            text = line.decode()
            print("  " + (text if len(text) <= 300 else text[:300] + "..."))
        if not per_day or any(count != EVENTS_PER_DAY for count in per_day.values()):
            print("A day's record count does not match the source.", file=sys.stderr)
            return 1
        if not show_iceberg_table(sandbox):
            return 1
    print(f"\nDone in {time.monotonic() - started:.0f} s; every server was stopped.")
    return 0


def show_iceberg_table(sandbox: Sandbox) -> bool:
    """The daily example into an Iceberg table (SQLite catalog, warehouse in the S3 emulator),
    then a query of it; False when a day's count differs from the source."""
    print(f"\nRunning: airflow dags test {ICEBERG_DAG_ID} {DAY}  (the same days, into Iceberg table {ICEBERG_TABLE})")
    sandbox.dags_test(ICEBERG_DAG_ID, DAY)
    table = sandbox.iceberg_catalog().load_table(ICEBERG_TABLE)
    snapshot = table.current_snapshot()
    assert snapshot is not None
    print(
        f"  {ICEBERG_TABLE}: {len(table.snapshots())} snapshots, current {snapshot.snapshot_id} "
        f"(run {snapshot.summary.get('mixpanel.run-id')}, window {snapshot.summary.get('mixpanel.window')})"
    )
    db = table.scan().to_duckdb("events")
    db.execute("SET TimeZone = 'UTC'")
    query = (
        "SELECT CAST(event_time AS DATE) AS day, count(*) AS events, count(DISTINCT insert_id) AS insert_ids, "
        "count(DISTINCT distinct_id) AS users FROM events GROUP BY 1 ORDER BY 1"
    )
    print(f"  DuckDB: {query}")
    rows = db.execute(query).fetchall()
    for day, events, insert_ids, users in rows:
        print(f"    {day}  {events:,} events, {insert_ids:,} insert_ids, {users:,} users")
    if not rows or any(events != EVENTS_PER_DAY or ids != events for _, events, ids, _ in rows):
        print("A day of the Iceberg table does not match the source.", file=sys.stderr)
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
