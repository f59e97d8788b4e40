"""Daily: a snapshot of every Mixpanel user profile into GCS.

Connections: ``mixpanel_default`` and ``google_cloud_default``. Variable ``mixpanel_gcs_bucket``
names the bucket.
"""

from __future__ import annotations

from datetime import datetime

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

from airflow_provider_mixpanel.transfers.mixpanel_to_gcs import MixpanelStreamToGCSOperator

with DAG(
    dag_id="example_mixpanel_profiles_to_gcs",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "mixpanel"],
) as dag:
    # [START howto_operator_mixpanel_to_gcs]
    export_profiles = MixpanelStreamToGCSOperator(
        task_id="export_profiles",
        stream="profiles",
        bucket="{{ var.value.get('mixpanel_gcs_bucket', 'my-mixpanel-exports') }}",
        object_name="mixpanel/profiles/{{ ds }}/part-{part}.jsonl.gz",
        max_file_size_bytes=256 * 1024 * 1024,
        pool="mixpanel_export",
    )
    # [END howto_operator_mixpanel_to_gcs]
