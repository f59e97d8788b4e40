"""Use MixpanelHook inside a @task: stream a day of events and summarize them, any way you like
(here: events per name, returned to XCom). The stream is lazy, so memory stays flat."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

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
    def count_events(ds: str | None = None) -> dict[str, int]:
        hook = MixpanelHook(mixpanel_conn_id="mixpanel_default")
        counts: Counter[str] = Counter()
        for event in hook.stream_events(from_date=ds, to_date=ds):
            counts[event["event_name"]] += 1
        return dict(counts)

    count_events()
    # [END howto_hook_mixpanel_task]
