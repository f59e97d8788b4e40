"""Parquet parts written to S3 (moto) and GCS (fake-gcs-server), read back by DuckDB.

Every check compares what DuckDB reads from the objects with the test server's synthetic source:
rows per day, the set of insert ids, event times to the microsecond, and properties through
DuckDB's own JSON functions.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from airflow_provider_mixpanel.schemas import bigquery_schema
from airflow_provider_mixpanel.transfers.mixpanel_to_gcs import MixpanelStreamToGCSOperator
from airflow_provider_mixpanel.transfers.mixpanel_to_s3 import MixpanelStreamToS3Operator
from tests.integration.transfers.helpers import gcs_objects, jsonl, open_multipart_uploads, s3_objects

pytestmark = pytest.mark.integration

DAYS = [date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)]
PARQUET_MAGIC = b"PAR1"
HOOK = {"backoff_base": 0.01, "read_timeout": 2.0, "max_retries": 3}


class Destination:
    """One storage emulator's bucket, and an operator writing there."""

    def __init__(self, kind: str, storage: tuple[Any, str]):
        self.kind = kind
        self.client, self.bucket = storage

    def operator(self, name: str, **kwargs: Any) -> MixpanelStreamToS3Operator | MixpanelStreamToGCSOperator:
        options = {"task_id": f"parquet_to_{self.kind}", "mixpanel_hook_kwargs": HOOK, **kwargs}
        if self.kind == "s3":
            return MixpanelStreamToS3Operator(s3_bucket=self.bucket, s3_key=name, **options)
        return MixpanelStreamToGCSOperator(bucket=self.bucket, object_name=name, **options)

    def objects(self) -> dict[str, bytes]:
        """The Parquet objects in the bucket (not the manifests or the schema)."""
        every = (s3_objects if self.kind == "s3" else gcs_objects)(self.client, self.bucket)
        return {name: data for name, data in every.items() if name.endswith(".parquet")}

    def object(self, name: str) -> bytes:
        return (s3_objects if self.kind == "s3" else gcs_objects)(self.client, self.bucket)[name]

    def content_type(self, name: str) -> str:
        if self.kind == "s3":
            return self.client.head_object(Bucket=self.bucket, Key=name)["ContentType"]
        blob = self.client.bucket(self.bucket).get_blob(name)
        return blob.content_type

    def no_open_uploads(self) -> bool:
        return self.kind != "s3" or not open_multipart_uploads(self.client, self.bucket)


@pytest.fixture(params=["s3", "gcs"])
def destination(request) -> Destination:
    return Destination(request.param, request.getfixturevalue(request.param))


def duckdb_over(objects: dict[str, bytes], directory: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the view ``parts`` over these Parquet objects (each saved to a file)."""
    paths = []
    for number, (name, data) in enumerate(sorted(objects.items())):
        assert data[:4] == PARQUET_MAGIC == data[-4:], f"{name} is not a complete Parquet file"
        path = directory / f"{number:05d}.parquet"
        path.write_bytes(data)
        paths.append(str(path))
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(f"CREATE VIEW parts AS SELECT * FROM read_parquet({paths!r})")
    return connection


def source_events(server, days: list[date]) -> dict[str, dict[str, Any]]:
    """The server's events of these days by $insert_id, parsed from its export lines."""
    events = {}
    for day in days:
        for line in server.final_day_lines(day):
            record = json.loads(line)
            events[record["properties"]["$insert_id"]] = record
    return events


def column_types(connection: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {row[0]: row[1] for row in connection.execute("DESCRIBE parts").fetchall()}


def test_normalized_events_read_back_by_duckdb(mixpanel, destination, tmp_path):
    server = mixpanel(events_per_day=700)
    manifest = destination.operator(
        "mixpanel/events/{window}/part-{part}.parquet",
        from_date=str(DAYS[0]),
        to_date=str(DAYS[-1]),
        window_days=1,
        output_format="parquet",
        max_file_size_bytes=64 * 1024,
    ).execute({})
    objects = destination.objects()
    assert sorted(objects) == sorted(uri.split("/", 3)[3] for uri in manifest["files"])
    assert manifest["output_format"] == "parquet" and manifest["compression"] == "zstd"
    db = duckdb_over(objects, tmp_path)
    source = source_events(server, DAYS)

    assert column_types(db) == {
        "event_name": "VARCHAR",
        "event_time": "TIMESTAMP WITH TIME ZONE",
        "distinct_id": "VARCHAR",
        "insert_id": "VARCHAR",
        "properties": "JSON",
    }, "the Parquet logical types are not what DuckDB should read"
    per_day = dict(db.execute("SELECT CAST(event_time AS DATE), count(*) FROM parts GROUP BY 1").fetchall())
    assert per_day == {day: server.final_day_count(day) for day in DAYS}, "rows per day differ from the source"
    rows = db.execute(
        """SELECT insert_id, event_name, epoch_us(event_time), distinct_id,
                  properties->>'$."$city"', json_extract(properties, '$.amount')::VARCHAR,
                  json_extract(properties, '$.items[0].sku')::VARCHAR, json_exists(properties, '$.time')
           FROM parts"""
    ).fetchall()
    assert len(rows) == len(source) == manifest["records"]
    assert {row[0] for row in rows} == set(source), "the set of insert_ids differs from the source"
    for insert_id, name, micros, distinct_id, city, amount, sku, has_time in rows:
        event = source[insert_id]
        properties = event["properties"]
        assert name == event["event"]
        assert micros == properties["time"] * 1_000_000, f"{insert_id}: event_time is not the source's time"
        assert distinct_id == properties["distinct_id"]
        assert city == properties["$city"]
        assert json.loads(amount) == properties["amount"]
        assert sku == '"SKU-1"'
        assert not has_time, "time belongs in event_time, not in properties"


def test_properties_keep_the_source_text_byte_for_byte(mixpanel, s3, tmp_path):
    """The JSON column holds what Mixpanel sent: number forms (0.00), raw UTF-8, U+2028, key order."""
    server = mixpanel(events_per_day=50)
    Destination("s3", s3).operator(
        "e/{window}.parquet", from_date=str(DAYS[0]), to_date=str(DAYS[0]), output_format="parquet"
    ).execute({})
    db = duckdb_over(Destination("s3", s3).objects(), tmp_path)
    written = dict(db.execute("SELECT insert_id, properties::VARCHAR FROM parts").fetchall())
    for line in server.final_day_lines(DAYS[0]):
        text = line.decode()
        insert_id = json.loads(text)["properties"]["$insert_id"]
        # every property but the three taken out, in the source's order and spelling
        source = text.split(',"properties":', 1)[1].rstrip("\n")[:-1]
        expected = re.sub(r'"time":\d+,"distinct_id":"[^"]*",', "", source, count=1)
        expected = expected.replace(f',"$insert_id":"{insert_id}"', "", 1)
        assert written[insert_id] == expected, f"{insert_id}: the properties text is not the source's"
        properties = written[insert_id]
        assert "\u2028" in properties and "näive" in properties, "raw UTF-8 should stay unescaped"


def test_raw_events_keep_each_top_level_value_as_json(mixpanel, destination, tmp_path):
    server = mixpanel(events_per_day=300)
    manifest = destination.operator(
        "raw/{window}/events.parquet", from_date=str(DAYS[0]), to_date=str(DAYS[1]), window_days=1,
        output_format="parquet", raw=True, compression="snappy",
    ).execute({})  # fmt: skip
    db = duckdb_over(destination.objects(), tmp_path)
    assert column_types(db) == {"event": "JSON", "properties": "JSON"}
    rows = db.execute(
        "SELECT event->>'$', properties->>'$.\"$insert_id\"', json_extract(properties, '$.time')::BIGINT FROM parts"
    ).fetchall()
    source = source_events(server, DAYS[:2])
    assert len(rows) == len(source) == manifest["records"]
    assert {(name, insert_id, time) for name, insert_id, time in rows} == {
        (e["event"], i, e["properties"]["time"]) for i, e in source.items()
    }


def test_profiles_normalized_and_raw(mixpanel, destination, tmp_path):
    mixpanel(profiles=900, page_size=400)
    destination.operator("profiles/part-{part}.parquet", stream="profiles", output_format="parquet").execute({})
    destination.operator(
        "raw-profiles/part-{part}.parquet", stream="profiles", output_format="parquet", raw=True
    ).execute({})
    objects = destination.objects()
    normalized = duckdb_over({k: v for k, v in objects.items() if k.startswith("profiles/")}, tmp_path)
    assert column_types(normalized) == {"distinct_id": "VARCHAR", "last_seen": "VARCHAR", "properties": "JSON"}
    rows = normalized.execute("SELECT distinct_id, last_seen, properties->>'$.\"$email\"' FROM parts").fetchall()
    assert sorted(rows) == sorted(
        (f"user-{i}", f"2024-01-{1 + i % 28:02d}T10:{i % 60:02d}:00", f"user{i}@example.com") for i in range(900)
    )
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    raw = duckdb_over({k: v for k, v in objects.items() if k.startswith("raw-profiles/")}, raw_dir)
    assert column_types(raw) == {"$distinct_id": "JSON", "$properties": "JSON"}
    ids = raw.execute("""SELECT "$distinct_id"->>'$', "$properties"->>'$."$last_seen"' FROM parts""").fetchall()
    assert {i for i, _ in ids} == {f"user-{i}" for i in range(900)}
    assert all(last_seen for _, last_seen in ids), "raw profiles keep $last_seen in $properties"


def test_parts_rotate_restart_and_replace_stale_parts(mixpanel, destination, tmp_path):
    """A dropped connection mid-window restarts it from scratch; a re-run with less data deletes
    the parts it no longer writes; every part is a complete file with the Parquet content type."""
    server = mixpanel(events_per_day=3000)
    name = "e/{window}/part-{part}.parquet"
    options = {"from_date": str(DAYS[0]), "to_date": str(DAYS[0]), "output_format": "parquet"}
    first = destination.operator(name, max_file_size_bytes=64 * 1024, **options).execute({})
    assert len(first["files"]) >= 2, "the part size should have rotated parts"
    server.add_fault("drop", after_records=2000)
    second = destination.operator(name, **options).execute({})
    assert len(second["files"]) == 1
    assert sorted(second["deleted_stale_files"]) == sorted(set(first["files"]) - set(second["files"]))
    objects = destination.objects()
    assert sorted(objects) == sorted(f"e/2024-03-01/part-{n:05d}.parquet" for n in range(len(second["files"])))
    assert destination.content_type(sorted(objects)[0]) == "application/vnd.apache.parquet"
    assert destination.no_open_uploads()
    db = duckdb_over(objects, tmp_path)
    count, distinct = db.execute("SELECT count(*), count(DISTINCT insert_id) FROM parts").fetchone()
    assert count == distinct == 3000 == second["records"], "the restart wrote a record twice or lost one"


def test_an_empty_day_writes_an_empty_parquet_file(mixpanel, destination, tmp_path):
    mixpanel(events_per_day=0)
    manifest = destination.operator(
        "empty/{window}.parquet", from_date=str(DAYS[0]), to_date=str(DAYS[0]), output_format="parquet"
    ).execute({})
    db = duckdb_over(destination.objects(), tmp_path)
    assert manifest["records"] == 0
    assert db.execute("SELECT count(*) FROM parts").fetchone() == (0,)
    assert "event_time" in column_types(db), "an empty part still carries the schema"


@pytest.mark.parametrize("output_format", ["jsonl", "parquet"])
def test_schema_object_is_written_next_to_the_parts(mixpanel, destination, output_format):
    mixpanel(events_per_day=20)
    operator = destination.operator(
        "m/{window}/part-{part}." + ("parquet" if output_format == "parquet" else "jsonl.gz"),
        from_date=str(DAYS[0]),
        to_date=str(DAYS[0]),
        output_format=output_format,
        schema_object_name="{{ params.prefix }}/schema.json",
    )
    operator.render_template_fields({"params": {"prefix": "m"}})
    result = operator.execute({})
    schema = json.loads(destination.object("m/schema.json"))
    assert schema == bigquery_schema("events", raw=False, output_format=output_format)
    types = {field["name"]: field["type"] for field in schema}
    assert types["event_time"] == "TIMESTAMP"
    assert types["properties"] == ("JSON" if output_format == "jsonl" else "STRING")
    scheme = "s3" if destination.kind == "s3" else "gs"
    assert result["schema_file"] == f"{scheme}://{destination.bucket}/m/schema.json"
    assert destination.content_type("m/schema.json") == "application/json"
    assert "m/schema.json" not in result["files"]
    if output_format == "jsonl":
        records = jsonl(destination.object("m/2024-03-01/part-00000.jsonl.gz"))
        assert [f["name"] for f in schema] == list(records[0]), "the schema's fields are not the records' keys"


def test_event_times_before_and_after_each_day_stay_exact(mixpanel, s3, tmp_path):
    """event_time is microseconds since the epoch in UTC: first and last event of each day."""
    mixpanel(events_per_day=4)
    Destination("s3", s3).operator(
        "t/{window}/events.parquet",
        from_date=str(DAYS[0]),
        to_date=str(DAYS[-1]),
        window_days=1,
        output_format="parquet",
    ).execute({})
    db = duckdb_over(Destination("s3", s3).objects(), tmp_path)
    times = sorted(row[0] for row in db.execute("SELECT event_time FROM parts").fetchall())
    expected = [datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(hours=6 * i) for d in DAYS for i in range(4)]
    assert times == expected
