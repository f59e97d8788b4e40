"""Daily: yesterday's Mixpanel raw events into S3, one gzip JSONL object per 256 MB part.

No dates are given, so each run exports the complete days of its data interval, or, when that is
empty (Airflow 3's default cron timetable), the day before the run: yesterday, on Airflow 2 and 3
alike. ``{window}`` in the key becomes that day (``2024-03-01``).

Connections: ``mixpanel_default`` (the Mixpanel service account) and ``aws_default``.
Variable ``mixpanel_s3_bucket`` names the bucket.
"""

from __future__ import annotations

from datetime import datetime

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

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
        pool="mixpanel_export",
    )
    # [END howto_operator_mixpanel_to_s3]
