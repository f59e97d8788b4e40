"""Daily "Mixpanel metadata": the day's events and, next to them, what explains them: the saved
cohorts and every cohort's members (snapshots of the run's day), the day's annotations, and the
Lexicon (the data dictionary, a snapshot), into S3.

Every task writes under ``{window}``: the events' day, and for the snapshots the run's date (the
same day), so ``mixpanel/<kind>/2024-03-01/`` holds that day's events, cohorts, members,
annotations and Lexicon side by side, each folder with its ``_manifest.json``, and yesterday's
members can be compared with today's.

Quota: the events take 1 export request; the cohort list 1 query request and the members one
Engage session per cohort (one request per 50,000 members), of the query API's 60 an hour. The
members task logs that plan before its first request; with more than about 50 cohorts, pass
``cohort_ids`` to spread them over tasks (or runs). The annotations take 1 App API request and the
Lexicon 1 of the Lexicon Schemas API's 5 a minute. Every task runs in the ``mixpanel_export``
pool, so no two of them ask Mixpanel at once.

Connections: ``mixpanel_default`` and ``aws_default``. Variable ``mixpanel_s3_bucket`` names the bucket.
"""

from __future__ import annotations

from datetime import datetime

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator

BUCKET = "{{ var.value.get('mixpanel_s3_bucket', 'my-mixpanel-exports') }}"

with DAG(
    dag_id="example_mixpanel_metadata",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"pool": "mixpanel_export", "s3_bucket": BUCKET},
    tags=["example", "mixpanel"],
) as dag:
    export_events = MixpanelStreamToS3Operator(
        task_id="export_events",
        s3_key="mixpanel/events/{window}/part-{part}.jsonl.gz",
        max_file_size_bytes=256 * 1024 * 1024,
    )
    # [START howto_operator_mixpanel_metadata]
    export_cohorts = MixpanelStreamToS3Operator(
        task_id="export_cohorts",
        stream="cohorts",
        s3_key="mixpanel/cohorts/{window}/cohorts.jsonl.gz",
    )
    export_cohort_members = MixpanelStreamToS3Operator(
        task_id="export_cohort_members",
        stream="cohort_members",
        output_properties=["$email", "$name"],
        s3_key="mixpanel/cohort_members/{window}/part-{part}.jsonl.gz",
        max_file_size_bytes=256 * 1024 * 1024,
    )
    export_annotations = MixpanelStreamToS3Operator(
        task_id="export_annotations",
        stream="annotations",
        s3_key="mixpanel/annotations/{window}/annotations.jsonl.gz",
    )
    export_lexicon = MixpanelStreamToS3Operator(
        task_id="export_lexicon",
        stream="lexicon",
        s3_key="mixpanel/lexicon/{window}/lexicon.jsonl.gz",
    )
    # [END howto_operator_mixpanel_metadata]
    export_events >> export_cohorts >> export_cohort_members >> export_annotations >> export_lexicon
