from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_mixpanel.engage import read_engage_page
from airflow_provider_mixpanel.errors import MixpanelServerError

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


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=30))
def test_profiles_and_envelope_whatever_the_chunk_boundaries(cuts):
    body = json.dumps(PAGE, ensure_ascii=False).encode()
    chunks, start = [], 0
    for size in cuts:
        chunks.append(body[start : start + size])
        start += size
    chunks.append(body[start:])
    page = read_engage_page(chunks, what="engage page 0")
    assert list(page) == PAGE["results"]
    assert page.result is not None
    assert (page.result.session_id, page.result.page_size, page.result.profiles) == ("s-1", 3, 2)


def test_envelope_fields_after_the_results_are_read():
    body = b'{"results":[{"$distinct_id":"a"}],"session_id":"late","page_size":1}'
    page = read_engage_page([body], what="p")
    assert list(page) == [{"$distinct_id": "a"}]
    assert page.result is not None and page.result.session_id == "late"


@pytest.mark.parametrize("body", [b"<html>bad gateway</html>", b'{"error":"x"}', b'{"results":[{"a":1}'])
def test_a_body_that_is_no_engage_page_is_a_server_error(body):
    with pytest.raises(MixpanelServerError):
        list(read_engage_page([body], what="p"))
