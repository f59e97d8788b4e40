from __future__ import annotations

from datetime import date

import pytest

from airflow_provider_mixpanel.transfers.parts import WrittenPart
from airflow_provider_mixpanel.transfers.run_log import (
    LINE_WIDTH,
    human_bytes,
    human_duration,
    plan_lines,
    summary_line,
    window_line,
)
from airflow_provider_mixpanel.transfers.windows import PROFILES, RunDays, Window, plan_windows


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (999, "999 bytes"),
        (32_100, "32.1 kB"),
        (1_000, "1 kB"),
        (250_000, "250 kB"),
        (5_242_880, "5.24 MB"),
        (3_400_000_000, "3.4 GB"),
    ],
)
def test_bytes_never_round_to_zero(count, text):
    assert human_bytes(count) == text


@pytest.mark.parametrize(("seconds", "text"), [(3.24, "3.2 s"), (754, "12 min 34 s"), (7300, "2 h 1 min")])
def test_durations_read_as_people_say_them(seconds, text):
    assert human_duration(seconds) == text


def test_first_line_names_the_run_day_and_the_look_back():
    windows = plan_windows(date(2024, 5, 14), date(2024, 5, 14), None, lookback_days=5)
    run_days = RunDays(date(2024, 5, 14), date(2024, 5, 14), "the run's data interval is empty")
    first, why = plan_lines("events", windows, run_days=run_days, lookback_days=5)
    assert first == "Exporting events 2024-05-09..2024-05-14 (6 days): run day 2024-05-14 + 5 look-back days."
    assert why == "Run day 2024-05-14: the run's data interval is empty."


def test_a_long_reason_is_wrapped_into_short_lines():
    windows = plan_windows(date(2024, 5, 14), date(2024, 5, 14), None)
    reason = "the run's data interval is empty (Airflow 3's default CronTriggerTimetable): the day before its end " * 2
    _, *why = plan_lines(
        "events", windows, run_days=RunDays(windows[0].first, windows[0].last, reason), lookback_days=0
    )
    assert len(why) > 1 and all(len(line) <= LINE_WIDTH for line in why)
    assert why[1].startswith("  ")


def test_given_dates_are_named_as_given():
    windows = plan_windows(date(2024, 3, 1), date(2024, 3, 2), 1)
    (line,) = plan_lines("events", windows, run_days=None, lookback_days=0)
    assert line == "Exporting events 2024-03-01 and 2024-03-02 (2 days): from_date..to_date as given."


def test_hour_windows_are_counted_apart_from_days():
    windows = plan_windows(date(2024, 3, 1), date(2024, 3, 1), None, window_hours=6)
    (line,) = plan_lines("events", windows, run_days=None, lookback_days=0)
    assert line.startswith("Exporting events 2024-03-01 (1 day, 4 windows):")


def test_profiles_say_they_are_a_snapshot():
    assert plan_lines("profiles", [PROFILES], run_days=None, lookback_days=0) == [
        "Exporting profiles: one snapshot of the profiles as they are now."
    ]


def test_window_line_is_short_and_counts_every_part():
    parts = [WrittenPart("a", "s3://b/a", 60, 20_000), WrittenPart("b", "s3://b/b", 40, 12_100)]
    line = window_line([Window(date(2024, 5, 9), date(2024, 5, 9))], parts)
    assert line == "Committed 2024-05-09: 100 records, 32.1 kB in 2 parts."


def test_summary_has_records_bytes_and_duration():
    line = summary_line(final=True, records=600, bytes_in=190_000, bytes_out=32_100, seconds=3.2, windows=6)
    assert line == "Done: 600 records in 6 windows, 32.1 kB written in 3.2 s (188 records/s)."


def test_progress_shows_what_was_encoded_before_the_first_upload():
    line = summary_line(final=False, records=6000, bytes_in=1_200_000, bytes_out=0, seconds=10)
    assert line == "Progress: 6,000 records, 1.2 MB encoded, 0 bytes written, 10.0 s (600 records/s)."


def test_every_line_fits_without_horizontal_scrolling():
    windows = plan_windows(date(2024, 3, 1), date(2024, 3, 30), 1, lookback_days=5)
    run_days = RunDays(date(2024, 3, 1), date(2024, 3, 30), "the complete UTC days of the run's data interval")
    hours = plan_windows(date(2024, 3, 1), date(2024, 3, 30), None, window_hours=1, lookback_days=5)
    lines = [
        *plan_lines("events", windows, run_days=run_days, lookback_days=5),
        *plan_lines("events", hours, run_days=None, lookback_days=5),
        window_line(hours[:1], [WrittenPart("a", "s3://b/a", 123_456, 98_765_432)]),
        window_line(windows[:1], [WrittenPart("a", "s3://b/a", 123_456, 98_765_432)]),
        summary_line(final=True, records=12_345_678, bytes_in=9 * 10**10, bytes_out=10**10, seconds=7300, windows=35),
    ]
    assert all(len(line) <= LINE_WIDTH for line in lines), [line for line in lines if len(line) > LINE_WIDTH]
