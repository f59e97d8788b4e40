"""The example DAGs: they import cleanly, and each runs end to end with ``airflow dags test`` (and
the daily one as the scheduler runs it) against the Mixpanel test server, moto's S3 server and
fake-gcs-server (SQLite metadata DB)."""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from devtools.sandbox import EXAMPLE_DAGS, GCS_BUCKET, S3_BUCKET, Sandbox

pytestmark = pytest.mark.dags

EVENTS_PER_DAY = 1500
PROFILES = 1200
SCHEDULED_RUN = Path(__file__).with_name("scheduled_run.py")


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


def _gcs_jsonl(sandbox, name) -> list[dict]:
    blob = sandbox.gcs.client().bucket(GCS_BUCKET).blob(name)
    return [json.loads(line) for line in gzip.decompress(blob.download_as_bytes()).splitlines()]


# The daily example re-exports the 5 days before the day it exports (late events).
LOOKBACK_DAYS = 5


def _assert_day_exported(sandbox, day: str) -> None:
    """``day`` and the five days before it, each in its own request, objects and manifest."""
    last = date.fromisoformat(day)
    days = [str(last - timedelta(days=n)) for n in range(LOOKBACK_DAYS, -1, -1)]
    requests = sandbox.mixpanel.export_requests()[-len(days) :]
    assert [(r.params["from_date"], r.params["to_date"]) for r in requests] == [(d, d) for d in days]
    for exported in days:
        records = _s3_jsonl(sandbox, f"mixpanel/events/{exported}/part-00000.jsonl.gz")
        assert len(records) == EVENTS_PER_DAY
        assert {r["event_time"][:10] for r in records} == {exported}
        body = sandbox.s3.client().get_object(Bucket=S3_BUCKET, Key=f"mixpanel/events/{exported}/_manifest.json")
        manifest = json.loads(body["Body"].read())
        assert manifest["records"] == EVENTS_PER_DAY and manifest["window"]["first_day"] == exported


def test_daily_events_to_s3_exports_the_day_before_the_run(sandbox):
    """A manual run at 2024-03-02T00:00 exports 2024-03-01 on Airflow 2 (the data interval) and on
    Airflow 3 (an empty interval: the day before)."""
    sandbox.dags_test("example_mixpanel_events_to_s3", "2024-03-02")
    _assert_day_exported(sandbox, "2024-03-01")


def test_daily_events_scheduled_run_exports_the_day_before_its_trigger(sandbox):
    """The run the scheduler makes from the DAG's own timetable. On Airflow 3 (CronTriggerTimetable)
    its data interval is empty at the trigger time, so ``{{ ds }}`` would be the day that has just
    begun; the export must be the complete day before."""
    result = subprocess.run(
        [sys.executable, str(SCHEDULED_RUN), "example_mixpanel_events_to_s3"],
        env=sandbox.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("SCHEDULED_RUN ")]
    assert result.returncode == 0 and lines, output[-6000:]
    run = json.loads(lines[-1].split(" ", 1)[1])
    assert run["run_type"] == "scheduled" and run["run_id"].startswith("scheduled__"), run
    trigger = datetime.fromisoformat(run["run_after"])
    if not _is_airflow_2():
        assert run["timetable"] == "CronTriggerTimetable", run
        assert run["data_interval_start"] == run["data_interval_end"] == run["logical_date"], run
    day = (trigger.date() - timedelta(days=1)).isoformat()
    _assert_day_exported(sandbox, day)
    assert date.fromisoformat(day) < datetime.fromisoformat(run["logical_date"]).date() or _is_airflow_2()


def test_profiles_and_group_profiles_to_gcs(sandbox):
    sandbox.dags_test("example_mixpanel_profiles_to_gcs", "2024-03-01")
    users = _gcs_jsonl(sandbox, "mixpanel/profiles/2024-03-01/part-00000.jsonl.gz")
    assert len(users) == PROFILES
    assert len({r["distinct_id"] for r in users}) == PROFILES
    companies = _gcs_jsonl(sandbox, "mixpanel/groups/company_id/2024-03-01/part-00000.jsonl.gz")
    assert {r["distinct_id"] for r in companies} == {f"company-{i}" for i in range(PROFILES)}


def test_metadata_dag_writes_every_kind_beside_the_days_events(sandbox):
    """Events, cohorts, cohort members, annotations and the Lexicon of the run's day, each under that
    day (the snapshots are named after the run's date)."""
    sandbox.dags_test("example_mixpanel_metadata", "2024-03-02")
    assert len(_s3_jsonl(sandbox, "mixpanel/events/2024-03-01/part-00000.jsonl.gz")) == EVENTS_PER_DAY
    cohorts = _s3_jsonl(sandbox, "mixpanel/cohorts/2024-03-01/cohorts.jsonl.gz")
    assert [c["cohort_id"] for c in cohorts] == [c["id"] for c in sandbox.mixpanel.cohorts()]
    members = _s3_jsonl(sandbox, "mixpanel/cohort_members/2024-03-01/part-00000.jsonl.gz")
    assert [(m["cohort_id"], m["distinct_id"]) for m in members] == [
        (c["id"], member) for c in sandbox.mixpanel.cohorts() for member in sandbox.mixpanel.cohort_member_ids(c["id"])
    ]
    assert all(set(m["properties"]) <= {"$email", "$name"} for m in members)
    annotations = _s3_jsonl(sandbox, "mixpanel/annotations/2024-03-01/annotations.jsonl.gz")
    day = date(2024, 3, 1)
    assert [a["annotation_id"] for a in annotations] == [a["id"] for a in sandbox.mixpanel.annotations(day, day)]
    lexicon = _s3_jsonl(sandbox, "mixpanel/lexicon/2024-03-01/lexicon.jsonl.gz")
    assert [(s["entity_type"], s["name"]) for s in lexicon] == [
        (e["entityType"], e["name"]) for e in sandbox.mixpanel.lexicon_schemas()
    ]


def test_backfill_maps_one_task_per_day(sandbox):
    sandbox.dags_test("example_mixpanel_backfill", "2024-04-01", conf={"start": "2024-04-01", "end": "2024-04-03"})
    for day in ("2024-04-01", "2024-04-02", "2024-04-03"):
        records = _s3_jsonl(sandbox, f"mixpanel/events/{day}/part-00000.jsonl.gz")
        assert len(records) == EVENTS_PER_DAY and {r["event_time"][:10] for r in records} == {day}
    days = sorted(
        r.params["from_date"]
        for r in sandbox.mixpanel.export_requests()
        if r.params["from_date"].startswith("2024-04-0")
    )
    assert days == ["2024-04-01", "2024-04-02", "2024-04-03"]


def test_backfill_grid_shows_each_mapped_task_s_day(sandbox):
    """``map_index_template``: the grid labels mapped tasks by their day, not 0, 1, 2."""
    sandbox.dags_test("example_mixpanel_backfill", "2024-04-10", conf={"start": "2024-04-10", "end": "2024-04-11"})
    with sqlite3.connect(Path(sandbox.home) / "airflow.db") as db:
        rows = db.execute(
            "SELECT map_index, rendered_map_index FROM task_instance WHERE dag_id = 'example_mixpanel_backfill' "
            "AND task_id = 'export_day' ORDER BY map_index"
        ).fetchall()
    assert (0, "2024-04-10") in rows and (1, "2024-04-11") in rows, rows


def test_hook_inside_a_task(sandbox):
    result = sandbox.dags_test("example_mixpanel_hook_task", "2024-03-05")
    output = result.stdout + result.stderr
    assert "'Page View': 300" in output and "'Search': 300" in output, output[-3000:]
    request = sandbox.mixpanel.export_requests()[-1]
    assert request.params["from_date"] == request.params["to_date"] == "2024-03-04", "the day before the run"


def test_daily_events_into_iceberg_commit_each_day_and_emit_one_event_per_day(sandbox):
    pytest.importorskip("pyiceberg", reason="the iceberg extra (pyiceberg) is not installed")
    from tests.integration.transfers.test_iceberg import skip_without_sql_catalog

    skip_without_sql_catalog()
    sandbox.dags_test("example_mixpanel_events_to_iceberg", "2024-03-07")
    last = date(2024, 3, 6)
    days = [last - timedelta(days=n) for n in range(LOOKBACK_DAYS, -1, -1)]
    table = sandbox.iceberg_catalog().load_table("mixpanel.events")
    connection = table.scan().to_duckdb("events")
    connection.execute("SET TimeZone = 'UTC'")
    per_day = dict(connection.execute("SELECT CAST(event_time AS DATE), count(*) FROM events GROUP BY 1").fetchall())
    assert per_day == dict.fromkeys(days, EVENTS_PER_DAY), "the table's rows per day differ from the server's"
    with sqlite3.connect(Path(sandbox.home) / "airflow.db") as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(asset_event)")]
        key = "partition_key" if "partition_key" in columns else "NULL"
        query = f"SELECT {key}, extra FROM asset_event WHERE source_dag_id = 'example_mixpanel_events_to_iceberg'"
        events = db.execute(query).fetchall()
    assert events, "the Iceberg example emitted no asset event"
    for _, extra in events:
        windows = json.loads(extra)["windows"]
        assert sorted(windows) == [str(d) for d in days]
        assert all(w["snapshot_id"] and w["records"] == EVENTS_PER_DAY for w in windows.values())
    if key == "partition_key":  # Airflow 3.3+: one event per day written
        assert sorted(k for k, _ in events) == [str(d) for d in days]
