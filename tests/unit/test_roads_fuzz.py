"""Differential fuzz of every road against every other and against a slow ``json.loads``
reference: generated export bodies (repeated and escaped names, extra top-level members, odd
numbers, control characters, lone surrogates, CRLF, bytes that are not UTF-8) cut at every chunk
boundary, and generated engage pages.

``make test`` runs a few hundred examples (the ``default`` hypothesis profile); ``make fuzz``
selects the ``fuzz`` profile (``HYPOTHESIS_PROFILE=fuzz``, tests/unit/conftest.py), with many more.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_mixpanel.engage import read_engage_page
from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
from airflow_provider_mixpanel.jsonl import escape_controls, lenient_members, split_line_batches, split_lines
from airflow_provider_mixpanel.records import EVENT_RESERVED_PROPERTIES
from airflow_provider_mixpanel.streams import RawEventChunks, RecordStream, event_converter
from tests.unit.roads import (
    MALFORMED,
    event_roads,
    line_roads,
    profile_roads,
    raw_roads,
    reference_event,
    reference_profile,
    reference_raw,
)

# The default profile runs this many (a few seconds); the fuzz profile its own, much larger, number.
EXAMPLES = max(150, settings.default.max_examples)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def spelled(name: str) -> st.SearchStrategy[str]:
    """A member name's JSON text: as is, or with one character written as a ``\\u`` escape."""
    escaped = [f'"{name[:i]}\\u{ord(c):04{x}}{name[i + 1 :]}"' for i, c in enumerate(name) for x in "xX"]
    return st.sampled_from([json.dumps(name)] * len(escaped) + escaped)


SCALARS = [
    "0",
    "-0",
    "7",
    "1.50",
    "1E+2",
    "-0.0",
    "123456789012345678901234567890",
    "1e400",
    "-1e400",
    "1e-400",
    "true",
    "false",
    "null",
    '"plain"',
    '""',
    '"caf\\u00e9"',
    '"café 東 😀"',
    '"\\ud83d"',
    '"a\x01b"',
    '"tab\there"',
    '"\u2028\x1c"',
    '"\\"q\\" \\\\"',
    '"time"',
    '"\\"$insert_id\\":1,"',
    '"{[}]"',
    '"properties"',
]
NAMES = ["a", "$browser", "é", "x y", "event", "time", "distinct_id", "$insert_id", "properties", "\u2028"]
names = st.sampled_from(NAMES).flatmap(spelled)
values = st.recursive(
    st.sampled_from(SCALARS),
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(names, inner), max_size=3).map(
            lambda members: "{" + ",".join(f"{name}:{value}" for name, value in members) + "}"
        )
    ),
    max_leaves=6,
)
times = st.integers(0, 4_102_444_800).map(str) | st.sampled_from(
    ["1709251200", "1709251200123", "-1", "1.5", '"1709251200"', "1e400", "1e-400", "true", "null", '"x"', "1E3"]
)
# Separators: mostly compact (Mixpanel's own layout, the splice road), sometimes spaced.
gaps = st.sampled_from(["", "", "", "", " ", "\t", "\r", " \r\n "[:-2]])
NOT_OBJECTS = ['"ab"', "5", '[["k","v"]]', "null", "[]", "false", '""']
CORRUPTIONS = [b"\xff", b"\xc3", b"\xed\xa0\xbd", b"\xc0\xaf", b"\x80"]


def _object(members: list[tuple[str, str]], gap: str) -> str:
    return "{" + f"{gap},".join(f"{name}{gap}:{value}" for name, value in members) + "}"


@st.composite
def export_lines(draw: st.DrawFn) -> bytes:
    """One export line: Mixpanel's layout, then hostile changes to it."""
    properties = [("time", draw(times)), ("distinct_id", draw(st.sampled_from(['"u-1"', "42"]) | values))]
    others = draw(st.lists(st.tuples(names, values), max_size=4))
    if draw(st.integers(0, 9)):
        insert_id = draw(st.sampled_from(['"i-1"', '"i-2"']) | values)
        others.insert(draw(st.integers(0, len(others))), ('"$insert_id"', insert_id))
    members = [(json.dumps(name), value) for name, value in properties] + others
    for _ in range(draw(st.integers(0, 2)) if not draw(st.integers(0, 2)) else 0):  # a reserved name again
        name = draw(st.sampled_from(EVENT_RESERVED_PROPERTIES).flatmap(spelled))
        members.insert(draw(st.integers(0, len(members))), (name, draw(times | values)))
    if not draw(st.integers(0, 5)):
        members = draw(st.permutations(members))
    gap = draw(gaps)
    properties_text = draw(st.sampled_from(NOT_OBJECTS)) if not draw(st.integers(0, 15)) else _object(members, gap)
    top = [('"event"', draw(st.sampled_from(['"Sign Up"', '"e"']) | values)), ('"properties"', properties_text)]
    if not draw(st.integers(0, 3)):  # a top-level member again, or another one
        name = draw(st.sampled_from(["event", "properties", "x"]).flatmap(spelled))
        top.insert(draw(st.integers(0, len(top))), (name, draw(values | st.just(properties_text))))
    line = _object(top, gap).encode("utf-8")
    if not draw(st.integers(0, 7)):  # bytes that are not UTF-8, somewhere
        where = draw(st.integers(0, len(line)))
        line = line[:where] + draw(st.sampled_from(CORRUPTIONS)) + line[where:]
    if not draw(st.integers(0, 7)):
        line = draw(st.sampled_from([b" ", b"\r", b"\t"])) + line + draw(st.sampled_from([b" ", b"\r", b""]))
    return line


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """An export body (LF and CRLF endings, blank lines, maybe no last ending) and its lines."""
    lines = draw(st.lists(export_lines(), min_size=1, max_size=4))
    body = b""
    for line in lines:
        body += line + draw(st.sampled_from([b"\n", b"\r\n"]))
        if not draw(st.integers(0, 5)):
            body += draw(st.sampled_from([b"\n", b"\r\n"]))
    if draw(st.booleans()):
        body = body.removesuffix(b"\n").removesuffix(b"\r")
    return body, lines


def reference_lines(body: bytes) -> list[bytes]:
    """The framing rule written the obvious way: split on LF, drop one CR before it, skip blanks."""
    return [line.removesuffix(b"\r") for line in body.split(b"\n") if line.removesuffix(b"\r")]


EVENT_ROADS = {time_in_ms: event_roads(time_in_ms=time_in_ms) for time_in_ms in (False, True)}
RAW_ROADS = raw_roads()
LINE_ROADS = {time_in_ms: line_roads(time_in_ms=time_in_ms) for time_in_ms in (False, True)}


@FUZZ
@given(bodies(), st.booleans(), st.data())
def test_fuzz_every_event_road_agrees_with_the_reference(body_and_lines, time_in_ms, data):
    body, _ = body_and_lines
    lines = reference_lines(body)
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=6))
    for chunks in [[body], [body[i : i + 1] for i in range(len(body))], _cut(body, cuts)]:
        assert list(split_lines(chunks)) == lines
    for cut in range(len(body) + 1):  # every chunk boundary
        assert list(split_lines([body[:cut], body[cut:]])) == lines, cut

    for line in lines:
        expected = reference_event(line, time_in_ms=time_in_ms)
        for road, outcome in EVENT_ROADS[time_in_ms].items():
            assert outcome(line) == expected, f"the {road} road disagrees with the reference on {line!r}"
        if expected != MALFORMED:
            _assert_property_texts_kept(line, time_in_ms)
        expected_raw = reference_raw(line)
        for road, outcome in RAW_ROADS.items():
            assert outcome(line) == expected_raw, f"the {road} road disagrees with the reference on {line!r}"

    # Through the stream: what is malformed is skipped and counted, or raised with its number.
    for raw in (False, True):
        verdicts = [reference_raw(line) if raw else reference_event(line, time_in_ms=time_in_ms) for line in lines]
        for encode in (False, True):
            convert = event_converter(raw=raw, encode=encode, time_in_ms=time_in_ms, timezone=None)
            stream = RecordStream(split_lines([body]), convert, skip_malformed=True)
            assert len(list(stream)) == stream.records == sum(v != MALFORMED for v in verdicts)
            assert stream.skipped_malformed == verdicts.count(MALFORMED)
            if raw and encode:  # the raw road a batch at a time (mixpanel-stream --raw)
                chunks = RawEventChunks(split_line_batches([body]), skip_malformed=True)
                good = [  # as sent, a control character left raw inside a string escaped
                    escape_controls(line.decode("utf-8")).encode("utf-8") + b"\n"
                    for line, verdict in zip(lines, verdicts, strict=True)
                    if verdict != MALFORMED
                ]
                assert b"".join(chunks) == b"".join(good)
                assert (chunks.records, chunks.skipped_malformed) == (len(good), verdicts.count(MALFORMED))
            if MALFORMED in verdicts:
                try:
                    list(RecordStream(split_lines([body]), convert))
                except MixpanelMalformedRecordError as err:
                    assert err.line_number == verdicts.index(MALFORMED) + 1
                    assert str(err).startswith(f"Line {err.line_number}: ")
                else:
                    raise AssertionError("a malformed line passed")


def _assert_property_texts_kept(line: bytes, time_in_ms: bool) -> None:
    """Each property the normalized line keeps is the text of its last occurrence as sent (a raw
    control character escaped), whichever road wrote it."""
    text = line.decode("utf-8")
    top = {name: start for name, _, start in lenient_members(text)}
    if text[top["properties"]] != "{":
        return
    sent = {name: value for name, value, _ in lenient_members(text, top["properties"])}
    for road, normalize in LINE_ROADS[time_in_ms].items():
        out = normalize(line).decode("utf-8")
        out_properties = {name: start for name, _, start in lenient_members(out)}["properties"]
        written = {name: value for name, value, _ in lenient_members(out, out_properties)}
        assert written == {
            name: escape_controls(value) for name, value in sent.items() if name not in EVENT_RESERVED_PROPERTIES
        }, f"the {road} road changed a property's text: {line!r}"


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted(set(cuts))
    return [data[start:end] for start, end in zip([0, *points], [*points, len(data)], strict=True)]


PROFILE_NAMES = ["$last_seen", "a", "$email", "é", "$distinct_id", "$properties"]
profile_names = st.sampled_from(PROFILE_NAMES).flatmap(spelled)


@st.composite
def engage_results(draw: st.DrawFn) -> str:
    """One engage result's text: Mixpanel's shape, then hostile changes to it."""
    members = draw(st.lists(st.tuples(profile_names, values), max_size=4))
    if draw(st.booleans()):
        members.insert(draw(st.integers(0, len(members))), ('"$last_seen"', draw(values)))
    gap = draw(gaps)
    properties = draw(st.sampled_from(NOT_OBJECTS)) if not draw(st.integers(0, 10)) else _object(members, gap)
    top = [('"$distinct_id"', draw(st.sampled_from(['"u-1"', "4"]) | values)), ('"$properties"', properties)]
    if not draw(st.integers(0, 3)):
        name = draw(st.sampled_from(["$distinct_id", "$properties", "x"]).flatmap(spelled))
        top.insert(draw(st.integers(0, len(top))), (name, draw(values | st.just(properties))))
    return _object(draw(st.permutations(top)) if draw(st.booleans()) else top, gap)


@FUZZ
@given(st.lists(engage_results(), max_size=4), st.lists(st.integers(0, 10_000), max_size=4))
def test_fuzz_every_profile_road_agrees_with_the_reference(results, cuts):
    page = ('{"page":0,"page_size":1000,"results":[' + ",\n ".join(results) + '],"status":"ok"}').encode()
    read = list(read_engage_page(_cut(page, [cut % (len(page) + 1) for cut in cuts]), what="a page"))
    assert len(read) == len(results)
    for sent, result in zip(results, read, strict=True):
        assert reference_profile(result) == reference_profile(sent.encode())
        expected = reference_profile(result)
        for road, outcome in profile_roads().items():
            assert outcome(result) == expected, f"the {road} road disagrees with the reference on {result!r}"
