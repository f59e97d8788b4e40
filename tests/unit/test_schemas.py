"""The record formats' columns and their BigQuery schemas."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.jsonl import dumps_line
from airflow_provider_mixpanel.records import normalize_event, normalize_profile
from airflow_provider_mixpanel.schemas import bigquery_schema, check_bigquery_columns, record_columns

RAW_EVENT = {"event": "Purchase", "properties": {"time": 1709251200, "distinct_id": "u1", "$insert_id": "i1", "a": 1}}
RAW_PROFILE = {"$distinct_id": "u1", "$properties": {"$last_seen": "2024-01-01T00:00:00", "plan": "pro"}}


@pytest.mark.parametrize(
    ("stream", "raw", "record"),
    [
        ("events", False, normalize_event(RAW_EVENT)),
        ("events", True, RAW_EVENT),
        ("profiles", False, normalize_profile(RAW_PROFILE)),
        ("profiles", True, RAW_PROFILE),
    ],
)
def test_columns_are_the_keys_of_the_records_in_order(stream, raw, record):
    assert [c.name for c in record_columns(stream, raw=raw)] == list(record)


def test_normalized_event_schema_for_jsonl():
    schema = bigquery_schema("events", raw=False, output_format="jsonl")
    assert [(f["name"], f["type"], f["mode"]) for f in schema] == [
        ("event_name", "STRING", "NULLABLE"),
        ("event_time", "TIMESTAMP", "NULLABLE"),
        ("distinct_id", "STRING", "NULLABLE"),
        ("insert_id", "STRING", "NULLABLE"),
        ("properties", "JSON", "NULLABLE"),
    ]
    assert all(f["description"] for f in schema), "every field says what it holds"


def test_json_columns_load_as_string_from_parquet():
    """BigQuery's batch loads read the JSON type from JSONL but not from Parquet."""
    types = {f["name"]: f["type"] for f in bigquery_schema("events", raw=False, output_format="parquet")}
    assert types == {
        "event_name": "STRING",
        "event_time": "TIMESTAMP",
        "distinct_id": "STRING",
        "insert_id": "STRING",
        "properties": "STRING",
    }
    raw = {f["name"]: f["type"] for f in bigquery_schema("events", raw=True, output_format="jsonl")}
    assert raw == {"event": "JSON", "properties": "JSON"}


def test_jsonl_event_time_is_a_bigquery_timestamp_literal():
    """BigQuery reads 2024-03-01T00:00:00+00:00 into TIMESTAMP: the JSONL text has date, T, time and offset."""
    line = dumps_line(normalize_event(RAW_EVENT))
    assert b'"event_time":"2024-03-01T00:00:00+00:00"' in line
    assert datetime.fromisoformat("2024-03-01T00:00:00+00:00") == datetime(2024, 3, 1, tzinfo=UTC)


def test_raw_profiles_have_no_bigquery_schema():
    with pytest.raises(MixpanelConfigError, match=r"\$distinct_id, \$properties of raw profiles.*raw=False"):
        check_bigquery_columns("profiles", raw=True, where="Task 't': ")
    for stream, raw in (("events", False), ("events", True), ("profiles", False)):
        check_bigquery_columns(stream, raw=raw)


def test_unknown_stream_or_format_is_refused():
    with pytest.raises(ValueError, match="stream='people'"):
        record_columns("people", raw=False)
    with pytest.raises(ValueError, match="output_format='csv'"):
        bigquery_schema("events", raw=False, output_format="csv")
