"""`make demo`: the daily example DAG end to end, offline.

Starts the bundled Mixpanel-compatible server and the S3 (moto) and GCS (fake-gcs-server)
emulators on 127.0.0.1, runs ``airflow dags test example_mixpanel_events_to_s3`` in a throwaway
AIRFLOW_HOME, shows what was written, and stops every server, also when something fails.
"""

from __future__ import annotations

import gzip
import signal
import sys
import time
from pathlib import Path

# The sandbox is repository tooling (devtools/, not in the wheel): import it from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.sandbox import S3_BUCKET, Sandbox

DAG_ID = "example_mixpanel_events_to_s3"
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
        total = 0
        sample: list[bytes] = []
        print("\nWritten:")
        for item in objects:
            body = gzip.decompress(client.get_object(Bucket=S3_BUCKET, Key=item["Key"])["Body"].read())
            lines = body.splitlines()
            total += len(lines)
            sample = sample or lines[:2]
            print(f"  s3://{S3_BUCKET}/{item['Key']}  {item['Size']:,} bytes gzip, {len(lines):,} records")
        print(f"\nRecords: {total:,} (the server holds {EVENTS_PER_DAY:,} for {DAY})")
        print("First records:")
        for line in sample:
            text = line.decode()
            print("  " + (text if len(text) <= 300 else text[:300] + "..."))
        if total != EVENTS_PER_DAY:
            print("Record count does not match the source.", file=sys.stderr)
            return 1
    print(f"\nDone in {time.monotonic() - started:.0f} s; every server was stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
