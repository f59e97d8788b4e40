"""The normalized JSONL contract: property values exactly as Mixpanel sent them, byte for byte."""

from __future__ import annotations

import json

import pytest

from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
from airflow_provider_mixpanel.event_lines import event_line_normalizer
from airflow_provider_mixpanel.records import normalize_event

normalize = event_line_normalizer()
# What the first release gave this input (computed with its code): a published contract.
PUBLISHED_INSERT_ID = "50577136-f00c-5332-b0f8-a42428b10b6b"


def properties_text(line: bytes) -> bytes:
    """The bytes of the ``properties`` object of a normalized line (the last member)."""
    return line.split(b',"properties":', 1)[1][:-2]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (b"1.50", "a trailing zero"),
        (b"1E+2", "an exponent form"),
        (b"-0.0", "negative zero"),
        (b"123456789012345678901234567890", "an integer beyond 64 bits"),
        (b'"caf\\u00e9 \\u2028"', "unicode escapes"),
        (b'"caf\xc3\xa9"', "raw UTF-8"),
        (b'{"b": [1 ,2], "a": {"z": null}}', "a nested object with its own spacing and key order"),
        (b'"\\/slash"', "an escaped slash"),
    ],
)
def test_property_values_are_written_byte_for_byte(value, why):
    line = b'{"event":"e","properties":{"time":1709251200,"distinct_id":"u","$insert_id":"i","v":' + value + b"}}"
    assert properties_text(normalize(line)) == b'{"v":' + value + b"}", why


def test_key_order_is_kept():
    line = b'{"event":"e","properties":{"z":1,"time":1709251200,"a":2,"m":3}}'
    assert properties_text(normalize(line)) == b'{"z":1,"a":2,"m":3}'


def test_fields_we_produce():
    line = b'{"event":"Sign Up","properties":{"time":1709251200,"distinct_id":42,"$insert_id":"abc","x":1}}'
    record = json.loads(normalize(line))
    assert list(record) == ["event_name", "event_time", "distinct_id", "insert_id", "properties"]
    assert record == {
        "event_name": "Sign Up",
        "event_time": "2024-03-01T00:00:00+00:00",
        "distinct_id": 42,
        "insert_id": "abc",
        "properties": {"x": 1},
    }


def test_deterministic_insert_id_is_unchanged():
    raw = {"event": "e", "properties": {"time": 1709251200, "distinct_id": "u", "price": 1.5}}
    line = json.dumps(raw).encode()
    assert json.loads(normalize(line))["insert_id"] == normalize_event(raw)["insert_id"]
    assert normalize_event(raw)["insert_id"] == PUBLISHED_INSERT_ID, "re-runs must keep giving the same id"


def test_lone_surrogate_escape_is_kept_as_sent():
    line = b'{"event":"e","properties":{"time":1709251200,"t":"broken \\ud83d emoji","n":1.50}}'
    out = normalize(line)
    assert properties_text(out) == b'{"t":"broken \\ud83d emoji","n":1.50}'
    assert json.loads(out)["properties"]["t"] == "broken \ud83d emoji"


def test_unescaped_control_characters_are_written_back_escaped():
    line = b'{"event":"e","properties":{"time":1709251200,"note":"a\x01b\tc","n":1.50}}'
    out = normalize(line)
    assert properties_text(out) == b'{"note":"a\\u0001b\\tc","n":1.50}'
    json.loads(out)  # valid JSON


def test_missing_fields_get_the_published_defaults():
    record = json.loads(normalize(b'{"properties":{"time":0}}'))
    assert record["event_name"] == "" and record["distinct_id"] == ""
    assert record["insert_id"] == normalize_event({"properties": {"time": 0}})["insert_id"]


@pytest.mark.parametrize(
    "line", [b"[1]", b'{"event":"e","properties":[1]}', b'{"event":"e","properties":{"time":"x"}}']
)
def test_malformed_lines_raise(line):
    with pytest.raises(MixpanelMalformedRecordError):
        normalize(line)
