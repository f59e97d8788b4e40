"""Which days a run exports by default, windows and units, and the object-name placeholders: pure
functions, no servers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.transfers.storage import common_directory, part_name, part_pattern, with_part
from airflow_provider_mixpanel.transfers.windows import Window, days_of_run, plan_units, plan_windows, window_where


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def test_a_daily_data_interval_exports_its_day():
    """Airflow 2's CronDataIntervalTimetable: the run at 2026-11-26T00:00 covers 2026-11-25."""
    days = days_of_run({"data_interval_start": at(25), "data_interval_end": at(26), "logical_date": at(25)})
    assert (days.first, days.last) == (date(2026, 11, 25), date(2026, 11, 25))


def test_a_weekly_data_interval_exports_its_seven_days():
    days = days_of_run({"data_interval_start": at(16), "data_interval_end": at(23)})
    assert (days.first, days.last) == (date(2026, 11, 16), date(2026, 11, 22))


def test_only_complete_utc_days_of_an_interval_are_exported():
    days = days_of_run({"data_interval_start": at(16, 6), "data_interval_end": at(20, 6)})
    assert (days.first, days.last) == (date(2026, 11, 17), date(2026, 11, 19))


def test_interval_in_another_time_zone_is_read_in_utc():
    new_york = timezone(timedelta(hours=-5))
    start = datetime(2026, 11, 24, 19, tzinfo=new_york)  # 2026-11-25T00:00 UTC
    end = datetime(2026, 11, 25, 19, tzinfo=new_york)
    days = days_of_run({"data_interval_start": start, "data_interval_end": end})
    assert (days.first, days.last) == (date(2026, 11, 25), date(2026, 11, 25))


def test_an_empty_interval_exports_the_day_before():
    """Airflow 3's default CronTriggerTimetable: the run scheduled__2026-11-26 has an empty interval
    at its trigger time, and must export 2026-11-25, not the day that has just started."""
    days = days_of_run({"data_interval_start": at(26), "data_interval_end": at(26), "logical_date": at(26)})
    assert (days.first, days.last) == (date(2026, 11, 25), date(2026, 11, 25))
    assert "empty" in days.reason


def test_an_empty_interval_later_in_the_day_exports_the_last_complete_day():
    days = days_of_run({"data_interval_start": at(26, 5), "data_interval_end": at(26, 5)})
    assert (days.first, days.last) == (date(2026, 11, 25), date(2026, 11, 25))


def test_a_run_without_interval_exports_the_day_before_its_logical_date():
    days = days_of_run({"data_interval_start": None, "data_interval_end": None, "logical_date": at(26, 13)})
    assert (days.first, days.last) == (date(2026, 11, 25), date(2026, 11, 25))


def test_a_run_without_logical_date_exports_the_day_before_it_was_due():
    """Airflow 3: a manual run may have no logical date; its dag_run still has run_after."""
    days = days_of_run({"logical_date": None, "dag_run": SimpleNamespace(run_after=at(26, 9))})
    assert (days.first, days.last) == (date(2026, 11, 25), date(2026, 11, 25))


def test_an_interval_without_a_complete_day_is_an_error():
    with pytest.raises(MixpanelConfigError, match=r"holds no complete UTC day.*give from_date and to_date"):
        days_of_run({"data_interval_start": at(26, 1), "data_interval_end": at(26, 2)}, where="Task 't': ")


def test_a_run_without_any_date_is_an_error():
    with pytest.raises(MixpanelConfigError, match=r"^Task 't': from_date and to_date are not given"):
        days_of_run({}, where="Task 't': ")


def test_windows_split_the_days():
    windows = plan_windows(date(2024, 3, 1), date(2024, 3, 5), 2)
    assert [str(w) for w in windows] == ["2024-03-01..2024-03-02", "2024-03-03..2024-03-04", "2024-03-05..2024-03-05"]
    assert [w.label for w in windows] == ["2024-03-01_2024-03-02", "2024-03-03_2024-03-04", "2024-03-05"]
    assert plan_windows(date(2024, 3, 1), date(2024, 3, 5), None) == [Window(date(2024, 3, 1), date(2024, 3, 5))]


def test_units_follow_the_name_template():
    windows = plan_windows(date(2024, 3, 1), date(2024, 3, 2), 1)
    assert [u.name_template for u in plan_units(windows, "e/{window}/{part}.gz", rotating=False)] == [
        "e/2024-03-01/{part}.gz",
        "e/2024-03-02/{part}.gz",
    ]
    assert len(plan_units(windows, "e/{part}.gz", rotating=True)) == 2, "rotation: each window restarts alone"
    assert [len(u.windows) for u in plan_units(windows, "e.gz", rotating=False)] == [2], "one object, one unit"


@pytest.mark.parametrize(
    ("template", "hint"),
    [
        ("exports/v1.2/events.jsonl.gz", "exports/v1.2/events-{part}.jsonl.gz"),
        ("events.jsonl.gz", "events-{part}.jsonl.gz"),
        ("a.b/c/events", "a.b/c/events-{part}"),
    ],
)
def test_part_hint_splits_the_extension_of_the_last_segment_only(template, hint):
    assert with_part(template) == hint


def test_part_names_and_their_pattern():
    assert part_name("d/p-{part}.gz", 12) == "d/p-00012.gz"
    assert part_pattern("d/p-{part}.gz").match("d/p-00012.gz")
    assert not part_pattern("d/p-{part}.gz").match("d/p-00012.gz.bak")


@pytest.mark.parametrize(
    ("template", "directory"),
    [
        ("mixpanel/events/{window}/part-{part}.jsonl.gz", "mixpanel/events"),
        ("events/2024-03-01/part-{part}.jsonl.gz", "events/2024-03-01"),
        ("{part}.jsonl", "/"),
        ("one/object.jsonl", "one/object.jsonl"),
    ],
)
def test_lineage_names_the_common_directory(template, directory):
    assert common_directory(template) == directory


DAY = date(2024, 3, 1)
MIDNIGHT = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize("hours", [24, 6, 1])
def test_hour_windows_partition_every_day_exactly_once(hours):
    windows = plan_windows(DAY, date(2024, 3, 2), None, window_hours=hours)
    assert len(windows) == 2 * 24 // hours
    covered = [w.start for w in windows] + [windows[-1].end]
    assert covered == [MIDNIGHT + timedelta(hours=hours * n) for n in range(len(windows) + 1)], "gaps or overlaps"
    assert all(w.first == w.last for w in windows), "an hour window asks Mixpanel for its own day only"
    assert all(w.end - w.start == timedelta(hours=hours) for w in windows)


def test_hour_windows_are_labelled_by_day_and_first_hour():
    windows = plan_windows(DAY, DAY, None, window_hours=6)
    assert [w.label for w in windows] == ["2024-03-01T00", "2024-03-01T06", "2024-03-01T12", "2024-03-01T18"]
    assert str(windows[1]) == "2024-03-01T06:00..12:00"


def test_hour_windows_bound_the_event_time_with_where():
    window = plan_windows(DAY, DAY, None, window_hours=6)[1]
    since, until = int((MIDNIGHT + timedelta(hours=6)).timestamp()), int((MIDNIGHT + timedelta(hours=12)).timestamp())
    bounds = f'properties["$time"] >= datetime({since}) and properties["$time"] < datetime({until})'
    assert window_where(None, window) == bounds
    assert (
        window_where('properties["plan"] == "pro" or x', window) == f'(properties["plan"] == "pro" or x) and {bounds}'
    )


def test_whole_days_send_the_users_where_unchanged():
    window = Window(DAY, DAY)
    assert window_where('properties["plan"] == "pro"', window) == 'properties["plan"] == "pro"'
    assert window_where("", window) is None and window.time_bounds is None
    assert (window.start, window.end) == (MIDNIGHT, MIDNIGHT + timedelta(days=1))


def test_lookback_adds_the_days_before_each_a_window_of_its_own():
    windows = plan_windows(date(2024, 3, 10), date(2024, 3, 10), None, lookback_days=5)
    assert [w.label for w in windows] == [f"2024-03-{d:02d}" for d in range(5, 11)]
    assert all(w.first == w.last for w in windows)


def test_lookback_splits_the_days_looked_back_at_into_hours_too():
    windows = plan_windows(date(2024, 3, 10), date(2024, 3, 10), None, window_hours=12, lookback_days=1)
    assert [w.label for w in windows] == ["2024-03-09T00", "2024-03-09T12", "2024-03-10T00", "2024-03-10T12"]
