"""Which days a run exports, and how they are split into windows (one export request each) and
units (windows written and restarted together, into objects named from one template).

A window is a range of whole days (``window_days``), or some hours of one day (``window_hours``:
the request asks for that day and bounds the event time with ``where``). ``lookback_days`` adds
the days before the first one, each a window (or hour windows) of its own.

When a task gives no ``from_date`` / ``to_date``, :func:`days_of_run` takes the days from the run:

- the complete UTC days of its data interval ``[data_interval_start, data_interval_end)``
  (Airflow 2's default ``CronDataIntervalTimetable``: the run of ``@daily`` that starts at
  2026-11-26T00:00 has the interval 2026-11-25..2026-11-26 and exports 2026-11-25);
- when that interval is empty (Airflow 3's default ``CronTriggerTimetable`` gives a scheduled run
  the interval ``[logical_date, logical_date)``) or missing (a manual run without one), the
  complete UTC day before its end (or before the logical date, or the time the run was due).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.kinds.events import and_where
from airflow_provider_mixpanel.transfers.storage import WINDOW_PLACEHOLDER, with_window

# Mixpanel exports whole days: windows and default dates step by this.
ONE_DAY = timedelta(days=1)
# Hour windows split a day evenly, so window_hours divides this.
HOURS_PER_DAY = 24
# How an export's where expression reads the event time (the form Airbyte and ingestr send).
TIME_PROPERTY = 'properties["$time"]'

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    """An inclusive range of days sent as one export request, or the hours ``[start, end)`` of one
    day (``first == last``); or, for a snapshot kind (profiles, cohorts...), no days: the state of
    the project when the run exports it, named after the run's date."""

    first: date | None
    last: date | None
    #: sub-day windows: the first hour and the hour after the last (1 to 24) of the day ``first``
    hours: tuple[int, int] | None = None
    #: snapshots: the run's date, which ``{window}`` becomes
    snapshot: date | None = None

    def __str__(self) -> str:
        if self.first is None:
            return f"snapshot {self.snapshot}" if self.snapshot else "snapshot"
        if self.hours is not None:
            return f"{self.first}T{self.hours[0]:02d}:00..{self.hours[1]:02d}:00"
        return f"{self.first}..{self.last}"

    @property
    def label(self) -> str:
        """What ``{window}`` becomes in object names: the day, ``FIRST_LAST`` for longer windows,
        or the day and first hour (``2024-03-01T06``) for hour windows; a snapshot's run date."""
        if self.first is None:
            return str(self.snapshot)
        if self.hours is not None:
            return f"{self.first}T{self.hours[0]:02d}"
        return str(self.first) if self.first == self.last else f"{self.first}_{self.last}"

    @property
    def start(self) -> datetime | None:
        """The first instant of the window (UTC), ``None`` for profiles."""
        if self.first is None:
            return None
        return _midnight(self.first) + timedelta(hours=self.hours[0] if self.hours else 0)

    @property
    def end(self) -> datetime | None:
        """The instant after the window (UTC, exclusive), ``None`` for profiles."""
        if self.first is None or self.last is None:
            return None
        if self.hours is not None:
            return _midnight(self.first) + timedelta(hours=self.hours[1])
        return _midnight(self.last) + ONE_DAY

    @property
    def time_bounds(self) -> str | None:
        """The ``where`` clause that bounds an hour window's event times; ``None`` for whole days."""
        if self.hours is None or self.start is None or self.end is None:
            return None
        since, until = int(self.start.timestamp()), int(self.end.timestamp())
        return f"{TIME_PROPERTY} >= datetime({since}) and {TIME_PROPERTY} < datetime({until})"


#: A snapshot without a date (profiles written into a fixed name).
PROFILES = Window(None, None)


@dataclass(frozen=True)
class Unit:
    """Windows written and restarted together, into objects named from one template."""

    windows: tuple[Window, ...]
    name_template: str
    #: the name template of the windows' identity mappings (``None``: none are written)
    identity_template: str | None = None

    def __str__(self) -> str:
        return ", ".join(str(w) for w in self.windows)


class RunDays(NamedTuple):
    """The days a run exports by default, and why (for the log)."""

    first: date
    last: date
    reason: str


def plan_windows(
    first: date,
    last: date,
    window_days: int | None,
    *,
    window_hours: int | None = None,
    lookback_days: int = 0,
) -> list[Window]:
    """``first``..``last`` in windows of ``window_days`` days (``None``: one window), or of
    ``window_hours`` hours each; ``lookback_days`` adds that many days before ``first``, and
    then every day is a window of its own (or is split into hour windows)."""
    if lookback_days:
        first -= timedelta(days=lookback_days)
        window_days = window_days or 1  # each day is replaced as a unit, in objects of its own
    if window_hours is not None:
        days = (first + timedelta(days=n) for n in range((last - first).days + 1))
        return [
            Window(day, day, (hour, hour + window_hours))
            for day in days
            for hour in range(0, HOURS_PER_DAY, window_hours)
        ]
    if window_days is None:
        return [Window(first, last)]
    windows = []
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=window_days - 1))
        windows.append(Window(start, end))
        start = end + ONE_DAY
    return windows


def plan_units(
    windows: list[Window], name_template: str, *, rotating: bool, identity_template: str | None = None
) -> list[Unit]:
    """With ``{window}`` or part rotation every window writes parts of its own and restarts alone;
    otherwise the whole range is one object, and a restart rewrites all of it. The identity
    mappings follow the events (their template holds ``{window}`` when the events' does)."""
    if WINDOW_PLACEHOLDER in name_template:
        return [
            Unit((w,), with_window(name_template, w.label), _with_window(identity_template, w.label)) for w in windows
        ]
    if rotating:
        return [Unit((w,), name_template, identity_template) for w in windows]
    return [Unit(tuple(windows), name_template, identity_template)]


def _with_window(template: str | None, label: str) -> str | None:
    return None if template is None else with_window(template, label)


def window_where(where: str | None, window: Window) -> str | None:
    """The ``where`` expression sent for ``window``: the user's (parenthesised) and the window's
    event-time bounds, joined with ``and``."""
    return and_where(where, window.time_bounds)


def days_of_run(context: Mapping[str, Any], *, where: str = "") -> RunDays:
    """The complete UTC days a run stands for (see the module's docstring), or a
    :class:`MixpanelConfigError` when it stands for none.

    :param context: the task's Airflow context (``data_interval_start``, ``data_interval_end``,
        ``logical_date``, ``dag_run``).
    :param where: prefix of the error message, e.g. ``"Task 'export': "``.
    """
    start = _utc(context.get("data_interval_start"))
    end = _utc(context.get("data_interval_end"))
    if start is not None and end is not None and start < end:
        first = start.date() if start.time() == time(0) else start.date() + ONE_DAY
        last = end.date() - ONE_DAY
        if first > last:
            raise MixpanelConfigError(
                f"{where}the run's data interval {start.isoformat()} to {end.isoformat()} holds no complete UTC "
                "day, and Mixpanel exports whole days: give from_date and to_date (e.g. '{{ ds }}'), or "
                "schedule the DAG daily or less often."
            )
        return RunDays(first, last, f"the complete UTC days of the run's data interval {start} to {end}")
    if end is not None:
        reason = "the run's data interval is empty (Airflow 3's default CronTriggerTimetable)"
        return _day_before(end, f"{reason}: the day before its end {end}")
    logical_date = _utc(context.get("logical_date"))
    if logical_date is not None:
        return _day_before(
            logical_date, f"the run has no data interval: the day before its logical date {logical_date}"
        )
    run_after = _utc(getattr(context.get("dag_run"), "run_after", None))
    if run_after is not None:
        return _day_before(run_after, f"the run has no logical date: the day before it was due ({run_after})")
    raise MixpanelConfigError(
        f"{where}from_date and to_date are not given and the run has no data interval, logical date or "
        "run_after to take the days from: give from_date and to_date."
    )


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _day_before(moment: datetime, reason: str) -> RunDays:
    day = moment.date() - ONE_DAY
    return RunDays(day, day, reason)


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
