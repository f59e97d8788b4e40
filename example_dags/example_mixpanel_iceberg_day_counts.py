"""Downstream of ``example_mixpanel_events_to_iceberg``: counts the events of each day written
into the Iceberg table ``mixpanel.events``.

On Airflow 3.3+ it is scheduled on the partitions of the asset ``mixpanel_events_table``: one run
per day the exporter wrote (look-back days included), whose ``dag_run.partition_key`` is the day;
the asset event's ``extra["windows"][day]`` holds the day's records, bytes, manifest and Iceberg
snapshot id. Before 3.3 it runs once per export, for every day in the event's ``extra``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

try:  # Airflow 3
    from airflow.sdk import DAG, Asset, task

    EVENTS_TABLE = Asset(name="mixpanel_events_table", uri="iceberg://mixpanel/events")
except ImportError:  # Airflow 2.11: a dataset, named by its URI
    from airflow import DAG
    from airflow.datasets import Dataset
    from airflow.decorators import task

    EVENTS_TABLE = Dataset("iceberg://mixpanel/events")

try:  # Airflow 3.3+: one run per partition (day) of the asset's events
    from airflow.sdk import PartitionedAssetTimetable

    SCHEDULE: object = PartitionedAssetTimetable(assets=EVENTS_TABLE)
except ImportError:
    SCHEDULE = [EVENTS_TABLE]


def count_day(table_name: str, day: str, conn_id: str = "iceberg_default") -> int:
    """The rows of ``day`` (UTC) in the table, read by pyiceberg: only that day's partition is scanned."""
    from airflow.providers.apache.iceberg.hooks.iceberg import IcebergHook
    from pyiceberg.expressions import And, GreaterThanOrEqual, LessThan

    first = date.fromisoformat(day)
    table = IcebergHook(iceberg_conn_id=conn_id).load_table(table_name)
    day_filter = And(
        GreaterThanOrEqual("event_time", f"{first}T00:00:00+00:00"),
        LessThan("event_time", f"{first + timedelta(days=1)}T00:00:00+00:00"),
    )
    return table.scan(row_filter=day_filter, selected_fields=("insert_id",)).to_arrow().num_rows


with DAG(
    dag_id="example_mixpanel_iceberg_day_counts",
    schedule=SCHEDULE,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "mixpanel", "iceberg"],
) as dag:

    @task
    def count_events(**context) -> dict[str, int]:
        """The rows of each day this run stands for: its partition key, or every day of the event."""
        partition_key = getattr(context.get("dag_run"), "partition_key", None)
        if partition_key:
            days = [partition_key]
        else:
            days = sorted(
                day
                for events in (
                    context.get("triggering_asset_events") or context.get("triggering_dataset_events") or {}
                ).values()
                for event in events
                for day in (event.extra or {}).get("windows", {})
            )
        counts = {day: count_day("mixpanel.events", day) for day in days}
        for day, count in counts.items():
            print(f"mixpanel.events holds {count} events of {day}")
        return counts

    count_events()
