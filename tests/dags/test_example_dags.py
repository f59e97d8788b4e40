"""The example DAGs: they import cleanly, and each runs end to end with ``airflow dags test``
against the Mixpanel test server, moto's S3 server and fake-gcs-server (SQLite metadata DB)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from airflow_provider_mixpanel.testing.sandbox import EXAMPLE_DAGS, GCS_BUCKET, S3_BUCKET, Sandbox

EVENTS_PER_DAY = 1500
PROFILES = 1200


def _dagbag():
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3
    except ImportError:
        from airflow.models.dagbag import DagBag  # Airflow 2.11

    return (
        DagBag(dag_folder=str(EXAMPLE_DAGS), include_examples=False)
        if _is_airflow_2()
        else DagBag(dag_folder=str(EXAMPLE_DAGS))
    )


def _is_airflow_2() -> bool:
    import airflow

    return airflow.__version__.startswith("2.")


def test_example_dags_import_without_errors():
    dagbag = _dagbag()
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {p.stem for p in Path(EXAMPLE_DAGS).glob("example_*.py")}


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(events_per_day=EVENTS_PER_DAY, profiles=PROFILES, page_size=500) as sandbox:
        yield sandbox


def _s3_jsonl(sandbox, key) -> list[dict]:
    body = sandbox.s3.client().get_object(Bucket=S3_BUCKET, Key=key)["Body"].read()
    return [json.loads(line) for line in gzip.decompress(body).splitlines()]


def test_daily_events_to_s3(sandbox):
    sandbox.dags_test("example_mixpanel_events_to_s3", "2024-03-01")
    records = _s3_jsonl(sandbox, "mixpanel/events/2024-03-01/part-00000.jsonl.gz")
    assert len(records) == EVENTS_PER_DAY
    assert {r["event_time"][:10] for r in records} == {"2024-03-01"}, "{{ ds }} must reach the export"
    request = sandbox.mixpanel.export_requests()[-1]
    assert request.params["from_date"] == request.params["to_date"] == "2024-03-01"


def test_profiles_to_gcs(sandbox):
    sandbox.dags_test("example_mixpanel_profiles_to_gcs", "2024-03-01")
    blob = sandbox.gcs.client().bucket(GCS_BUCKET).blob("mixpanel/profiles/2024-03-01/part-00000.jsonl.gz")
    records = [json.loads(line) for line in gzip.decompress(blob.download_as_bytes()).splitlines()]
    assert len(records) == PROFILES
    assert len({r["distinct_id"] for r in records}) == PROFILES


def test_backfill_maps_one_task_per_day(sandbox):
    sandbox.dags_test("example_mixpanel_backfill", "2024-04-01", conf={"start": "2024-04-01", "end": "2024-04-03"})
    for day in ("2024-04-01", "2024-04-02", "2024-04-03"):
        records = _s3_jsonl(sandbox, f"mixpanel/events/{day}/part-00000.jsonl.gz")
        assert len(records) == EVENTS_PER_DAY and {r["event_time"][:10] for r in records} == {day}
    days = sorted(
        r.params["from_date"] for r in sandbox.mixpanel.export_requests() if r.params["from_date"] >= "2024-04"
    )
    assert days == ["2024-04-01", "2024-04-02", "2024-04-03"]


def test_hook_inside_a_task(sandbox):
    result = sandbox.dags_test("example_mixpanel_hook_task", "2024-03-05")
    output = result.stdout + result.stderr
    assert "'Page View': 300" in output and "'Search': 300" in output, output[-3000:]
