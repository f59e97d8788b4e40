"""One answer on every road: hostile export lines and engage results give the same record, or the
same MixpanelMalformedRecordError, whichever road they take (issue 20)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
from airflow_provider_mixpanel.event_lines import event_line_normalizer
from airflow_provider_mixpanel.jsonl import lenient_members, split_line_batches, split_lines
from airflow_provider_mixpanel.records import normalize_event, normalize_profile
from airflow_provider_mixpanel.streams import RawEventChunks, RecordStream, event_converter
from tests.unit.roads import (
    MALFORMED,
    event_roads,
    profile_roads,
    raw_roads,
    reference_event,
    reference_profile,
    reference_raw,
)

HEAD = b'{"event":"e","properties":{"time":1709251200,"distinct_id":"u",'

# Each case failed on at least one road before issue 20.
HOSTILE = {
    "insert id repeated": HEAD + b'"$insert_id":"i","a":1,"$insert_id":"j"}}',
    "insert id repeated, spelled with an escape": HEAD + b'"$insert_id":"i","a":1,"\\u0024insert_id":"j"}}',
    "insert id spelled with an escape only": HEAD + b'"$insert_id":"i","\\u0024insert_id":"i"}}',
    "distinct_id repeated": HEAD + b'"$insert_id":"i","distinct_id":"v"}}',
    "distinct_id repeated, same value": HEAD + b'"$insert_id":"i","distinct_id":"u"}}',
    "time repeated, same value": HEAD + b'"$insert_id":"i","time":1709251200}}',
    "time repeated, spelled with an escape": HEAD + b'"$insert_id":"i","\\u0074ime":5}}',
    "a second event after the properties": HEAD + b'"$insert_id":"i"},"event":"e"}',
    "a second event, another name": HEAD + b'"$insert_id":"i"},"event":"f"}',
    "a second properties": HEAD
    + b'"$insert_id":"i"},"properties":{"time":1709251200,"distinct_id":"u","$insert_id":"i","a":1}}',
    "a second properties, spelled with an escape": HEAD
    + b'"$insert_id":"i"},"\\u0070roperties":{"time":1709251200,"$insert_id":"i"}}',
    "1e400 as time": (HEAD + b'"$insert_id":"i"}}').replace(b"1709251200", b"1e400"),
    "1e400 as the only time": b'{"event":"e","properties":{"time":1e400,"$insert_id":"i"}}',
    "1e400 as distinct_id, on the lenient road": (
        b'{"event":"e","properties":{"time":1,"distinct_id":1e400,"c":"a\x01"}}'
    ),
    "1e400 as insert id and event, on the lenient road": (
        b'{"event":-1e400,"properties":{"$insert_id":1e400,"c":"\x02"}}'
    ),
    "1e-400 passes unchanged": HEAD + b'"$insert_id":"i","tiny":1e-400}}',
    "a control character beside a number form": HEAD + b'"$insert_id":"i","v":{"n":1.50,"s":"a\x01b"}}}',
    "a control character in distinct_id": b'{"event":"e","properties":{"time":1,"distinct_id":"a\tb","n":1.50}}',
    "properties a string": b'{"event":"e","properties":"ab"}',
    "properties a number": b'{"event":"e","properties":5}',
    "properties a list of pairs": b'{"event":"e","properties":[["k","v"]]}',
    "properties false": b'{"event":"e","properties":false}',
    "properties an empty list": b'{"event":"e","properties":[]}',
    "properties null": b'{"event":"e","properties":null}',
    "not UTF-8, with an insert id": HEAD + b'"$insert_id":"i","a":"\xff"}}',
    "not UTF-8, without an insert id": b'{"event":"e","properties":{"time":1,"a":"\xff"}}',
    "not UTF-8 in a nested value": HEAD + b'"$insert_id":"i","a":{"b":"\xc3"}}}',
    "a surrogate written in UTF-8 bytes": HEAD + b'"$insert_id":"i","a":"\xed\xa0\xbd"}}',
    "a carriage return at the end": HEAD + b'"$insert_id":"i","a":1}}\r',
    "whitespace after the line": HEAD + b'"$insert_id":"i","a":1}} ',
}


@pytest.mark.parametrize("line", HOSTILE.values(), ids=HOSTILE.keys())
def test_every_road_gives_the_reference_answer(line):
    expected = reference_event(line)
    for road, outcome in event_roads().items():
        assert outcome(line) == expected, f"the {road} road disagrees with the reference"
    expected_raw = reference_raw(line)
    for road, outcome in raw_roads().items():
        assert outcome(line) == expected_raw, f"the {road} road disagrees with the reference"


def test_repeated_reserved_names_leave_no_trace_and_the_last_wins():
    line = HEAD + b'"$insert_id":"i","a":1,"\\u0024insert_id":"j","distinct_id":"v"}}'
    record = json.loads(event_line_normalizer()(line))
    assert (record["insert_id"], record["distinct_id"], record["properties"]) == ("j", "v", {"a": 1})


def test_a_second_top_level_member_is_not_copied():
    line = HEAD + b'"$insert_id":"i","a":1},"event":"e"}'
    out = event_line_normalizer()(line)
    assert b'"event":' not in out, out


def test_a_control_character_changes_only_itself():
    line = HEAD + b'"$insert_id":"i","v":{"n":1.50,"s":"a\x01b"}}}'
    out = event_line_normalizer()(line)
    assert out.endswith(b'"properties":{"v":{"n":1.50,"s":"a\\u0001b"}}}\n'), out


def test_a_number_beyond_float_range_is_kept_as_sent_and_never_infinity():
    line = b'{"event":"e","properties":{"time":1,"distinct_id":1e400,"c":"a\x01","big":-1e400}}'
    out = event_line_normalizer()(line)
    assert b"Infinity" not in out and b'"distinct_id":1e400' in out and b'"big":-1e400' in out, out


def test_a_number_beyond_float_range_as_time_is_malformed_and_skipped():
    lines = [HEAD.replace(b"1709251200", b"1e400") + b'"$insert_id":"i"}}', HEAD + b'"$insert_id":"j"}}']
    for encode in (False, True):
        convert = event_converter(raw=False, encode=encode, time_in_ms=False, timezone=None)
        with pytest.raises(MixpanelMalformedRecordError, match=r"^Line 1: .*'time'"):
            list(RecordStream(iter(lines), convert))
        stream = RecordStream(iter(lines), convert, skip_malformed=True)
        assert len(list(stream)) == 1 and stream.skipped_malformed == 1


@pytest.mark.parametrize("properties", [b'"ab"', b"5", b'[["k","v"]]', b"true"])
def test_properties_that_are_not_an_object_are_malformed_on_every_road(properties):
    line = b'{"event":"e","properties":' + properties + b"}"
    with pytest.raises(MixpanelMalformedRecordError, match="not a JSON object"):
        normalize_event(json.loads(line))
    stream = RecordStream(iter([line]), event_converter(raw=False, encode=False, time_in_ms=False, timezone=None))
    with pytest.raises(MixpanelMalformedRecordError, match=r"^Line 1: "):
        list(stream)


@pytest.mark.parametrize("properties", ["ab", 5, [["k", "v"]]])
def test_profile_properties_that_are_not_an_object_are_malformed(properties):
    with pytest.raises(MixpanelMalformedRecordError, match=r"\$properties"):
        normalize_profile({"$distinct_id": "u", "$properties": properties})


def test_the_error_names_the_line_and_shows_its_start():
    lines = [HEAD + b'"$insert_id":"i"}}', b'{"event":"e","properties":{"time":1,"a":"\xff"}}']
    stream = RecordStream(iter(lines), event_converter(raw=False, encode=True, time_in_ms=False, timezone=None))
    with pytest.raises(MixpanelMalformedRecordError) as caught:
        list(stream)
    assert caught.value.line_number == 2
    assert str(caught.value).startswith("Line 2: ") and '{"event":"e","properties"' in str(caught.value)


@pytest.mark.parametrize("raw", [False, True])
def test_crlf_lines_give_the_lf_lines_and_a_blank_crlf_line_is_skipped(raw):
    body = HEAD + b'"$insert_id":"i"}}\r\n\r\n' + HEAD + b'"$insert_id":"j"}}\r\n'
    lf_body = body.replace(b"\r\n", b"\n")
    convert = event_converter(raw=raw, encode=True, time_in_ms=False, timezone=None)
    for cut in range(len(body) + 1):
        lines = split_lines([body[:cut], body[cut:]])
        assert list(RecordStream(lines, convert)) == list(RecordStream(split_lines([lf_body]), convert)), cut


def test_lenient_members_escape_only_the_control_characters():
    assert lenient_members('{"a":{"n":1.50, "s":"x\ny"}}') == [("a", '{"n":1.50, "s":"x\\ny"}', 5)]


PROFILES = {
    "last_seen repeated": b'{"$distinct_id":"u","$properties":{"$last_seen":"a","x":1,"$last_seen":"b"}}',
    "last_seen spelled with an escape": b'{"$distinct_id":"u","$properties":{"\\u0024last_seen":"a","x":1.50}}',
    "properties repeated": b'{"$distinct_id":"u","$properties":{"$last_seen":"a"},"$properties":{"x":1}}',
    "distinct id repeated": b'{"$distinct_id":"u","$properties":{},"\\u0024distinct_id":"v"}',
    "properties a string": b'{"$distinct_id":"u","$properties":"ab"}',
    "properties a list of pairs": b'{"$distinct_id":"u","$properties":[["k","v"]]}',
    "properties 0": b'{"$distinct_id":"u","$properties":0}',
    "properties an empty list": b'{"$distinct_id":"u","$properties":[]}',
    "1e400 as last_seen": b'{"$distinct_id":1e400,"$properties":{"$last_seen":1e400,"a":1e-400}}',
}


@pytest.mark.parametrize("result", PROFILES.values(), ids=PROFILES.keys())
def test_every_profile_road_gives_the_reference_answer(result):
    expected = reference_profile(result)
    for road, outcome in profile_roads().items():
        assert outcome(result) == expected, f"the {road} road disagrees with the reference"
    assert expected != MALFORMED or b"$properties" in result


def test_the_batch_raw_road_refuses_what_the_raw_check_refuses():
    lines = [HEAD + b'"$insert_id":"i"}}', HEAD + b'"$insert_id":"j","a":"\xff"}}']
    chunks = RawEventChunks(split_line_batches([b"\n".join(lines)]), skip_malformed=True)
    assert b"".join(chunks) == lines[0] + b"\n"
    assert (chunks.records, chunks.skipped_malformed) == (1, 1)
    with pytest.raises(MixpanelMalformedRecordError, match=r"^Line 2: "):
        b"".join(RawEventChunks(split_line_batches([b"\n".join(lines)])))


# Deeper than Python's recursion limit, where every parser stops: a line, not a crash.
TOO_DEEP = HEAD + b'"$insert_id":"i","a":' + b"[" * 5000 + b"]" * 5000 + b"}}"


@pytest.mark.parametrize("raw", [False, True])
@pytest.mark.parametrize("encode", [False, True])
def test_a_line_nested_too_deeply_is_malformed_and_can_be_skipped(raw, encode):
    lines = [TOO_DEEP, HEAD + b'"$insert_id":"j"}}']
    convert = event_converter(raw=raw, encode=encode, time_in_ms=False, timezone=None)
    with pytest.raises(MixpanelMalformedRecordError, match=r"^Line 1: Line is nested deeper than"):
        list(RecordStream(iter(lines), convert))
    stream = RecordStream(iter(lines), convert, skip_malformed=True)
    assert len(list(stream)) == 1 and stream.skipped_malformed == 1


def test_a_line_nested_too_deeply_is_malformed_in_raw_batches():
    lines = [HEAD + b'"$insert_id":"j"}}', TOO_DEEP]
    with pytest.raises(MixpanelMalformedRecordError, match=r"^Line 2: Line is nested deeper than"):
        list(RawEventChunks(iter([list(lines)])))
    stream = RawEventChunks(iter([list(lines)]), skip_malformed=True)
    assert b"".join(stream) == lines[0] + b"\n" and stream.skipped_malformed == 1
