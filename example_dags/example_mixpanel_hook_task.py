"""Use MixpanelHook inside a @task: stream yesterday's events and summarize them, any way you like
(here: events per name, returned to XCom). The stream is lazy, so memory stays flat.

"Yesterday" is the day before the run's data interval ends, right on Airflow 2 and 3 alike: Airflow 3's
default cron timetable gives a scheduled run an empty interval at its start, so ``{{ ds }}`` is the day
that has just begun there."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task

from airflow_provider_mixpanel.hooks.mixpanel import MixpanelHook

with DAG(
    dag_id="example_mixpanel_hook_task",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "mixpanel"],
) as dag:
    # [START howto_hook_mixpanel_task]
    @task
    def count_events(data_interval_end: datetime | None = None) -> dict[str, int]:
        assert data_interval_end is not None  # Airflow passes it in
        day = data_interval_end.astimezone(UTC).date() - timedelta(days=1)
        hook = MixpanelHook(mixpanel_conn_id="mixpanel_default")
        counts: Counter[str] = Counter()
        for event in hook.stream_events(from_date=day, to_date=day):
            counts[event["event_name"]] += 1
        return dict(counts)

    count_events()
    # [END howto_hook_mixpanel_task]
