"""The engage page reader: each result's own bytes, compact, whatever the chunks and the layout."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_mixpanel import engage
from airflow_provider_mixpanel.engage import read_engage_page
from airflow_provider_mixpanel.errors import MixpanelServerError
from airflow_provider_mixpanel.jsonl import loads_object

SAMPLES = Path(__file__).resolve().parents[1] / "samples"

PAGE = {
    "page": 0,
    "page_size": 3,
    "results": [
        {"$distinct_id": "a", "$properties": {"n": 1.5, "l": [1, {"x": None}], "t": "é\u2028"}},
        {"$distinct_id": 2, "$properties": {}},
    ],
    "session_id": "s-1",
    "status": "ok",
    "total": 2,
}

# Results written as Mixpanel might, each with what must come out of the reader.
ODD_RESULTS = [
    (b'{"$distinct_id":"n","$properties":{"a":1.50,"b":1e5,"c":-0.0,"d":1E+2}}', None),
    (b'{"$distinct_id":"e","$properties":{"a":"caf\\u00e9","b":"\\/x","c":"q\\"q","d":"b\\\\"}}', None),
    (b'{"$distinct_id":123456789012345678901234567890,"$properties":{"big":-123456789012345678901234567890}}', None),
    (b'{"$distinct_id":"s","$properties":{"emoji":"\\ud83d","pair":"\\ud83d\\ude00"}}', None),
    (
        b'{"$distinct_id":"c","$properties":{"note":"tab\there\x01\x1f"}}',
        b'{"$distinct_id":"c","$properties":{"note":"tab\\there\\u0001\\u001f"}}',
    ),
    (
        b'{ "$distinct_id" : "p",\n  "$properties" : {\n    "list" : [ 1.50 , { "k" : "v w" } ],\n'
        b'    "obj" : { "x" : [ ] , "y" : { } }\n  }\n}',
        b'{"$distinct_id":"p","$properties":{"list":[1.50,{"k":"v w"}],"obj":{"x":[],"y":{}}}}',
    ),
    (b'{"$distinct_id":"u","$properties":{"raw":"Z\xc3\xbcrich \xe6\x9d\xb1"}}', None),
    (b'{"$distinct_id":"b","$properties":{"brackets":"}, {\\"$distinct_id\\": [","n":null}}', None),
]


def odd_body(separator: bytes = b",") -> bytes:
    return b'{"page":0,"results":[' + separator.join(r for r, _ in ODD_RESULTS) + b'],"session_id":"s"}'


def expected_odd() -> list[bytes]:
    return [expected if expected is not None else result for result, expected in ODD_RESULTS]


def read(chunks, what="engage page 0"):
    page = read_engage_page(chunks, what=what)
    return list(page), page.result


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    chunks, start = [], 0
    for size in cuts:
        chunks.append(body[start : start + size])
        start += size
    chunks.append(body[start:])
    return chunks


# ---------------------------------------------------------------- byte for byte


def test_values_are_kept_byte_for_byte_and_made_compact():
    results, page = read([odd_body()])
    assert results == expected_odd()
    assert page is not None and page.profiles == len(ODD_RESULTS)


def test_whitespace_goes_only_outside_strings():
    body = b'{"results": [ {"$distinct_id" : "a b",\r\n\t"$properties": {"s": " x\\n "}} ] }'
    assert read([body])[0] == [b'{"$distinct_id":"a b","$properties":{"s":" x\\n "}}']


def test_a_result_only_the_standard_library_reads_is_made_compact_too():
    body = b'{"results": [ { "$distinct_id" : "c\x01 d" ,\n "$properties" : { "s" : "\\ud83d" } } ]}'
    assert read([body])[0] == [b'{"$distinct_id":"c\\u0001 d","$properties":{"s":"\\ud83d"}}']


def test_the_dicts_are_what_the_results_say():
    body = odd_body()
    results, _ = read([body])
    assert loads_object(results[2])["$distinct_id"] == 123456789012345678901234567890
    assert loads_object(results[3])["$properties"]["emoji"] == "\ud83d"
    assert loads_object(results[4])["$properties"]["note"] == "tab\there\x01\x1f"


def test_a_body_split_at_every_byte_gives_the_same_results():
    body = odd_body(b" , ")
    whole = read([body])
    assert whole[0] == expected_odd()
    for cut in range(len(body) + 1):
        assert read([body[:cut], body[cut:]]) == whole, f"split at byte {cut}"


def test_a_pretty_printed_page_split_at_every_byte():
    body = (SAMPLES / "engage_mixpanel_docs_export_methods.json").read_bytes()
    assert b"\n    {\n" in body, "the sample is pretty-printed"
    whole = read([body])
    assert [json.loads(r) for r in whole[0]] == json.loads(body)["results"]
    assert whole[0][0] == (
        b'{"$distinct_id":1,"$properties":{"$created":"2008-12-12T11:20:47","$email":"example1@mixpanel.com",'
        b'"$first_name":"Example1","$last_name":"Name1","$last_seen":"2008-06-09T23:08:40"}}'
    )
    assert (whole[1].session_id, whole[1].page_size, whole[1].profiles) == ("1234567890-EXAMPLE", 1000, 2)
    for cut in range(len(body) + 1):
        assert read([body[:cut], body[cut:]]) == whole, f"split at byte {cut}"


def test_a_pretty_printed_page_of_odd_results():
    lines = [b"{", b'  "page": 0,', b'  "results": [']
    lines += [b"    " + r + b"," for r, _ in ODD_RESULTS[:-1]] + [b"    " + ODD_RESULTS[-1][0], b"  ],"]
    lines += [b'  "session_id": "s"', b"}", b""]
    body = b"\n".join(lines)
    assert read([body])[0] == expected_odd()


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=30))
def test_profiles_and_envelope_whatever_the_chunk_boundaries(cuts):
    body = json.dumps(PAGE, ensure_ascii=False).encode()
    results, page = read(split(body, cuts))
    assert [loads_object(r) for r in results] == PAGE["results"]
    assert results == [json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() for r in PAGE["results"]]
    assert page is not None
    assert (page.session_id, page.page_size, page.profiles) == ("s-1", 3, 2)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=200)
@given(
    st.lists(
        st.fixed_dictionaries({"$distinct_id": st.text() | st.integers()})
        | st.fixed_dictionaries(
            {"$distinct_id": st.text() | st.integers(), "$properties": st.dictionaries(st.text(), json_values)}
        ),
        max_size=6,
    ),
    st.sampled_from([None, 1, 2]),
    st.booleans(),
    st.lists(st.integers(min_value=1, max_value=64), max_size=12),
)
def test_any_results_in_any_layout(results, indent, ascii_only, cuts):
    body = json.dumps({"page": 0, "results": results, "session_id": "s"}, indent=indent, ensure_ascii=ascii_only)
    read_results, page = read(split(body.encode(), cuts))
    compact = [json.dumps(r, ensure_ascii=ascii_only, separators=(",", ":")).encode() for r in results]
    assert read_results == compact
    assert page is not None and page.profiles == len(results)


# ---------------------------------------------------------------- the page's shape


def test_envelope_fields_after_the_results_are_read():
    body = b'{"results":[{"$distinct_id":"a"}],"session_id":"late","page_size":1}'
    results, page = read([body])
    assert results == [b'{"$distinct_id":"a"}']
    assert page is not None and (page.session_id, page.page_size) == ("late", 1)


def test_envelope_fields_before_and_after_the_results():
    body = b'{"page_size":7,"extra":{"a":[1,2]},"results":[{"$distinct_id":"a"}],"session_id":"s","total":1}'
    results, page = read([body])
    assert results == [b'{"$distinct_id":"a"}']
    assert page is not None and (page.session_id, page.page_size, page.profiles) == ("s", 7, 1)


def test_envelope_names_and_values_the_standard_library_reads():
    body = b'{"\\ud83d":"\\ud83d","session_id":"s\\ud83d","results":[]}'
    assert read([body])[1] == engage.EngagePage(session_id="s\ud83d", page_size=None, profiles=0)


def test_an_empty_results_list():
    results, page = read([b'{"page": 3, "results": [ ], "session_id": "s", "status": "ok"}'])
    assert results == []
    assert page is not None and (page.session_id, page.profiles) == ("s", 0)


def test_results_that_are_not_objects_are_handed_over_as_they_are():
    # The client refuses them (a profile must be an object); the reader only reads.
    assert read([b'{"results":[1 , "x",null,[2]]}'])[0] == [b"1", b'"x"', b"null", b"[2]"]


def test_results_nested_deeper_than_one_match_goes():
    depth = engage.NESTING_MATCHED_AT_ONCE + 3
    deep = b'{"$distinct_id":"d","$properties":{"p":' + b'[{"a":' * depth + b"1" + b"}]" * depth + b"}}"
    body = b'{"results":[' + deep + b"," + deep + b'],"session_id":"s"}'
    for cut in range(0, len(body) + 1, 7):
        assert read([body[:cut], body[cut:]])[0] == [deep, deep]


def test_a_result_spanning_many_chunks_longer_than_what_is_carried(monkeypatch):
    monkeypatch.setattr(engage, "MAX_CARRIED_BYTES", 1000)
    big = b'{"$distinct_id":"big","$properties":{%s}}' % b",".join(
        b'"p%d":"v\\"%d\\\\",' % (i, i) + b'"l%d":[{"x":%d}]' % (i, i) for i in range(3000)
    )
    small = b'{"$distinct_id":"small","$properties":{}}'
    body = b'{"results":[' + small + b"," + big + b"," + small + b"," + big + b'],"session_id":"s"}'
    for size in (1, 3, 1024, 4096):
        chunks = [body[i : i + size] for i in range(0, len(body), size)]
        assert read(chunks)[0] == [small, big, small, big], size


def test_a_wrong_guess_of_where_a_result_starts_is_caught():
    # "$distinct_id" after '{' and ',' inside a property: cutting there would split a result.
    inner = b'{"$distinct_id":"x","$properties":{"refs":[{"a":1},{"$distinct_id":"not a result"}]}}'
    body = b'{"results":[' + inner + b"," + inner + b'],"session_id":"s"}'
    for cut in range(len(body) + 1):
        assert read([body[:cut], body[cut:]])[0] == [inner, inner]


def test_memory_stays_flat_however_many_profiles():
    profile = b'{"$distinct_id":"user-%d","$properties":{"$last_seen":"2024-01-01T00:00:00","n":%d}}'

    def chunks():
        yield b'{"page":0,"results":['
        pending: list[bytes] = []
        for i in range(100_000):
            pending.append((b"," if i else b"") + profile % (i, i))
            if len(pending) == 500:
                yield b"".join(pending)
                pending = []
        yield b"".join(pending) + b'],"session_id":"s"}'

    tracemalloc.start()
    try:
        count = sum(1 for _ in read_engage_page(chunks(), what="p"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 100_000
    assert peak < 2_000_000, f"{peak} bytes held for an 8 MB page"


# ---------------------------------------------------------------- what is not an engage page


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"  \n",
        b"{}",
        b"{1:2}",
        b'{"results":[] "page":1}',
        b'{"page":tru,"results":[]}',
        b'{"results":[,1]}',
        b'{"results":[{"$distinct_id":1},,{"$distinct_id":2}]}',
        b'{"results":[{"$distinct_id":1} {"$distinct_id":2}]}',
        b'{"page":{"a":},"results":[]}',
        b"<html>bad gateway</html>",
        b'{"error":"x"}',
        b'{"results":null}',
        b'{"results":[{"a":1}',
        b'{"results":[{"a":1}]',
        b'{"results":[{"a":1}],"session_id":"s"} trailing',
        b'{"results":[{"a":1},]}',
        b'{"results":[{"a":NaN}]}',
        b'{"results":[{"a":01}]}',
        b'{"results":[{"a":"\xff"}]}',
        b'{"results":[{"a":1}}',
        b'{"results" [{"a":1}]}',
    ],
)
def test_a_body_that_is_no_engage_page_is_a_server_error(body):
    with pytest.raises(MixpanelServerError):
        list(read_engage_page([body], what="p"))


def test_a_body_cut_short_is_a_server_error_the_client_retries():
    body = odd_body()
    for cut in range(len(body)):
        with pytest.raises(MixpanelServerError, match="not JSON"):
            list(read_engage_page([body[:cut]], what="engage page 1"))


def test_the_profiles_before_a_break_are_handed_over():
    body = odd_body()
    first_two = body.index(ODD_RESULTS[2][0])
    page = read_engage_page([body[: first_two + 10]], what="p")
    got = []
    with pytest.raises(MixpanelServerError):
        got.extend(page)
    assert got == expected_odd()[:2]


@pytest.mark.parametrize("after", [b"", b",", b" , ", b",\n  "])
def test_a_whole_result_is_handed_over_before_the_next_chunk_is_asked_for(after):
    body = odd_body()
    end = body.index(ODD_RESULTS[3][0]) - 1  # just after the third result

    def chunks():
        yield body[:end] + after
        raise ConnectionError("dropped")

    got = []
    with pytest.raises(ConnectionError):
        got.extend(read_engage_page(chunks(), what="p"))
    assert got == expected_odd()[:3]
