"""Engage: page_size cap and echo, profiles of any count and size, streamed pages, mid-page drops."""

from __future__ import annotations

import json
import socket
import time
import tracemalloc
from urllib.parse import urlencode

import pytest
import requests

from airflow_provider_mixpanel.testing.body import CHUNK_BYTES
from tests.integration.testing.helpers import engage

AUTH_HEADER = b"Authorization: Basic dGVzdC11c2VyOnRlc3Qtc2VjcmV0\r\n"  # test-user:test-secret


def test_requested_page_size_is_honoured_and_reported_on_page_0(start):
    server = start(profiles=5000)
    page = engage(server, page_size=2500).json()
    assert page["page_size"] == 2500
    assert len(page["results"]) == 2500
    assert page["total"] == 5000


def test_page_size_above_the_cap_gets_the_cap(start):
    server = start(profiles=500, max_page_size=200)
    page = engage(server, page_size=100_000).json()
    assert page["page_size"] == 200, "the page size used, not the one asked for"
    assert len(page["results"]) == 200


def test_default_cap_lets_a_50000_page_through(start):
    server = start(profiles=60_000)
    page = engage(server, page_size=50_000).json()
    assert page["page_size"] == 50_000
    assert len(page["results"]) == 50_000


def test_echo_page_size_false_reports_no_page_size(start):
    server = start(profiles=30, echo_page_size=False)
    page = engage(server, page_size=10).json()
    assert "page_size" not in page
    assert len(page["results"]) == 10
    assert page["total"] == 30


def test_keys_come_in_mixpanels_order(start):
    server = start(profiles=3)
    assert list(engage(server).json()) == ["page", "page_size", "results", "session_id", "status", "total"]
    later = engage(server, page=1, session_id="s").json()
    assert list(later) == ["page", "results", "session_id", "status"], "page_size and total on page 0 only"


def test_pages_of_a_huge_profile_count_are_sliced_not_listed(start):
    server = start(profiles=2_000_000_000)
    tracemalloc.start()
    try:
        page = engage(server, page=1_500_000, session_id="s", page_size=1000).json()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    ids = [result["$distinct_id"] for result in page["results"]]
    assert ids == [f"user-{i}" for i in range(1_500_000_000, 1_500_001_000)]
    assert peak < 20 * 2**20, f"{peak} bytes traced for one page of two billion profiles"


def test_the_last_page_is_short_and_the_next_one_empty(start):
    server = start(profiles=2500)
    assert len(engage(server, page=2, session_id="s", page_size=1000).json()["results"]) == 500
    assert engage(server, page=3, session_id="s", page_size=1000).json()["results"] == []


def test_profiles_carry_300_extra_properties_of_every_json_type(start):
    server = start(profiles=20, profile_properties=300)
    results = engage(server).json()["results"]
    extra = {k: v for k, v in results[7]["$properties"].items() if k.startswith("prop_")}
    assert len(extra) == 300
    assert {type(v) for v in extra.values()} == {str, int, float, bool, list, dict}
    assert "$email" in results[7]["$properties"], "the base properties stay"
    assert extra != {k: v for k, v in results[8]["$properties"].items() if k.startswith("prop_")}


def test_output_properties_keep_only_the_named_properties(start):
    server = start(profiles=5, profile_properties=10)
    results = engage(server, output_properties=json.dumps(["$email", "prop_001"])).json()["results"]
    assert set(results[3]["$properties"]) == {"$email", "prop_001"}
    assert results[3]["$properties"]["prop_001"] == 3, "prop_001 is the profile's index as an integer"


def test_distinct_ids_select_existing_profiles(start):
    server = start(profiles=100)
    page = engage(server, distinct_ids=json.dumps(["user-42", "user-7", "user-1000", "nobody"])).json()
    assert [r["$distinct_id"] for r in page["results"]] == ["user-7", "user-42"]
    assert page["total"] == 2


def test_a_large_page_is_streamed_in_chunks_with_flat_server_memory(start):
    server = start(profiles=2000, profile_properties=300)
    tracemalloc.start()
    try:
        status, headers, chunks = _raw_engage(server.port, page_size=2000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 200
    assert headers.get("transfer-encoding") == "chunked"
    body_bytes = sum(chunks)
    assert body_bytes > 20 * 2**20, "2,000 profiles of 300 properties make a body of over 20 MiB"
    assert max(chunks) < 2 * CHUNK_BYTES
    assert peak < 6 * 2**20, f"{peak} bytes traced to serve a {body_bytes}-byte page"


def test_a_small_page_has_a_content_length(start):
    server = start(profiles=3)
    response = engage(server)
    assert "Transfer-Encoding" not in response.headers
    assert int(response.headers["Content-Length"]) == len(response.content)


def test_engage_pages_are_throttled_per_connection(start):
    server = start(profiles=1000, profile_properties=20, bytes_per_second=1_000_000)
    started = time.monotonic()
    size = len(engage(server).content)
    elapsed = time.monotonic() - started
    assert size > 500_000
    assert elapsed >= size / 1_000_000 * 0.8, f"{size} bytes in {elapsed:.2f} s at 1 MB/s"


def test_a_drop_fault_cuts_the_page_after_k_profiles(start):
    server = start(profiles=3000)
    server.add_fault("drop", endpoint="engage", after_records=300)
    received = bytearray()
    response = requests.post(
        f"{server.url}/api/query/engage",
        params={"project_id": 12345},
        data={"page_size": 1000},
        auth=("test-user", "test-secret"),
        stream=True,
        timeout=30,
    )
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for piece in response.iter_content(4096):
            received += piece
    assert received.count(b'"$distinct_id"') == 300
    assert received.rstrip().endswith(b"}}"), "the cut falls after a whole profile"
    assert server.engage_requests()[0].fault == "drop"


def test_the_same_session_and_page_returns_the_same_profiles_after_a_drop(start):
    server = start(profiles=3000)
    first = engage(server, page_size=1000).json()
    session = first["session_id"]
    server.add_fault("drop", endpoint="engage", after_records=10)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        engage(server, page=1, session_id=session, page_size=1000)
    again = engage(server, page=1, session_id=session, page_size=1000).json()
    assert again == engage(server, page=1, session_id=session, page_size=1000).json()
    assert [r["$distinct_id"] for r in again["results"]] == [f"user-{i}" for i in range(1000, 2000)]
    assert again["session_id"] == session


def test_engage_only_faults_are_refused(start):
    server = start()
    with pytest.raises(ValueError, match="export bodies only"):
        server.add_fault("terminated_early", endpoint="engage")


def test_a_bad_page_size_is_a_400(start):
    server = start()
    assert engage(server, page_size="lots").status_code == 400
    assert engage(server, page_size=0).status_code == 400


def _raw_engage(port: int, **form: object) -> tuple[int, dict[str, str], list[int]]:
    """POST engage over a raw socket; return the status, headers and each chunk's size (bytes discarded)."""
    body = urlencode(form).encode()
    request = (
        b"POST /api/query/engage?project_id=12345 HTTP/1.1\r\nHost: 127.0.0.1\r\n" + AUTH_HEADER + b"Content-Type: "
        b"application/x-www-form-urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
    )
    with socket.create_connection(("127.0.0.1", port)) as sock, sock.makefile("rb") as stream:
        sock.sendall(request)
        status = int(stream.readline().split()[1])
        headers = {}
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        chunks = []
        while size := int(stream.readline().strip() or b"0", 16):
            stream.read(size + 2)
            chunks.append(size)
    return status, headers, chunks
