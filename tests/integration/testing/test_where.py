"""`where` bounds on properties["$time"] filter the export by event time (sub-day windows)."""

from __future__ import annotations

import pytest

from airflow_provider_mixpanel.testing.where import TimeBounds, time_bounds
from tests.integration.testing.helpers import export, export_lines, utc

SIX = int(utc(2024, 3, 1, 6).timestamp())
NOON = int(utc(2024, 3, 1, 12).timestamp())


def _window(since: int, until: int) -> str:
    return f'properties["$time"] >= datetime({since}) and properties["$time"] < datetime({until})'


def test_time_bounds_filter_the_export_by_event_time(start):
    server = start(events_per_day=24 * 60)  # one event a minute
    times = [line["properties"]["time"] for line in export_lines(server, where=_window(SIX, NOON))]
    assert len(times) == 6 * 60
    assert min(times) == SIX
    assert max(times) < NOON


def test_hour_windows_partition_the_day(start):
    server = start(events_per_day=10_007)  # not a divisor of the day: windows must still not overlap
    day = int(utc(2024, 3, 1).timestamp())
    ids: list[str] = []
    for hour in range(24):
        window = _window(day + hour * 3600, day + (hour + 1) * 3600)
        ids += [line["properties"]["$insert_id"] for line in export_lines(server, where=window)]
    assert ids == list(server.expected_insert_ids(utc(2024, 3, 1).date())), "every event exactly once"


def test_other_clauses_are_accepted_and_only_time_is_applied(start):
    server = start(events_per_day=24 * 60)
    where = f'(properties["plan"] == "pro" or defined(properties["coupon"])) and {_window(SIX, NOON)}'
    assert export(server, where=where).content == export(server, where=_window(SIX, NOON)).content


def test_a_time_comparison_the_server_cannot_read_is_a_400(start):
    server = start()
    response = export(server, where='properties["$time"] >= "2024-03-01T06:00:00"')
    assert response.status_code == 400
    assert "datetime(<unix seconds>)" in response.json()["error"]


def test_bounds_apply_across_a_multi_day_range(start):
    server = start(events_per_day=24)
    since = int(utc(2024, 3, 1, 18).timestamp())
    until = int(utc(2024, 3, 2, 6).timestamp())
    lines = export_lines(server, to_date="2024-03-02", where=_window(since, until))
    assert [line["properties"]["time"] for line in lines] == list(range(since, until, 3600))


@pytest.mark.parametrize(
    ("where", "bounds"),
    [
        ('properties["$time"] > datetime(100)', TimeBounds(101, None)),
        ('properties["$time"] <= datetime(100)', TimeBounds(None, 101)),
        ("properties['$time']>=datetime(5) and properties['$time']>=datetime(9)", TimeBounds(9, None)),
        ('properties["plan"] == "pro"', TimeBounds()),
        (None, TimeBounds()),
    ],
)
def test_time_bounds_are_read_as_a_half_open_interval(where, bounds):
    assert time_bounds(where) == bounds
