"""Backfill a range of days: one mapped task per day, so each day retries and re-runs on its own.

Trigger it with ``{"start": "2024-01-01", "end": "2024-12-31"}``. Every task runs in the
``mixpanel_export`` pool: give it 3 slots (``airflow pools set mixpanel_export 3 "Mixpanel export"``)
to stay within Mixpanel's export limits (3 queries per second, 60 per hour, 100 concurrent);
tasks that hit the hourly quota fail with a rate-limit error and are retried after ``retry_delay``.
Each day writes its own key prefix, so a re-run replaces that day's parts and nothing is doubled.
``map_index_template`` labels each mapped task with its day in the grid, instead of 0, 1, 2...
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task

from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

with DAG(
    dag_id="example_mixpanel_backfill",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    params={"start": "2024-03-01", "end": "2024-03-03"},
    max_active_tasks=3,
    tags=["example", "mixpanel"],
) as dag:

    @task
    def day_windows(start: str, end: str) -> list[dict[str, str]]:
        """One export window per day of the inclusive range."""
        first, last = date.fromisoformat(start), date.fromisoformat(end)
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        return [
            {
                "from_date": d.isoformat(),
                "to_date": d.isoformat(),
                "s3_key": f"mixpanel/events/{d}/part-{{part}}.jsonl.gz",
            }
            for d in days
        ]

    # [START howto_operator_mixpanel_backfill]
    MixpanelStreamToS3Operator.partial(
        task_id="export_day",
        s3_bucket="{{ var.value.get('mixpanel_s3_bucket', 'my-mixpanel-exports') }}",
        max_file_size_bytes=256 * 1024 * 1024,
        pool="mixpanel_export",
        map_index_template="{{ task.from_date }}",
        retries=3,
        retry_delay=timedelta(minutes=10),
    ).expand_kwargs(day_windows("{{ params.start }}", "{{ params.end }}"))
    # [END howto_operator_mixpanel_backfill]
