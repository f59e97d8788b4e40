"""The normalized profile JSONL contract: the keys normalize_profile gives, values byte for byte."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_mixpanel import engage
from airflow_provider_mixpanel.engage import read_engage_page
from airflow_provider_mixpanel.errors import MixpanelMalformedRecordError
from airflow_provider_mixpanel.jsonl import dumps_line, loads_object
from airflow_provider_mixpanel.profile_lines import profile_line, raw_profile_line
from airflow_provider_mixpanel.records import normalize_profile


def line(distinct_id: bytes, properties: bytes) -> bytes:
    return profile_line(b'{"$distinct_id":' + distinct_id + b',"$properties":' + properties + b"}")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (b"1.50", "a trailing zero"),
        (b"1e5", "a lower-case exponent"),
        (b"1E+2", "an exponent form"),
        (b"-0.0", "negative zero"),
        (b"123456789012345678901234567890", "an integer beyond 64 bits"),
        (b'"caf\\u00e9 \\u2028"', "unicode escapes"),
        (b'"caf\xc3\xa9"', "raw UTF-8"),
        (b'"\\/slash \\"quoted\\" back\\\\"', "escaped slash, quote and backslash"),
        (b'{"b":[1,2.0],"a":{"z":null}}', "a nested object, its key order kept"),
        (b'[{"$last_seen":"nested"},"x"]', "a list holding a $last_seen of its own"),
        (b'"\\ud83d"', "a lone surrogate escape"),
        (b'"\\ud83d\\ude00"', "a surrogate pair"),
    ],
)
def test_property_values_are_written_byte_for_byte(value, why):
    properties = b'{"$last_seen":"2024-01-01T00:00:00","v":' + value + b',"w":1}'
    assert line(b'"u"', properties) == (
        b'{"distinct_id":"u","last_seen":"2024-01-01T00:00:00","properties":{"v":' + value + b',"w":1}}\n'
    ), why


@pytest.mark.parametrize(
    ("properties", "last_seen", "rest"),
    [
        (b'{"a":1,"b":"x"}', b"null", b'{"a":1,"b":"x"}'),
        (b"{}", b"null", b"{}"),
        (b'{"$last_seen":"T","a":1,"b":2}', b'"T"', b'{"a":1,"b":2}'),
        (b'{"a":1,"$last_seen":"T","b":2}', b'"T"', b'{"a":1,"b":2}'),
        (b'{"a":1,"b":2,"$last_seen":"T"}', b'"T"', b'{"a":1,"b":2}'),
        (b'{"$last_seen":"T"}', b'"T"', b"{}"),
        (b'{"$last_seen":null,"a":1}', b"null", b'{"a":1}'),
        (b'{"$last_seen":1.50}', b"1.50", b"{}"),
        (b'{"$last_seen":{"when":[1,2]},"a":1}', b'{"when":[1,2]}', b'{"a":1}'),
        # a $last_seen inside another property stays where it is
        (b'{"o":{"$last_seen":"inner"},"a":1}', b"null", b'{"o":{"$last_seen":"inner"},"a":1}'),
        (b'{"o":{"$last_seen":"inner"},"$last_seen":"T"}', b'"T"', b'{"o":{"$last_seen":"inner"}}'),
        (b'{"$last_seen":"T","o":[{"$last_seen":"inner"}]}', b'"T"', b'{"o":[{"$last_seen":"inner"}]}'),
        (b'{"s":"\\"$last_seen\\":1","$last_seen":"T"}', b'"T"', b'{"s":"\\"$last_seen\\":1"}'),
        (b'{"s":"{[","$last_seen":"T"}', b'"T"', b'{"s":"{["}'),
        # what the slicing cannot prove: the member-by-member road gives the same line
        (b'{"\\u0024last_seen":"T","a":1}', b'"T"', b'{"a":1}'),
        (b'{"a":1,"$last_\\u0073een":"T"}', b'"T"', b'{"a":1}'),
        (b'{"$last_seen":"first","a":1,"$last_seen":"second"}', b'"second"', b'{"a":1}'),
        (b'{"e":"\\u00e9","$last_seen":"T"}', b'"T"', b'{"e":"\\u00e9"}'),
        (b'{"s":"\\ud83d","$last_seen":"T"}', b'"T"', b'{"s":"\\ud83d"}'),
        (b'{"caf\\u00e9":1,"\\ud83d":2,"$last_seen":"T"}', b'"T"', b'{"caf\\u00e9":1,"\\ud83d":2}'),
    ],
)
def test_last_seen_leaves_the_properties(properties, last_seen, rest):
    assert line(b'"u"', properties) == b'{"distinct_id":"u","last_seen":%b,"properties":%b}\n' % (last_seen, rest)


def test_last_seen_after_properties_nested_deeper_than_one_match_goes():
    depth = engage.NESTING_MATCHED_AT_ONCE + 2
    deep = b"[" * depth + b'{"$last_seen":"inner"}' + b"]" * depth
    properties = b'{"d":' + deep + b',"$last_seen":"T","e":' + deep + b"}"
    assert line(b'"u"', properties) == (
        b'{"distinct_id":"u","last_seen":"T","properties":{"d":' + deep + b',"e":' + deep + b"}}\n"
    )


@pytest.mark.parametrize(
    ("distinct_id", "why"),
    [
        (b"123456789012345678901234567890", "an integer beyond 64 bits"),
        (b"4", "an integer"),
        (b'"caf\\u00e9"', "an escape"),
        (b'"\\ud83d"', "a lone surrogate escape"),
        (b"null", "null"),
        (b"1.50", "a number form"),
    ],
)
def test_distinct_id_is_written_as_sent(distinct_id, why):
    assert line(distinct_id, b'{"a":1}') == b'{"distinct_id":%b,"last_seen":null,"properties":{"a":1}}\n' % distinct_id


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (b'{"$properties":{"a":1}}', b'{"distinct_id":"","last_seen":null,"properties":{"a":1}}\n'),
        (b'{"$distinct_id":"u"}', b'{"distinct_id":"u","last_seen":null,"properties":{}}\n'),
        (b'{"$distinct_id":"u","$properties":null}', b'{"distinct_id":"u","last_seen":null,"properties":{}}\n'),
        (b'{"$distinct_id":"u","$properties":[]}', b'{"distinct_id":"u","last_seen":null,"properties":{}}\n'),
        (b"{}", b'{"distinct_id":"","last_seen":null,"properties":{}}\n'),
        # the order of the members, and members of no interest, do not matter
        (
            b'{"$properties":{"$last_seen":"T"},"other":[1],"$distinct_id":"u"}',
            b'{"distinct_id":"u","last_seen":"T","properties":{}}\n',
        ),
        (
            b'{"$properties":{"s":"\\ud83d"},"$distinct_id":"u","x":"\\ud83d"}',
            b'{"distinct_id":"u","last_seen":null,"properties":{"s":"\\ud83d"}}\n',
        ),
        (
            b'{"$distinct_id":"\\ud83d","$properties":{}}',
            b'{"distinct_id":"\\ud83d","last_seen":null,"properties":{}}\n',
        ),
    ],
)
def test_what_normalize_profile_makes_of_missing_parts(result, expected):
    assert profile_line(result) == expected
    assert json.loads(expected) == json.loads(dumps_line(normalize_profile(loads_object(result))))


@pytest.mark.parametrize(
    "result",
    [
        b"5",
        b'"u"',
        b"[1]",
        b'{"$distinct_id":"u","$properties":"abc"}',
        b'{"$distinct_id":"u","$properties":[1]}',
        b'{"$distinct_id":"\\ud83d","$properties":1}',
        # not what the reader hands over (compact): refused, never guessed at
        b'{"$distinct_id":"\\ud83d","$properties":{"a" :1}}',
        b'{"$distinct_id":"\\ud83d" ,"$properties":{}}',
        b'{"$distinct_id":"\\ud83d","$properties":{"a":1 }}',
        b'{"$distinct_id":"\\ud83d","$properties":{"a":}}',
        b'{"$distinct_id":"\\ud83d","$properties":{"a":"\\ud83d}}',
    ],
)
def test_what_is_no_profile_is_malformed(result):
    with pytest.raises(MixpanelMalformedRecordError):
        profile_line(result)


def test_raw_line_is_the_result_itself():
    result = b'{"$distinct_id":1,"$properties":{"a":1.50}}'
    assert raw_profile_line(result) == result + b"\n"


def test_the_docs_sample_page_through_the_reader(samples):
    page = read_engage_page([(samples / "engage_mixpanel_docs_export_methods.json").read_bytes()], what="p")
    assert [profile_line(result) for result in page] == [
        b'{"distinct_id":%d,"last_seen":"2008-06-09T23:08:40","properties":{"$created":"2008-12-12T11:20:47",'
        b'"$email":"example%d@mixpanel.com","$first_name":"Example%d","$last_name":"Name%d"}}\n' % (n, n, n, n)
        for n in (1, 2)
    ]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=12,
)
names = st.text(max_size=12) | st.sampled_from(["$last_seen", "$distinct_id", "$properties", "last_seen", ""])


@settings(max_examples=300)
@given(
    st.lists(st.tuples(names, json_values), max_size=8),
    st.none() | json_values,
    st.booleans(),
    st.booleans(),
)
def test_the_line_holds_what_normalize_profile_gives(members, distinct_id, with_distinct_id, ascii_only):
    def dump(value):
        return json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"))

    properties = "{" + ",".join(f"{dump(name)}:{dump(value)}" for name, value in members) + "}"
    result = ("{" + (f'"$distinct_id":{dump(distinct_id)},' if with_distinct_id else "") + "").encode()
    result += b'"$properties":' + properties.encode("utf-8", "surrogatepass") + b"}"
    record = loads_object(result)
    got = profile_line(result)
    assert json.loads(got) == json.loads(dumps_line(normalize_profile(record)))
    # and the properties' text is the members as they came, $last_seen (top level only) left out
    kept = [f"{dump(name)}:{dump(value)}" for name, value in members if name != "$last_seen"]
    assert got.split(b',"properties":', 1)[1] == ("{" + ",".join(kept) + "}}\n").encode("utf-8", "surrogatepass")
