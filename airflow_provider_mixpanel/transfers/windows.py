"""Which days a run exports, and how they are split into windows (one export request each) and
units (windows written and restarted together, into objects named from one template).

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
from airflow_provider_mixpanel.transfers.storage import WINDOW_PLACEHOLDER, with_window

# Mixpanel exports whole days: windows and default dates step by this.
ONE_DAY = timedelta(days=1)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    """An inclusive range of days sent as one export request (profiles: one query, no days)."""

    first: date | None
    last: date | None

    def __str__(self) -> str:
        return "profiles" if self.first is None else f"{self.first}..{self.last}"

    @property
    def label(self) -> str:
        """What ``{window}`` becomes in object names: the day, or ``FIRST_LAST`` for longer windows."""
        return str(self.first) if self.first == self.last else f"{self.first}_{self.last}"


PROFILES = Window(None, None)


@dataclass(frozen=True)
class Unit:
    """Windows written and restarted together, into objects named from one template."""

    windows: tuple[Window, ...]
    name_template: str

    def __str__(self) -> str:
        return ", ".join(str(w) for w in self.windows)


class RunDays(NamedTuple):
    """The days a run exports by default, and why (for the log)."""

    first: date
    last: date
    reason: str


def plan_windows(first: date, last: date, window_days: int | None) -> list[Window]:
    """``first``..``last`` in windows of ``window_days`` days (``None``: one window)."""
    if window_days is None:
        return [Window(first, last)]
    windows = []
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=window_days - 1))
        windows.append(Window(start, end))
        start = end + ONE_DAY
    return windows


def plan_units(windows: list[Window], name_template: str, *, rotating: bool) -> list[Unit]:
    """With ``{window}`` or part rotation every window writes parts of its own and restarts alone;
    otherwise the whole range is one object, and a restart rewrites all of it."""
    if WINDOW_PLACEHOLDER in name_template:
        return [Unit((w,), with_window(name_template, w.label)) for w in windows]
    if rotating:
        return [Unit((w,), name_template) for w in windows]
    return [Unit(tuple(windows), name_template)]


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


def _day_before(moment: datetime, reason: str) -> RunDays:
    day = moment.date() - ONE_DAY
    return RunDays(day, day, reason)


def _utc(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
