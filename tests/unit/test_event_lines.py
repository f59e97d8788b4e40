"""The normalized JSONL contract: property values exactly as Mixpanel sent them, byte for byte."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta

import pytest

from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
from airflow_provider_mixpanel.event_lines import _general_normalizer, event_line_normalizer
from airflow_provider_mixpanel.records import event_time_text_cache, normalize_event
from airflow_provider_mixpanel.testing.data import SyntheticEvents

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


# --- The splice road (Mixpanel's own layout) gives exactly what the members road gives ----------

general = _general_normalizer(event_time_text_cache())
HEAD = b'{"event":"Sign Up","properties":{"time":1709251200,"distinct_id":"u-1",'

LAYOUTS = {
    "insert id right after distinct_id": HEAD + b'"$insert_id":"i-1","a":1.50,"b":[1]}}',
    "insert id among sorted flat members": HEAD
    + b'"$browser":"Chrome","$city":"Z\\u00fcrich","$insert_id":"i-1","x":{"y":2}}}',
    "insert id last": HEAD + b'"$browser":"Chrome","$insert_id":"i-1"}}',
    "insert id the only other member": HEAD + b'"$insert_id":"i-1"}}',
    "insert id after a nested value": HEAD + b'"a":{"b":1},"$insert_id":"i-1","c":2}}',
    "a nested insert id before the real one": HEAD + b'"a":{"$insert_id":"i-1"},"$insert_id":"i-1"}}',
    "a nested insert id only": HEAD + b'"a":{"$insert_id":"i-1"},"c":2}}',
    "insert id text inside a string": HEAD + b'"a":",\\"$insert_id\\":\\"i-1\\"","$insert_id":"i-1"}}',
    "a list before the insert id": HEAD + b'"a":[1,2],"$insert_id":"i-1"}}',
    "null insert id": HEAD + b'"$insert_id":null,"a":1}}',
    "no insert id": HEAD + b'"a":1}}',
    "numeric insert id": HEAD + b'"$insert_id":12345678901234567890123,"a":1}}',
    "insert id with escapes": HEAD + b'"$insert_id":"i\\"\\u00e9","a":1}}',
    "numeric distinct id": b'{"event":"e","properties":{"time":1709251200,"distinct_id":42,"$insert_id":"i"}}',
    "null distinct id": b'{"event":"e","properties":{"time":1709251200,"distinct_id":null,"$insert_id":"i"}}',
    "escaped event name": b'{"event":"a\\"b\\u00e9","properties":{"time":1709251200,"distinct_id":"u","$insert_id":"i"}}',  # noqa: E501
    "distinct_id last": b'{"event":"e","properties":{"time":1709251200,"$insert_id":"i","distinct_id":"u"}}',
    "no distinct_id": b'{"event":"e","properties":{"time":1709251200,"$insert_id":"i","a":1}}',
    "time not first": b'{"event":"e","properties":{"distinct_id":"u","time":1709251200,"$insert_id":"i"}}',
    "spaced JSON": b'{"event": "e", "properties": {"time": 1709251200, "distinct_id": "u", "$insert_id": "i"}}',
    "properties first": b'{"properties":{"time":1709251200,"distinct_id":"u","$insert_id":"i"},"event":"e"}',
    "another top-level member": b'{"event":"e","properties":{"time":1,"distinct_id":"u","$insert_id":"i"},"x":{}}',
    "null properties": b'{"event":"e","properties":null}',
    "no event": b'{"properties":{"time":1709251200,"distinct_id":"u","$insert_id":"i"}}',
    "float time": b'{"event":"e","properties":{"time":1709251200.5,"distinct_id":"u","$insert_id":"i"}}',
    "string time": b'{"event":"e","properties":{"time":"1709251200","distinct_id":"u","$insert_id":"i"}}',
    "negative time": b'{"event":"e","properties":{"time":-1,"distinct_id":"u","$insert_id":"i"}}',
    "negative zero time": b'{"event":"e","properties":{"time":-0,"distinct_id":"u","$insert_id":"i"}}',
    "last second of datetime": b'{"event":"e","properties":{"time":253402300799,"distinct_id":"u","$insert_id":"i"}}',
    "time before a leap day": b'{"event":"e","properties":{"time":951782399,"distinct_id":"u","$insert_id":"i"}}',
    "duplicate time": b'{"event":"e","properties":{"time":1,"distinct_id":"u","$insert_id":"i","time":1709251200}}',
    "lone surrogate": HEAD + b'"$insert_id":"i","t":"\\ud83d"}}',
    "control character": HEAD + b'"$insert_id":"i","t":"a\x01b"}}',
}


@pytest.mark.parametrize("line", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_every_layout_gives_the_record_of_the_members_road(line):
    assert normalize(line) == general(line)
    expected = normalize_event(json.loads(line, strict=False))
    expected["event_time"] = expected["event_time"].isoformat()
    assert json.loads(normalize(line)) == expected


def test_mixpanel_layout_keeps_property_names_as_sent():
    # Only the splice road can keep a name's escapes: this line takes it.
    line = HEAD + b'"$insert_id":"i","\\u00e9t\\u00e9":1}}'
    assert properties_text(normalize(line)) == b'{"\\u00e9t\\u00e9":1}'


@pytest.mark.parametrize("time_in_ms", [False, True])
def test_event_time_text_is_what_isoformat_writes(time_in_ms):
    splice = event_line_normalizer(time_in_ms=time_in_ms)
    members = _general_normalizer(event_time_text_cache(time_in_ms=time_in_ms))
    scale = 1000 if time_in_ms else 1
    moments = [0, 1, 59, 86_399, 86_400, 951_782_399, 951_868_800, 1_709_251_200, 4_102_444_799, 253_402_300_799]
    moments = [m * scale for m in moments] + ([1_709_251_200_123, 1_709_251_200_001, 999] if time_in_ms else [])
    for moment in moments:
        line = b'{"event":"e","properties":{"time":%d,"distinct_id":"u","$insert_id":"i"}}' % moment
        assert splice(line) == members(line), moment
        expected = (
            datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=moment)
            if time_in_ms
            else datetime.fromtimestamp(moment, UTC)
        ).isoformat()
        assert json.loads(splice(line))["event_time"] == expected


@pytest.mark.parametrize("ascii_escape", [False, True])
def test_synthetic_days_agree_with_the_members_road(ascii_escape):
    for line in SyntheticEvents(500, ascii_escape=ascii_escape).day_lines(date(2024, 2, 29)):
        assert normalize(line.rstrip(b"\n")) == general(line.rstrip(b"\n"))


def _random_value(rng: random.Random, depth: int = 0) -> bytes:
    """A JSON value's text in one of the forms Mixpanel and its SDKs send."""
    kinds = ["string", "number", "literal"] + (["object", "list"] if depth < 2 else [])
    kind = rng.choice(kinds)
    if kind == "string":
        return rng.choice(
            [
                b'"plain"',
                b'"a,\\"$insert_id\\":\\"x\\""',
                b'"{[}]"',
                b'"caf\\u00e9"',
                b'"caf\xc3\xa9"',
                b'"\\\\"',
                b'""',
            ]
        )
    if kind == "number":
        return rng.choice([b"0", b"-1", b"1.50", b"1E+2", b"-0.0", b"123456789012345678901234567890"])
    if kind == "literal":
        return rng.choice([b"true", b"false", b"null"])
    if kind == "list":
        return b"[" + b",".join(_random_value(rng, depth + 1) for _ in range(rng.randrange(3))) + b"]"
    members = [(rng.choice([b"a", b"$insert_id", b"time"]), _random_value(rng, depth + 1)) for _ in range(2)]
    return b"{" + b",".join(b'"%s":%s' % member for member in members) + b"}"


def test_random_layouts_agree_with_the_members_road():
    rng = random.Random(20261126)
    for case in range(3000):
        others = [(b"p%d" % i, _random_value(rng)) for i in range(rng.randrange(6))]
        if rng.random() < 0.9:
            others.insert(rng.randrange(len(others) + 1), (b"$insert_id", rng.choice([b'"i-%d"' % case, b"null"])))
        front = [(b"time", b"%d" % rng.choice([0, 1_709_251_200, 1_709_251_200_123])), (b"distinct_id", b'"u"')]
        members = front + others if rng.random() < 0.8 else others + front
        properties = b"{" + b",".join(b'"%s":%s' % member for member in members) + b"}"
        line = b'{"event":"e","properties":' + properties + b"}"
        assert _outcome(normalize, line) == _outcome(general, line), line


def _outcome(function, line):
    try:
        return function(line)
    except MixpanelMalformedRecordError as err:
        return str(err)


# Found by review: lines Mixpanel does not send, which must still give valid JSON or a clear error.
ODD = {
    "a value that begins with the insert id's text": HEAD + b'"$insert_id":123,"$insert_id":12}}',
    "space after the insert id": HEAD + b'"$insert_id":"i" ,"a":1}}',
    "spaces inside the kept members": HEAD + b'"a" : 1 ,"$insert_id":"i"}}',
    "a carriage return at the end": HEAD + b'"$insert_id":"i","a":1}}\r',
}


@pytest.mark.parametrize("line", ODD.values(), ids=ODD.keys())
def test_odd_lines_give_the_same_record_as_the_members_road(line):
    assert json.loads(normalize(line)) == json.loads(general(line))


def test_repeated_property_names_are_kept_as_sent():
    # JSON leaves the meaning of a repeated name to the reader; the line keeps what was sent.
    line = HEAD + b'"$insert_id":"i","a":1.50,"a":[]}}'
    assert properties_text(normalize(line)) == b'{"a":1.50,"a":[]}'


@pytest.mark.parametrize(
    "line",
    [
        b'{"event":"e","properties":{"time":1,"a":"\xff"}}',  # not UTF-8, no $insert_id
        HEAD + b'"\xff":1}}',  # not UTF-8 in a name
        b'\xef\xbb\xbf{"event":"e","properties":{"time":1,"a":1}}',  # a byte order mark
        '{"event":"e","properties":{"time":1}}'.encode("utf-16-le"),
        b'{"event":"e","properties":{"time":1,"a":NaN}}',
        b'{"event":"e","properties":{"time":1,"a":Infinity}}',
    ],
)
def test_lines_that_are_not_utf8_json_are_malformed(line):
    with pytest.raises(MixpanelMalformedRecordError):
        normalize(line)


def test_a_true_time_is_refused_whatever_came_before():
    line = b'{"event":"e","properties":{"time":%s,"distinct_id":"u","$insert_id":"i"}}'
    for time_in_ms in (False, True):
        normalizer = event_line_normalizer(time_in_ms=time_in_ms)
        normalizer(line % b"1.0")
        normalizer(line % b"1")
        with pytest.raises(MixpanelMalformedRecordError):
            normalizer(line % b"true")
