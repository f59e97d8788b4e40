"""Same configuration, same bytes: two servers answer the same requests identically."""

from __future__ import annotations

from airflow_provider_mixpanel.testing import SimClock
from tests.integration.testing.helpers import engage, export, utc

WINDOW = 'properties["$time"] >= datetime(1709280000) and properties["$time"] < datetime(1709301600)'


def _twins(start, **config):
    return [start(clock=SimClock.manual(utc(2024, 3, 2, 0, 30)), **config) for _ in range(2)]


def test_export_bytes_are_the_same_with_late_arrival_and_bounds(start):
    a, b = _twins(start, events_per_day=5000, late_arrival=True)
    params = {"to_date": "2024-03-02", "where": WINDOW, "time_in_ms": "true"}
    assert export(a, **params).content == export(b, **params).content


def test_engage_bytes_are_the_same_including_session_ids(start):
    a, b = _twins(start, profiles=1500, profile_properties=50)
    for form in ({"page_size": 1000}, {"page": 1, "session_id": "x", "page_size": 1000}, {}):
        assert engage(a, **form).content == engage(b, **form).content


def test_an_export_repeated_at_the_same_time_is_the_same(start):
    server = start(events_per_day=2000, late_arrival=True, clock=SimClock.manual(utc(2024, 3, 2, 0, 30)))
    assert export(server).content == export(server).content
