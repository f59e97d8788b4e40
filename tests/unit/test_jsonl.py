from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
from airflow_provider_mixpanel.jsonl import check_object, dumps_line, loads_object, split_lines

# Characters that str.splitlines() treats as line breaks but JSON allows raw inside strings.
TRICKY = "\u2028\u2029\u0085\x1c\x1d\x1e\r"

json_strings = st.text(alphabet=st.sampled_from(list(TRICKY) + list('aé東😀 "\\\t')), max_size=40)
records = st.builds(
    lambda name, value, n: {"event": name, "properties": {"title": value, "n": n}},
    json_strings,
    json_strings,
    st.integers(),
)


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


def test_splits_on_newline_only():
    data = '{"t":"a\u2028b\u2029c\u0085d\x1ce\x1df\x1eg"}\n{"t":"x"}\n'.encode()
    assert list(split_lines([data])) == data.split(b"\n")[:2]


def test_line_spanning_many_chunks_is_joined():
    assert list(split_lines([b"ab", b"c", b"d\ne", b"f"])) == [b"abcd", b"ef"]


def test_empty_lines_and_empty_chunks_are_skipped():
    assert list(split_lines([b"", b"\n\n", b"a\n", b"", b"\nb\n\n"])) == [b"a", b"b"]


def test_last_line_without_newline_is_kept():
    assert list(split_lines([b"a\nb"])) == [b"a", b"b"]


def test_empty_body_has_no_lines():
    assert list(split_lines([])) == []
    assert list(split_lines([b""])) == []


def test_very_long_line_in_small_chunks():
    line = b"x" * 2_000_000
    chunks = [line[i : i + 1000] for i in range(0, len(line), 1000)] + [b"\nend"]
    assert list(split_lines(chunks)) == [line, b"end"]


@settings(max_examples=200, deadline=None)
@given(st.lists(records, max_size=20), st.lists(st.integers(min_value=0), max_size=30), st.booleans())
def test_any_chunking_gives_back_every_record(items, cuts, ensure_ascii):
    data = b"".join(json.dumps(r, ensure_ascii=ensure_ascii).encode() + b"\n" for r in items)
    lines = list(split_lines(_cut(data, cuts)))
    assert [json.loads(line) for line in lines] == items, "a record was split or merged"


@settings(max_examples=100, deadline=None)
@given(st.lists(records, min_size=1, max_size=20), st.lists(st.integers(min_value=0), max_size=30))
def test_any_gzip_chunking_gives_back_every_record(items, cuts):
    data = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in items)
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    compressed = compressor.compress(data) + compressor.flush()
    decompressor = zlib.decompressobj(31)
    chunks = [decompressor.decompress(piece) for piece in _cut(compressed, cuts)]
    assert decompressor.eof
    assert [json.loads(line) for line in split_lines(chunks)] == items


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.sampled_from(list(TRICKY) + list("ab東")), min_size=1000, max_size=200_000), max_size=4
    ),
    st.integers(min_value=1, max_value=5000),
)
def test_very_long_lines_with_separators_in_small_chunks(texts, chunk_size):
    data = b"".join(json.dumps({"t": t}, ensure_ascii=False).encode() + b"\n" for t in texts)
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    assert [json.loads(line)["t"] for line in split_lines(chunks)] == texts


def test_event_time_is_iso_with_utc_offset():
    line = dumps_line({"event_time": datetime(2020, 10, 13, 17, 48, 31, tzinfo=UTC), "x": 1})
    assert line == b'{"event_time":"2020-10-13T17:48:31+00:00","x":1}\n'
    line = dumps_line({"event_time": datetime(2020, 10, 13, 17, 48, 31, 123000, tzinfo=UTC)})
    assert line == b'{"event_time":"2020-10-13T17:48:31.123000+00:00"}\n'


def test_non_ascii_and_separators_are_written_raw():
    assert dumps_line({"t": "é東\u2028"}) == '{"t":"é東\u2028"}\n'.encode()


def test_integers_beyond_64_bits_survive():
    record = loads_object(b'{"big": 123456789012345678901234567890, "neg": -98765432109876543210}')
    assert record == {"big": 123456789012345678901234567890, "neg": -98765432109876543210}
    assert json.loads(dumps_line(record)) == record


def test_lone_surrogate_is_kept_losslessly():
    record = loads_object(b'{"t": "broken \\ud83d emoji"}')
    assert record["t"] == "broken \ud83d emoji"
    assert json.loads(dumps_line(record)) == record


@pytest.mark.parametrize("line", [b"[1, 2]", b"42", b'"text"', b"not json", b'{"a":', b'\xff{"a":1}'])
def test_non_objects_are_malformed(line):
    with pytest.raises(MixpanelMalformedRecordError):
        loads_object(line)


def test_unescaped_control_characters_are_read_and_written_back_escaped():
    line = b'{"event":"a\x01b","properties":{"note":"x\x1fy\ttab"}}'
    check_object(line)  # raw output keeps these bytes as they came
    record = loads_object(line)
    assert record["event"] == "a\x01b"
    assert dumps_line(record) == b'{"event":"a\\u0001b","properties":{"note":"x\\u001fy\\ttab"}}\n'


def test_line_batches_are_the_lines_each_chunk_completes():
    from airflow_provider_mixpanel.jsonl import split_line_batches

    chunks = [b"a\nb", b"c\n\nd\n", b"", b"e", b"f"]
    assert list(split_line_batches(chunks)) == [[b"a"], [b"bc", b"d"], [b"ef"]]
    assert [line for batch in split_line_batches(chunks) for line in batch] == list(split_lines(chunks))


@pytest.mark.parametrize("number", [float("inf"), float("-inf"), float("nan")])
def test_a_number_json_cannot_write_is_refused_not_changed(number):
    with pytest.raises(ValueError, match="cannot write"):
        dumps_line({"a": {"b": number}})
    assert dumps_line({"a": None}) == b'{"a":null}\n'
