"""Events and profiles committed into Iceberg tables: a SQLite catalog, the warehouse and the parts
in moto's S3, read back through pyiceberg and DuckDB (over pyiceberg's scan of the table)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

pyiceberg = pytest.importorskip("pyiceberg", reason="the iceberg extra (pyiceberg) is not installed")

from airflow_provider_mixpanel.errors import MixpanelConfigError  # noqa: E402
from airflow_provider_mixpanel.transfers.iceberg_table import (  # noqa: E402
    SUMMARY_RUN_ID,
    SUMMARY_STREAM,
    SUMMARY_WINDOW,
    IcebergTable,
)
from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator  # noqa: E402
from airflow_provider_mixpanel.transfers.parts import AirflowTaskAborted  # noqa: E402
from tests.integration.transfers.helpers import s3_manifests  # noqa: E402

pytestmark = pytest.mark.integration

DAYS = [date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)]
KEY = "mixpanel/events/{window}/part-{part}.parquet"
TABLE = "mixpanel.events"
HOOK = {"backoff_base": 0.01, "read_timeout": 5.0, "max_retries": 3}


def skip_without_sql_catalog() -> None:
    import sqlalchemy

    if int(sqlalchemy.__version__.split(".")[0]) < 2:
        pytest.skip("pyiceberg's SQL catalog (SQLite here) needs SQLAlchemy 2; Airflow 2.11 pins SQLAlchemy < 2")


@pytest.fixture
def iceberg(s3, s3_emulator, tmp_path, monkeypatch):
    """An ``iceberg_default`` connection: a SQLite catalog whose warehouse is in the test bucket."""
    skip_without_sql_catalog()
    from pyiceberg.catalog import load_catalog

    _, bucket = s3
    properties = {
        "type": "sql",
        "uri": f"sqlite:///{tmp_path}/catalog.db",
        "warehouse": f"s3://{bucket}/warehouse",
        "s3.endpoint": s3_emulator.url,
        "s3.access-key-id": "testing",
        "s3.secret-access-key": "testing",
        "s3.region": "us-east-1",
    }
    monkeypatch.setenv("AIRFLOW_CONN_ICEBERG_DEFAULT", json.dumps({"conn_type": "iceberg", "extra": properties}))
    # A SQL catalog keys its tables by the catalog name, which IcebergHook takes from the connection id.
    return load_catalog("iceberg_default", **properties)


def operator(bucket: str, task_id: str = "to_iceberg", **kwargs: Any) -> MixpanelStreamToS3Operator:
    options = {
        "s3_bucket": bucket,
        "s3_key": KEY,
        "output_format": "parquet",
        "iceberg_table": TABLE,
        "mixpanel_hook_kwargs": HOOK,
        **kwargs,
    }
    return MixpanelStreamToS3Operator(task_id=task_id, **options)


def rows_per_day(table) -> dict[date, int]:
    connection = table.scan().to_duckdb("events")
    connection.execute("SET TimeZone = 'UTC'")
    return dict(connection.execute("SELECT CAST(event_time AS DATE), count(*) FROM events GROUP BY 1").fetchall())


def insert_ids(table, **scan: Any) -> Counter[str]:
    return Counter(table.scan(selected_fields=("insert_id",), **scan).to_arrow().column("insert_id").to_pylist())


def task_try(try_number: int) -> dict[str, Any]:
    """The context of one try of one task instance, as Airflow gives it."""
    ti = SimpleNamespace(dag_id="d", task_id="to_iceberg", run_id="scheduled__2024-03-02", map_index=-1)
    ti.try_number = try_number
    return {"run_id": ti.run_id, "ti": ti}


def keys(client, bucket: str) -> set[str]:
    return {o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_days_land_once_each_after_reruns_and_lookback(mixpanel, s3, iceberg):
    server = mixpanel(events_per_day=400)
    client, bucket = s3
    first = operator(bucket, from_date=str(DAYS[0]), to_date=str(DAYS[1])).execute({"run_id": "run-1"})
    again = operator(bucket, from_date=str(DAYS[2]), to_date=str(DAYS[2]), lookback_days=2)
    second = again.execute({"run_id": "run-2"})
    operator(bucket, from_date=str(DAYS[2]), to_date=str(DAYS[2]), lookback_days=2).execute({"run_id": "run-3"})

    table = iceberg.load_table(TABLE)
    assert rows_per_day(table) == {day: server.final_day_count(day) for day in DAYS}, "DuckDB counts differ"
    ids = insert_ids(table)
    assert max(ids.values()) == 1, "an insert_id is in the table more than once after re-runs"
    assert len(ids) == sum(server.final_day_count(day) for day in DAYS)
    assert [w["window"] for w in first["windows"]] == ["2024-03-01", "2024-03-02"]
    assert [w["window"] for w in second["windows"]] == ["2024-03-01", "2024-03-02", "2024-03-03"]
    assert second["iceberg_table"] == TABLE
    snapshots = {s.snapshot_id: s for s in table.snapshots()}
    for window in second["windows"]:
        summary = snapshots[window["snapshot_id"]].summary
        assert summary[SUMMARY_RUN_ID] == "run-2" and summary[SUMMARY_WINDOW] == window["window"]
    manifests = s3_manifests(client, bucket)
    assert {m["window"]["first_day"]: m["snapshot_id"] for m in manifests.values()}.keys() == {str(d) for d in DAYS}


def test_every_data_file_is_a_part_and_unreferenced_parts_are_deleted(mixpanel, s3, iceberg):
    mixpanel(events_per_day=200)
    client, bucket = s3
    for run in range(2):
        operator(bucket, from_date=str(DAYS[0]), to_date=str(DAYS[0])).execute({"run_id": f"run-{run}"})
    table = iceberg.load_table(TABLE)
    current = {task.file.file_path for task in table.scan().plan_files()}
    parts = {f"s3://{bucket}/{k}" for k in keys(client, bucket) if k.startswith("mixpanel/") and k.endswith(".parquet")}
    assert current <= parts, "the table's data files are the parts, not copies"
    assert len(parts) == 2, "the previous run's part stays for time travel, nothing else"


def test_time_travel_shows_the_previous_version_of_a_reexported_day(mixpanel, s3, iceberg):
    server = mixpanel(events_per_day=300)
    _, bucket = s3
    before = operator(bucket, from_date=str(DAYS[0]), to_date=str(DAYS[0])).execute({"run_id": "first"})
    server.config.events_per_day = 350  # late events arrived: the re-export holds more
    after = operator(bucket, from_date=str(DAYS[0]), to_date=str(DAYS[0])).execute({"run_id": "second"})
    table = iceberg.load_table(TABLE)
    old_snapshot = before["windows"][0]["snapshot_id"]
    assert sum(insert_ids(table, snapshot_id=old_snapshot).values()) == before["records"] == 300
    assert sum(insert_ids(table).values()) == after["records"] == 350
    assert after["windows"][0]["snapshot_id"] != old_snapshot


def test_a_killed_try_leaves_the_table_as_it_was_and_the_retry_deletes_its_parts(mixpanel, s3, iceberg, monkeypatch):
    server = mixpanel(events_per_day=250)
    client, bucket = s3
    operator(bucket, from_date=str(DAYS[0]), to_date=str(DAYS[0])).execute({"run_id": "good"})
    table_before = iceberg.load_table(TABLE)
    snapshot_before = table_before.current_snapshot().snapshot_id
    real_commit = IcebergTable.commit

    def killed(self, window, parts):
        raise AirflowTaskAborted("killed between writing its parts and committing them")

    monkeypatch.setattr(IcebergTable, "commit", killed)
    server.config.events_per_day = 260
    with pytest.raises(AirflowTaskAborted):
        operator(bucket, from_date=str(DAYS[0]), to_date=str(DAYS[0])).execute(task_try(1))
    killed_parts = keys(client, bucket)
    assert iceberg.load_table(TABLE).current_snapshot().snapshot_id == snapshot_before, "the table changed"
    assert sum(insert_ids(iceberg.load_table(TABLE)).values()) == 250

    monkeypatch.setattr(IcebergTable, "commit", real_commit)
    result = operator(bucket, from_date=str(DAYS[0]), to_date=str(DAYS[0])).execute(task_try(2))
    assert sum(insert_ids(iceberg.load_table(TABLE)).values()) == 260
    leftover = {uri.split("/", 3)[3] for uri in result["deleted_stale_files"]}
    assert leftover and leftover <= killed_parts, "the killed attempt's parts are deleted"
    assert not leftover & keys(client, bucket)


def test_two_tasks_committing_the_same_table_at_once_both_land(mixpanel, s3, iceberg):
    server = mixpanel(events_per_day=300)
    _, bucket = s3
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    real_commit = IcebergTable.commit

    def run(day: date) -> None:
        task = operator(bucket, task_id=f"day_{day:%d}", from_date=str(day), to_date=str(day), lookback_days=1)
        original = task._prepared_table

        def prepared(context, destination):
            table = original(context, destination)
            table.commit = lambda window, parts: (barrier.wait(timeout=60), real_commit(table, window, parts))[1]
            return table

        task._prepared_table = prepared
        try:
            task.execute({"run_id": f"run-{day}"})
        except BaseException as err:
            errors.append(err)

    iceberg.create_namespace_if_not_exists("mixpanel")
    threads = [threading.Thread(target=run, args=(day,)) for day in (DAYS[1], DAYS[2])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    table = iceberg.load_table(TABLE)
    assert rows_per_day(table) == {day: server.final_day_count(day) for day in DAYS}
    assert max(insert_ids(table).values()) == 1, "a window committed by both tasks is in the table twice"


def test_profiles_replace_the_whole_table(mixpanel, s3, iceberg):
    server = mixpanel(profiles=500, page_size=200)
    _, bucket = s3
    profiles = {"stream": "profiles", "s3_key": "mixpanel/profiles/part-{part}.parquet", "iceberg_table": "mp.users"}
    operator(bucket, **profiles).execute({"run_id": "one"})
    server.config.profiles = 450
    result = operator(bucket, **profiles).execute({"run_id": "two", "ds": "2024-03-02"})
    table = iceberg.load_table("mp.users")
    ids = table.scan(selected_fields=("distinct_id",)).to_arrow().column("distinct_id").to_pylist()
    assert sorted(ids) == sorted(f"user-{i}" for i in range(450))
    assert result["windows"][0]["window"] == "2024-03-02"
    summary = {s.snapshot_id: s for s in table.snapshots()}[result["windows"][0]["snapshot_id"]].summary
    described = (summary[SUMMARY_STREAM], summary[SUMMARY_WINDOW], summary[SUMMARY_RUN_ID])
    assert described == ("profiles", "2024-03-02", "two")


def test_an_existing_table_that_does_not_fit_is_refused_before_any_request(mixpanel, s3, iceberg):
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType

    server = mixpanel(events_per_day=10)
    _, bucket = s3
    iceberg.create_namespace_if_not_exists("mixpanel")
    iceberg.create_table(
        TABLE,
        schema=Schema(NestedField(1, "event_name", StringType()), NestedField(2, "event_time", LongType())),
    )
    with pytest.raises(MixpanelConfigError, match=r"'mixpanel\.events'.*'event_time'"):
        operator(bucket, from_date=str(DAYS[0]), to_date=str(DAYS[0])).execute({})
    assert server.requests == [], "a Mixpanel request was sent before the table was checked"


def test_a_project_with_local_days_is_refused_before_any_request(mixpanel, s3, iceberg, monkeypatch):
    server = mixpanel(events_per_day=10)
    monkeypatch.setenv("AIRFLOW_CONN_MIXPANEL_DEFAULT", server.connection_json(project_timezone="US/Pacific"))
    _, bucket = s3
    with pytest.raises(MixpanelConfigError, match="project_timezone='US/Pacific'"):
        operator(bucket, from_date=str(DAYS[0]), to_date=str(DAYS[0])).execute({})
    assert server.requests == []


def test_iceberg_arguments_are_checked_when_the_dag_is_parsed():
    with pytest.raises(MixpanelConfigError, match="output_format='parquet'"):
        MixpanelStreamToS3Operator(task_id="t", s3_bucket="b", s3_key=KEY, iceberg_table=TABLE)
    with pytest.raises(MixpanelConfigError, match="raw=False"):
        operator("b", raw=True)
    with pytest.raises(MixpanelConfigError, match="window_days"):
        operator("b", window_days=3)


def test_hour_windows_replace_their_hours(mixpanel, s3, iceberg):
    server = mixpanel(events_per_day=480)
    _, bucket = s3
    for _ in range(2):
        operator(bucket, from_date=str(DAYS[0]), to_date=str(DAYS[0]), window_hours=6).execute({})
    table = iceberg.load_table(TABLE)
    assert rows_per_day(table) == {DAYS[0]: server.final_day_count(DAYS[0])}
    assert max(insert_ids(table).values()) == 1
    assert DAYS[0] + timedelta(days=1) not in rows_per_day(table)


def test_an_empty_window_of_a_table_without_its_rows_commits_nothing(mixpanel, s3, iceberg):
    mixpanel(events_per_day=50)
    client, bucket = s3
    empty = {"from_date": str(DAYS[0]), "to_date": str(DAYS[0]), "events": ["NoSuchEvent"]}
    first = operator(bucket, **empty).execute({"run_id": "new-table"})
    assert first["windows"][0]["snapshot_id"] is None, "a table with no snapshot has none to name"
    assert [m["snapshot_id"] for m in s3_manifests(client, bucket).values()] == [None]

    operator(bucket, from_date=str(DAYS[1]), to_date=str(DAYS[1])).execute({"run_id": "other-day"})
    current = iceberg.load_table(TABLE).current_snapshot().snapshot_id
    again = operator(bucket, **empty).execute({"run_id": "retry"})
    assert again["windows"][0]["snapshot_id"] == current, "the window's snapshot is the table's current one"


def test_quiet_hours_commit_nothing_and_an_emptied_day_is_deleted(mixpanel, s3, iceberg):
    server = mixpanel(events_per_day=5)
    _, bucket = s3
    operator(bucket, from_date=str(DAYS[0]), to_date=str(DAYS[0]), window_hours=1).execute({"run_id": "hours"})
    assert rows_per_day(iceberg.load_table(TABLE)) == {DAYS[0]: server.final_day_count(DAYS[0])}
    emptied = operator(bucket, from_date=str(DAYS[0]), to_date=str(DAYS[0]), events=["NoSuchEvent"])
    result = emptied.execute({"run_id": "emptied"})
    table = iceberg.load_table(TABLE)
    assert rows_per_day(table) == {}, "a re-export with no records replaces the day's rows by none"
    assert result["windows"][0]["snapshot_id"] == table.current_snapshot().snapshot_id


def events_table(iceberg, *, required: bool = False, partitioned_by: str | None = None, **properties: str) -> None:
    """An existing events table made outside the operator: its columns, partitioning and properties."""
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import HourTransform, IdentityTransform
    from pyiceberg.types import NestedField, StringType, TimestamptzType

    iceberg.create_namespace_if_not_exists("mixpanel")
    schema = Schema(
        NestedField(1, "event_name", StringType(), required=required),
        NestedField(2, "event_time", TimestamptzType(), required=False),
        NestedField(3, "distinct_id", StringType(), required=False),
        NestedField(4, "insert_id", StringType(), required=False),
        NestedField(5, "properties", StringType(), required=False),
    )
    specs = {
        "identity(event_name)": PartitionSpec(PartitionField(1, 1000, IdentityTransform(), "event_name")),
        "hour(event_time)": PartitionSpec(PartitionField(2, 1000, HourTransform(), "event_time_hour")),
    }
    spec = {"partition_spec": specs[partitioned_by]} if partitioned_by else {}
    iceberg.create_table(TABLE, schema=schema, properties=properties, **spec)


def test_a_table_with_snapshot_isolation_is_refused_before_any_request(mixpanel, s3, iceberg):
    server = mixpanel(events_per_day=10)
    _, bucket = s3
    events_table(iceberg, **{"write.delete.isolation-level": "snapshot"})
    with pytest.raises(MixpanelConfigError, match=r"'mixpanel\.events' sets write\.delete\.isolation-level='snapshot'"):
        operator(bucket, from_date=str(DAYS[0]), to_date=str(DAYS[0])).execute({})
    assert server.requests == [], "a Mixpanel request was sent before the table was checked"


@pytest.mark.parametrize(
    ("table", "refused"),
    [
        ({"required": True}, r"column 'event_name' is required, but the records may hold null"),
        ({"partitioned_by": "identity(event_name)"}, r"partition field 'event_name' \(identity\(event_name\)\)"),
        ({"partitioned_by": "hour(event_time)"}, r"partition field 'event_time_hour' \(hour\(event_time\)\)"),
    ],
    ids=["required-column", "identity-partition", "hour-partition"],
)
def test_a_table_add_files_cannot_fill_is_refused_before_any_request(mixpanel, s3, iceberg, table, refused):
    server = mixpanel(events_per_day=10)
    _, bucket = s3
    events_table(iceberg, **table)
    with pytest.raises(MixpanelConfigError, match=rf"'mixpanel\.events'.*{refused}"):
        operator(bucket, from_date=str(DAYS[0]), to_date=str(DAYS[0])).execute({})
    assert server.requests == [], "a Mixpanel request was sent before the table was checked"


@pytest.mark.parametrize("stream", ["annotations", "funnels"])
def test_a_dated_kind_without_event_time_is_refused_when_the_dag_is_parsed(stream):
    with pytest.raises(MixpanelConfigError, match=rf"stream='{stream}'.*event_time"):
        operator("b", stream=stream, iceberg_table=f"mp.{stream}")


@pytest.mark.parametrize("stream", ["profiles", "cohorts", "cohort_members", "lexicon"])
def test_each_snapshot_kind_fills_a_table_of_its_columns(mixpanel, s3, iceberg, stream):
    from airflow_provider_mixpanel.schemas import record_columns

    mixpanel(cohorts=2, cohort_size=5, profiles=20)
    _, bucket = s3
    kind = {"stream": stream, "s3_key": f"mixpanel/{stream}/part-{{part}}.parquet", "iceberg_table": f"mp.{stream}"}
    for run in ("one", "two"):  # the second run replaces the first's rows
        result = operator(bucket, **kind).execute({"run_id": run, "ds": "2024-03-02"})
    rows = iceberg.load_table(f"mp.{stream}").scan().to_arrow()
    assert rows.column_names == [column.name for column in record_columns(stream, raw=False)]
    assert rows.num_rows == result["records"] > 0


def test_an_existing_table_needs_no_right_to_create_namespaces(mixpanel, s3, iceberg, monkeypatch):
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.exceptions import ForbiddenError

    server = mixpanel(events_per_day=20)
    _, bucket = s3
    operator(bucket, from_date=str(DAYS[0]), to_date=str(DAYS[0])).execute({"run_id": "creates"})

    def forbidden(self, namespace, properties=None):
        raise ForbiddenError("these credentials may not create namespaces")

    monkeypatch.setattr(SqlCatalog, "create_namespace", forbidden)
    server.config.events_per_day = 30
    operator(bucket, from_date=str(DAYS[0]), to_date=str(DAYS[0])).execute({"run_id": "writes"})
    assert rows_per_day(iceberg.load_table(TABLE)) == {DAYS[0]: server.final_day_count(DAYS[0])}


def test_a_long_backfill_keeps_its_uncommitted_parts_when_another_task_commits_the_window(
    mixpanel, s3, iceberg, monkeypatch
):
    from airflow_provider_mixpanel.transfers import base, iceberg_names

    server = mixpanel(events_per_day=200)
    _, bucket = s3
    iceberg.create_namespace_if_not_exists("mixpanel")
    real_token = iceberg_names.new_attempt_token

    def token(context):  # the backfill's attempt started 13 hours ago; its window's parts are new
        started = real_token(context)
        return started._replace(started=started.started - 13 * 60 * 60) if context["run_id"] == "backfill" else started

    monkeypatch.setattr(base, "new_attempt_token", token)
    backfill_written, daily_done = threading.Event(), threading.Event()
    real_commit = IcebergTable.commit

    def commit(self, window, parts):
        if self.run_id == "backfill":  # the backfill's parts are written; the daily task runs now
            backfill_written.set()
            daily_done.wait(60)
        return real_commit(self, window, parts)

    monkeypatch.setattr(IcebergTable, "commit", commit)
    errors: list[BaseException] = []

    def backfill() -> None:
        try:
            operator(bucket, task_id="backfill", from_date=str(DAYS[0]), to_date=str(DAYS[0])).execute(
                {"run_id": "backfill"}
            )
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=backfill)
    thread.start()
    assert backfill_written.wait(60)
    daily = operator(bucket, task_id="daily", from_date=str(DAYS[0]), to_date=str(DAYS[0]))
    result = daily.execute({"run_id": "daily"})
    daily_done.set()
    thread.join()
    assert result["deleted_stale_files"] == [], "the backfill's just-written parts were deleted"
    assert not errors, errors
    table = iceberg.load_table(TABLE)
    assert rows_per_day(table) == {DAYS[0]: server.final_day_count(DAYS[0])}
    assert max(insert_ids(table).values()) == 1
