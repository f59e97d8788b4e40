"""Daily: yesterday's Mixpanel events, and the five days before it, committed into the Apache
Iceberg table ``mixpanel.events``: each day replaced in one Iceberg transaction.

The Parquet parts go where ``s3_key`` says (under names of their own for each attempt); each day
is then committed into the table: its old rows deleted and its new parts added as data files, so
readers (Spark, Trino, Athena, DuckDB...) see the old day or the new one, never half. The table is
created on the first run, partitioned by day of ``event_time``.

Every day written (look-back days included) is an event of the asset ``mixpanel_events_table``:
on Airflow 3.3+ one partition per day, which runs ``example_mixpanel_iceberg_day_counts`` once
per day written.

Connections: ``mixpanel_default``, ``aws_default`` and ``iceberg_default`` (an ``iceberg``
connection: its extra holds the pyiceberg catalog properties, e.g. ``{"type": "sql", "uri":
"postgresql+psycopg2://...", "warehouse": "s3://bucket/warehouse"}``). Variable
``mixpanel_lake_bucket`` names the bucket of the parts.
"""

from __future__ import annotations

from datetime import datetime

try:  # Airflow 3
    from airflow.sdk import DAG, Asset

    #: the table as an asset: downstream DAGs schedule on it
    EVENTS_TABLE = Asset(name="mixpanel_events_table", uri="iceberg://mixpanel/events")
except ImportError:  # Airflow 2.11: a dataset, named by its URI
    from airflow import DAG
    from airflow.datasets import Dataset

    EVENTS_TABLE = Dataset("iceberg://mixpanel/events")

from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

with DAG(
    dag_id="example_mixpanel_events_to_iceberg",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "mixpanel", "iceberg"],
) as dag:
    # [START howto_operator_mixpanel_to_iceberg]
    export_events = MixpanelStreamToS3Operator(
        task_id="export_events",
        s3_bucket="{{ var.value.get('mixpanel_lake_bucket', 'my-mixpanel-lake') }}",
        s3_key="mixpanel/iceberg/events/{window}/part-{part}.parquet",
        output_format="parquet",
        max_file_size_bytes=256 * 1024 * 1024,
        lookback_days=5,
        iceberg_table="mixpanel.events",
        iceberg_conn_id="iceberg_default",
        outlets=[EVENTS_TABLE],
    )
    # [END howto_operator_mixpanel_to_iceberg]
