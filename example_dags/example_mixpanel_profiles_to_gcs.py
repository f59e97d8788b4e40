"""Daily: a snapshot of every Mixpanel user profile, and of every company's group profile, into GCS.

Profiles have no days: each run exports them as they are when it runs. ``{{ ds }}`` only labels
the snapshot: on Airflow 3 (``CronTriggerTimetable``) it is the day the run starts; on Airflow 2
(``CronDataIntervalTimetable``) the day before, whose end the run follows.

Both tasks share ``default_args``: the ``mixpanel_export`` pool and 256 MB parts.
Connections: ``mixpanel_default`` and ``google_cloud_default``. Variable ``mixpanel_gcs_bucket``
names the bucket. Group profiles need the group key (here ``company_id``) from Project Settings >
Group Keys.
"""

from __future__ import annotations

from datetime import datetime

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

from airflow_provider_mixpanel._compat import Asset
from airflow_provider_mixpanel.transfers.mixpanel_to_gcs import MixpanelStreamToGCSOperator

# What the Assets page lists as this DAG's output (fixed at parse time: the default bucket).
USER_PROFILES = Asset("gs://my-mixpanel-exports/mixpanel/profiles")
COMPANY_PROFILES = Asset("gs://my-mixpanel-exports/mixpanel/groups/company_id")

with DAG(
    dag_id="example_mixpanel_profiles_to_gcs",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"pool": "mixpanel_export", "max_file_size_bytes": 256 * 1024 * 1024},
    tags=["example", "mixpanel"],
) as dag:
    # [START howto_operator_mixpanel_to_gcs]
    export_profiles = MixpanelStreamToGCSOperator(
        task_id="export_profiles",
        stream="profiles",
        bucket="{{ var.value.get('mixpanel_gcs_bucket', 'my-mixpanel-exports') }}",
        object_name="mixpanel/profiles/{{ ds }}/part-{part}.jsonl.gz",
        outlets=[USER_PROFILES],
    )
    # [END howto_operator_mixpanel_to_gcs]

    # [START howto_operator_mixpanel_group_profiles_to_gcs]
    # Group profiles: one per company, keyed by the group key company_id.
    export_companies = MixpanelStreamToGCSOperator(
        task_id="export_company_profiles",
        stream="profiles",
        data_group_id="company_id",
        bucket="{{ var.value.get('mixpanel_gcs_bucket', 'my-mixpanel-exports') }}",
        object_name="mixpanel/groups/company_id/{{ ds }}/part-{part}.jsonl.gz",
        outlets=[COMPANY_PROFILES],
    )
    # [END howto_operator_mixpanel_group_profiles_to_gcs]
