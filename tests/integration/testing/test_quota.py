"""Mixpanel's rate limits: 429s with Mixpanel's bodies, Retry-After, rolling windows, counters."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import pytest

from airflow_provider_mixpanel.testing import Quotas, SimClock
from tests.integration.testing.helpers import engage, export, utc

NOON = utc(2024, 3, 2, 12)


def _hourly_only(**limits) -> Quotas:
    """Only the limits given: the others off, so one test sees one limit."""
    off = dict.fromkeys(
        ("export_per_hour", "export_per_second", "export_concurrent", "query_per_hour", "query_concurrent")
    )
    return Quotas(**{**off, **limits})


def test_quotas_are_off_by_default(start):
    server = start(events_per_day=1)
    statuses = [export(server).status_code for _ in range(5)]
    assert statuses == [200] * 5, "the default server must not rate-limit"
    assert server.quota_stats()["export"].admitted == 0


def test_the_61st_export_in_an_hour_gets_mixpanels_429_body(start):
    clock = SimClock.manual(NOON)
    server = start(events_per_day=1, quotas=True, clock=clock)
    for _ in range(60):
        assert export(server).status_code == 200
        clock.advance(1)  # stay within 3 per second
    refused = export(server)
    assert refused.status_code == 429
    assert refused.json() == {
        "request": "/api/2.0/export",
        "error": "Query rate limit exceeded for project_id: 12345. "
        "1/100 queries running concurrently and 61/60 queries running in the last hour.",
    }


def test_hourly_refusal_retry_after_is_the_wait_for_the_oldest_request(start):
    clock = SimClock.manual(NOON)
    server = start(events_per_day=1, quotas=_hourly_only(export_per_hour=2), clock=clock)
    export(server)
    clock.advance(600)
    export(server)
    clock.advance(60)
    refused = export(server)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == str(3600 - 660), "seconds until the first request leaves the hour"


def test_retry_after_is_in_real_seconds_under_a_sped_up_clock(start):
    server = start(events_per_day=1, quotas=_hourly_only(export_per_hour=1), clock=SimClock(NOON, speed=60))
    export(server)
    refused = export(server)
    assert 55 <= int(refused.headers["Retry-After"]) <= 60, "a simulated hour at speed 60 is 60 real seconds"


def test_rolling_hour_frees_up_under_a_sped_up_clock(start):
    server = start(events_per_day=1, quotas=_hourly_only(export_per_hour=2), clock=SimClock(NOON, speed=3600))
    assert [export(server).status_code for _ in range(3)] == [200, 200, 429]
    time.sleep(1.2)  # 1.2 real s = 72 simulated minutes
    assert export(server).status_code == 200, "the hour has rolled past both requests"


def test_the_hour_rolls_rather_than_resets(start):
    clock = SimClock.manual(NOON)
    server = start(events_per_day=1, quotas=_hourly_only(export_per_hour=2), clock=clock)
    export(server)  # t = 0
    clock.advance(1800)
    export(server)  # t = 30 min
    clock.advance(1799)
    assert export(server).status_code == 429, "t = 59:59: both still in the last hour"
    clock.advance(2)
    assert export(server).status_code == 200, "t = 60:01: the first has left the window"
    assert export(server).status_code == 429, "the second (t = 30 min) and third still count"


def test_the_fourth_export_in_one_second_is_refused(start):
    clock = SimClock.manual(NOON)
    server = start(events_per_day=1, quotas=True, clock=clock)
    responses = [export(server) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[3].json()["error"] == (
        "Query rate limit exceeded for project_id: 12345. "
        "1/100 queries running concurrently and 4/3 queries running in the last second."
    )
    assert "Retry-After" not in responses[3].headers, "by default only hourly refusals carry Retry-After"
    clock.advance(1)
    assert export(server).status_code == 200


def test_engage_beyond_five_at_once_is_refused_while_they_run(start):
    server = start(profiles=10, quotas=True)
    server.add_fault("slow", endpoint="engage", delay=1.0, times=5)
    threads = [threading.Thread(target=engage, args=(server,)) for _ in range(5)]
    for thread in threads:
        thread.start()
    _wait_for(lambda: server.quota_stats()["engage"].running == 5)
    refused = engage(server)
    for thread in threads:
        thread.join()
    assert refused.status_code == 429
    assert refused.json() == {
        "request": "/api/query/engage",
        "error": "Query rate limit exceeded for project_id: 12345. "
        "6/5 queries running concurrently and 6/60 queries running in the last hour.",
    }
    assert engage(server).status_code == 200, "the slots are free once the responses ended"


def test_a_concurrency_slot_is_freed_when_the_client_goes_away(start):
    server = start(events_per_day=50_000, gzip=False, bytes_per_second=256 * 1024, quotas=True)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"GET /api/2.0/export?project_id=12345&from_date=2024-03-01&to_date=2024-03-01 HTTP/1.1\r\n"
            b"Host: x\r\nAuthorization: Basic dGVzdC11c2VyOnRlc3Qtc2VjcmV0\r\n\r\n"
        )
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        _wait_for(lambda: server.quota_stats()["export"].running == 1)
    _wait_for(lambda: server.quota_stats()["export"].running == 0, "the slot of a dropped client is released")


def test_retry_after_never_sends_no_header_even_when_hourly(start):
    server = start(events_per_day=1, quotas=_hourly_only(export_per_hour=1, retry_after="never"))
    export(server)
    refused = export(server)
    assert refused.status_code == 429
    assert "Retry-After" not in refused.headers


def test_retry_after_always_is_sent_on_per_second_refusals(start):
    clock = SimClock.manual(NOON)
    server = start(events_per_day=1, quotas=_hourly_only(export_per_second=1, retry_after="always"), clock=clock)
    export(server)
    refused = export(server)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"


def test_refusals_are_recorded_and_counted_by_limit(start):
    clock = SimClock.manual(NOON)
    server = start(events_per_day=1, quotas=Quotas(export_per_hour=4), clock=clock)
    for _ in range(4):  # 3 admitted, the 4th refused per second
        export(server)
    clock.advance(1)
    export(server)  # admitted: 4 in the hour
    export(server)  # refused: hourly
    assert [r.fault for r in server.requests] == [None, None, None, "quota:per-second", None, "quota:hourly"]
    stats = server.quota_stats()["export"]
    assert (stats.admitted, stats.refused_per_second, stats.refused_hourly, stats.in_last_hour) == (4, 1, 1, 4)
    clock.advance(timedelta(hours=1))
    assert server.quota_stats()["export"].in_last_hour == 0


def test_engage_and_export_have_separate_pools(start):
    clock = SimClock.manual(NOON)
    server = start(events_per_day=1, profiles=1, quotas=Quotas(export_per_hour=1, query_per_hour=1), clock=clock)
    assert export(server).status_code == 200
    assert engage(server).status_code == 200, "the export spent nothing of the query API's hour"
    assert engage(server).status_code == 429
    assert server.quota_stats()["engage"].refused_hourly == 1


def test_failed_auth_spends_no_quota(start):
    server = start(events_per_day=1, quotas=True)
    export(server, project_id=999)
    assert server.quota_stats()["export"].admitted == 0


def test_quotas_reject_a_zero_limit():
    with pytest.raises(ValueError, match="export_per_hour"):
        Quotas(export_per_hour=0)


def _wait_for(condition, message: str = "condition not met", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.01)
