"""Late arrival: events processed after their event time; exports see only what is processed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_mixpanel.testing import LateArrival, SimClock
from airflow_provider_mixpanel.testing.data import SyntheticEvents
from tests.integration.testing.helpers import DAY, export, export_lines, utc

NEXT_DAY_0030 = utc(2024, 3, 2, 0, 30)
DAY_START_MS = int(utc(2024, 3, 1).timestamp() * 1000)
DAY_END_MS = DAY_START_MS + 86_400_000


def test_export_returns_only_events_processed_by_server_time(start):
    server = start(events_per_day=5000, late_arrival=True, clock=SimClock.manual(NEXT_DAY_0030))
    lines = export_lines(server)
    at_ms = int(NEXT_DAY_0030.timestamp() * 1000)
    assert all(line["properties"]["mp_processing_time_ms"] <= at_ms for line in lines)
    assert len(lines) == server.visible_count(DAY)
    assert len(lines) < server.final_day_count(DAY), "some events of the day arrive after 00:30 the next day"


def test_late_events_keep_arriving_for_five_days(start):
    clock = SimClock.manual(NEXT_DAY_0030)
    server = start(events_per_day=20_000, late_arrival=True, clock=clock)
    counts = []
    for _ in range(6):
        counts.append(len(export_lines(server)))
        clock.advance(timedelta(days=1))
    assert counts == sorted(counts), "a day only ever gains events"
    assert counts[0] < counts[1] < counts[4], "events of day D still arrive on D+2 .. D+5"
    assert counts[5] == server.final_day_count(DAY)


def test_an_export_after_the_day_completes_returns_its_final_content(start):
    clock = SimClock.manual(NEXT_DAY_0030)
    server = start(events_per_day=3000, late_arrival=True, clock=clock)
    clock.set(server.day_complete_at(DAY))
    body = export(server).content
    assert body == b"".join(server.final_day_lines(DAY))
    assert server.day_complete_at(DAY) == utc(2024, 3, 7), "day end + the 5-day maximum lag"


def test_visible_lines_are_what_an_export_at_that_time_returns(start):
    server = start(events_per_day=3000, late_arrival=True, clock=SimClock.manual(NEXT_DAY_0030))
    assert export(server).content == b"".join(server.visible_lines(DAY))


def test_expected_insert_ids_are_the_final_days_ids(start):
    server = start(events_per_day=500, late_arrival=True, clock=SimClock.manual(utc(2024, 4, 1)))
    ids = [line["properties"]["$insert_id"] for line in export_lines(server)]
    assert ids == list(server.expected_insert_ids(DAY))
    assert len(set(ids)) == 500


def test_default_shape_is_mostly_within_a_minute_with_a_tail_of_days():
    lags = list(LateArrival().lags_ms(DAY.toordinal(), 0, 100_000))
    within_minute = sum(lag < 60_000 for lag in lags) / len(lags)
    beyond_a_day = sum(lag >= 86_400_000 for lag in lags) / len(lags)
    assert 0.89 < within_minute < 0.91
    assert 0.004 < beyond_a_day < 0.006
    assert max(lags) <= 5 * 86_400_000
    assert min(lags) >= 0


def test_event_times_stay_in_their_day_and_processing_follows_them(start):
    server = start(events_per_day=2000, late_arrival=True, clock=SimClock.manual(utc(2024, 4, 1)))
    for line in export_lines(server, time_in_ms="true"):
        event_ms = line["properties"]["time"]
        assert DAY_START_MS <= event_ms < DAY_END_MS
        assert event_ms <= line["properties"]["mp_processing_time_ms"] <= event_ms + 5 * 86_400_000


def test_lags_are_deterministic_per_day_and_index():
    late = LateArrival()
    assert list(late.lags_ms(738_000, 0, 1000)) == list(LateArrival().lags_ms(738_000, 0, 1000))
    assert list(late.lags_ms(738_000, 500, 510)) == list(late.lags_ms(738_000, 0, 1000))[500:510]
    assert list(late.lags_ms(738_000, 0, 1000)) != list(late.lags_ms(738_001, 0, 1000))


def test_a_custom_shape_bounds_the_lags():
    late = LateArrival(shape=((0.5, timedelta(seconds=10)), (0.5, timedelta(hours=1))))
    lags = list(late.lags_ms(DAY.toordinal(), 0, 10_000))
    assert max(lags) < 3_600_000
    assert 0.45 < sum(lag < 10_000 for lag in lags) / len(lags) < 0.55
    assert late.max_lag == timedelta(hours=1)


def test_shares_must_add_up_to_one():
    with pytest.raises(ValueError, match="add up to 1"):
        LateArrival(shape=((0.5, timedelta(minutes=1)),))


def test_without_late_arrival_every_event_is_visible_whatever_the_clock(start):
    server = start(events_per_day=100, clock=SimClock.manual(utc(2020, 1, 1)))
    assert len(export_lines(server)) == 100, "the default server ignores the clock, as before"
    assert server.visible_count(DAY) == 100


def test_a_day_in_the_future_of_the_clock_is_empty(start):
    server = start(events_per_day=100, late_arrival=True, clock=SimClock.manual(utc(2024, 2, 1)))
    response = export(server)
    assert response.status_code == 200
    assert response.content == b""


def test_visible_count_matches_the_synthetic_lines():
    synthetic = SyntheticEvents(4000, late_arrival=LateArrival())
    at_ms = int(NEXT_DAY_0030.timestamp() * 1000)
    assert synthetic.visible_count(DAY, at_ms) == sum(1 for _ in synthetic.day_lines(DAY, visible_at_ms=at_ms))
