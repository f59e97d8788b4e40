from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
from airflow_provider_mixpanel.records import normalize_event, normalize_profile


def _lines(samples, name):
    return [json.loads(line) for line in (samples / name).read_text(encoding="utf-8").splitlines() if line]


def test_event_fields_are_taken_out_of_properties():
    raw = {
        "event": "Purchase",
        "properties": {"time": 1602611311, "distinct_id": "u1", "$insert_id": "abc", "amount": 9.5},
    }
    assert normalize_event(raw) == {
        "event_name": "Purchase",
        "event_time": datetime(2020, 10, 13, 17, 48, 31, tzinfo=UTC),
        "distinct_id": "u1",
        "insert_id": "abc",
        "properties": {"amount": 9.5},
    }


def test_input_record_is_not_modified():
    raw = {"event": "x", "properties": {"time": 1, "distinct_id": "u", "$insert_id": "i", "nested": {"a": [1]}}}
    before = copy.deepcopy(raw)
    normalize_event(raw)
    normalize_profile({"$distinct_id": 1, "$properties": {"$last_seen": "2020-01-01T00:00:00"}})
    assert raw == before


def test_nested_values_lists_and_numbers_stay_as_they_came(samples):
    (raw,) = _lines(samples, "event_object_list_of_objects_mixpanel_docs_datatype.jsonl")
    event = normalize_event(raw)
    assert event["properties"]["cart"] == raw["properties"]["cart"]


def test_missing_fields_get_defaults(samples):
    (raw,) = _lines(samples, "event_object_list_of_objects_mixpanel_docs_datatype.jsonl")
    event = normalize_event(raw)
    assert event["distinct_id"] == ""
    assert event["event_time"] == datetime(1970, 1, 1, tzinfo=UTC)
    assert len(event["insert_id"]) == 36


def test_missing_insert_id_is_deterministic():
    raw = {"event": "x", "properties": {"time": 5, "distinct_id": "u"}}
    assert normalize_event(raw)["insert_id"] == normalize_event(copy.deepcopy(raw))["insert_id"]
    other = {"event": "x", "properties": {"time": 6, "distinct_id": "u"}}
    assert normalize_event(raw)["insert_id"] != normalize_event(other)["insert_id"]


def test_docs_samples_normalize(samples):
    events = [normalize_event(r) for r in _lines(samples, "export_mixpanel_docs_export_methods.jsonl")]
    assert [e["event_time"] for e in events] == [
        datetime(2020, 10, 13, 17, 48, 31, tzinfo=UTC),
        datetime(2020, 10, 15, 18, 38, 41, tzinfo=UTC),
    ]
    assert [e["insert_id"] for e in events] == ["ABCDE", "ABCDE"]
    assert events[0]["properties"] == {"mp_processing_time_ms": 1602625711874}


def test_unicode_escapes_sample_keeps_text(samples):
    events = [normalize_event(r) for r in _lines(samples, "event_objects_unicode_escapes_mixpanel_docs_pubsub.jsonl")]
    assert events[2]["properties"]["title"].endswith("Now They\u2019re a Selling Point")
    assert events[0]["insert_id"] == "28096095"
    assert events[0]["properties"]["score"] == "1", "a string property must stay a string"


def test_time_in_ms_keeps_milliseconds():
    event = normalize_event({"event": "x", "properties": {"time": 1602611311123}}, time_in_ms=True)
    assert event["event_time"] == datetime(2020, 10, 13, 17, 48, 31, 123000, tzinfo=UTC)


def test_milliseconds_without_time_in_ms_is_a_clear_error():
    with pytest.raises(MixpanelMalformedRecordError, match="time_in_ms"):
        normalize_event({"event": "x", "properties": {"time": 1602611311123000}})


def test_non_numeric_time_is_malformed():
    with pytest.raises(MixpanelMalformedRecordError, match="'time'"):
        normalize_event({"event": "x", "properties": {"time": "yesterday"}})


def test_numeric_string_time_is_accepted():
    assert normalize_event({"properties": {"time": "1602611311"}})["event_time"].year == 2020


def test_project_timezone_turns_local_epoch_into_utc():
    # 2020-10-13 17:48:31 New York wall-clock time, written as if it were UTC (pre-2023 projects).
    event = normalize_event({"event": "x", "properties": {"time": 1602611311}}, project_timezone="America/New_York")
    assert event["event_time"] == datetime(2020, 10, 13, 21, 48, 31, tzinfo=UTC)
    assert event["event_time"].tzinfo is UTC


def test_profile_normalization(samples):
    page = json.loads((samples / "engage_mixpanel_docs_openapi.json").read_text())
    (profile,) = [normalize_profile(r) for r in page["results"]]
    assert profile["distinct_id"] == 4, "integer $distinct_id must be kept as given"
    assert profile["last_seen"] == "2008-06-09T23:08:40"
    assert "$last_seen" not in profile["properties"]
    assert profile["properties"]["$email"] == "example@mixpanel.com"


def test_profile_without_last_seen():
    assert normalize_profile({"$distinct_id": "u", "$properties": {"a": 1}}) == {
        "distinct_id": "u",
        "last_seen": None,
        "properties": {"a": 1},
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=8), st.booleans(), st.booleans())
def test_every_property_is_kept(extra, with_insert_id, with_distinct_id):
    properties = dict(extra)
    properties["time"] = 1_700_000_000
    if with_insert_id:
        properties["$insert_id"] = "given"
    if with_distinct_id:
        properties["distinct_id"] = "u"
    raw = {"event": "e", "properties": properties}
    event = normalize_event(raw)
    rest = {k: v for k, v in properties.items() if k not in ("time", "$insert_id", "distinct_id")}
    assert event["properties"] == rest
    assert event["insert_id"] == ("given" if with_insert_id else normalize_event(copy.deepcopy(raw))["insert_id"])


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=8), json_values)
def test_every_profile_property_is_kept(properties, distinct_id):
    profile = normalize_profile({"$distinct_id": distinct_id, "$properties": properties})
    assert profile["distinct_id"] == distinct_id
    assert profile["properties"] == {k: v for k, v in properties.items() if k != "$last_seen"}
    assert profile["last_seen"] == properties.get("$last_seen")


@given(
    st.dictionaries(st.text(max_size=10), json_values, max_size=8),
    st.one_of(st.integers(min_value=0, max_value=4_000_000_000), st.floats(min_value=0, max_value=4e9)),
    st.booleans(),
    st.sampled_from([None, "America/New_York", "Asia/Kolkata"]),
)
def test_jsonl_line_holds_the_record_normalize_event_gives(extra, time, time_in_ms, timezone):
    from airflow_provider_mixpanel.event_lines import event_line_normalizer
    from airflow_provider_mixpanel.jsonl import dumps_line

    raw = {"event": "e", "properties": {**extra, "time": time}}
    try:
        line = json.dumps(raw, allow_nan=False).encode("utf-8", "surrogatepass")
    except ValueError:  # NaN and infinities are not JSON; Mixpanel never sends them
        return
    to_jsonl = event_line_normalizer(time_in_ms=time_in_ms, project_timezone=timezone)
    expected = json.loads(dumps_line(normalize_event(raw, time_in_ms=time_in_ms, project_timezone=timezone)))
    assert json.loads(to_jsonl(line)) == expected
    assert json.loads(to_jsonl(line)) == expected, "the cached time must give the same text"
