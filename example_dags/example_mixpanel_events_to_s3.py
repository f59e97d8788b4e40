"""Daily: yesterday's Mixpanel raw events into S3, one gzip JSONL object per 256 MB part, with
the five days before it exported again for the events Mixpanel received late.

No dates are given, so each run exports the complete days of its data interval, or, when that is
empty (Airflow 3's default cron timetable), the day before the run: yesterday, on Airflow 2 and 3
alike. ``{window}`` in the key becomes each day exported (``2024-03-01``). The task's Rendered
Templates show the run's day as ``from_date`` / ``to_date``; its XCom names every day exported,
look-back included; the Assets page lists the exported events (``outlets``).

``lookback_days=5`` re-exports the five days before yesterday and replaces each of them whole:
Mixpanel keeps accepting events for days after their time (mobile SDKs flush late, ``/track``
takes events up to 5 days old), so a day exported once at 00:30 misses some. The cost: 6 export
requests per run instead of 1 (of Mixpanel's 60 per project per hour), and about 6x the bytes of
one day read from Mixpanel and written to S3. A day is final once it is older than five days; its
``_manifest.json`` (beside its parts, rewritten each time) says when it was last exported.

Connections: ``mixpanel_default`` (the Mixpanel service account) and ``aws_default``.
Variable ``mixpanel_s3_bucket`` names the bucket.
"""

from __future__ import annotations

from datetime import datetime

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

from airflow_provider_mixpanel._compat import Asset
from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

# What the Assets page lists as this DAG's output. An asset is fixed when the DAG is parsed, so it
# names the default bucket: name yours (the Variable mixpanel_s3_bucket) here.
MIXPANEL_EVENTS = Asset("s3://my-mixpanel-exports/mixpanel/events")

with DAG(
    dag_id="example_mixpanel_events_to_s3",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "mixpanel"],
) as dag:
    # [START howto_operator_mixpanel_to_s3]
    export_events = MixpanelStreamToS3Operator(
        task_id="export_events",
        s3_bucket="{{ var.value.get('mixpanel_s3_bucket', 'my-mixpanel-exports') }}",
        s3_key="mixpanel/events/{window}/part-{part}.jsonl.gz",
        max_file_size_bytes=256 * 1024 * 1024,
        # Yesterday and the 5 days before it: 6 requests and ~6x one day's bytes per run.
        lookback_days=5,
        pool="mixpanel_export",
        outlets=[MIXPANEL_EVENTS],
    )
    # [END howto_operator_mixpanel_to_s3]
