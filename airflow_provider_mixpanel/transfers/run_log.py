"""The lines an export writes to its task log, worded to be read at a glance in Airflow's log view:
the plan first (every day the run exports, and why), one short line per window committed, then a
summary. Each line stays short: Airflow prefixes it with a timestamp, level and source, and its
log view does not wrap by default.

Pure functions from values to text; :mod:`~airflow_provider_mixpanel.transfers.base`,
:mod:`~airflow_provider_mixpanel.transfers.outputs` and
:mod:`~airflow_provider_mixpanel.transfers.progress` log what they return.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_mixpanel.transfers.parts import WrittenPart
    from airflow_provider_mixpanel.transfers.windows import RunDays, Window

# Byte counts are shown in decimal units (as storage consoles and network rates are quoted),
# with three significant digits, so 32,100 bytes read "32.1 kB", never "0.0 MB".
BYTE_UNITS = ("bytes", "kB", "MB", "GB", "TB")
BYTES_PER_UNIT = 1000
# Up to this many days are listed one by one in the plan line; longer spans as first..last.
MAX_DAYS_LISTED = 3
# Characters a line may hold: Airflow 3's log view, 1400 pixels wide with the grid beside it,
# shows about 95 after its "[time] INFO - " prefix without scrolling sideways.
LINE_WIDTH = 95
# how a wrapped sentence's next lines start, so they read as one
CONTINUATION = "  "


def human_bytes(count: int | float) -> str:
    """``32100`` -> ``"32.1 kB"``; whole bytes below 1 kB (``"512 bytes"``)."""
    value = float(count)
    for unit in BYTE_UNITS:
        if abs(value) < BYTES_PER_UNIT or unit == BYTE_UNITS[-1]:
            if unit == "bytes":
                return f"{int(value):,} bytes" if int(value) != 1 else "1 byte"
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
        value /= BYTES_PER_UNIT
    raise AssertionError("unreachable")  # pragma: no cover


def human_duration(seconds: float) -> str:
    """``3.24`` -> ``"3.2 s"``, ``754`` -> ``"12 min 34 s"``, ``7300`` -> ``"2 h 1 min"``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def days_text(first: date, last: date) -> str:
    """``2024-05-14``, ``2024-05-13 and 2024-05-14``, or ``2024-05-09..2024-05-14`` (both included)."""
    count = (last - first).days + 1
    if count == 1:
        return str(first)
    if count <= MAX_DAYS_LISTED:
        days = [str(first + timedelta(days=n)) for n in range(count)]
        return ", ".join(days[:-1]) + " and " + days[-1]
    return f"{first}..{last}"


def plan_lines(
    stream: str,
    windows: Sequence[Window],
    *,
    run_days: RunDays | None,
    lookback_days: int,
) -> list[str]:
    """What the run will export and why, before any request: the first line names every day.

    ``Exporting events 2024-05-09..2024-05-14 (6 days): run day 2024-05-14 + 5 look-back days.``,
    then, for the run's own days, how they follow from the run (wrapped to :data:`LINE_WIDTH`).

    :param run_days: the run's own days when ``from_date`` / ``to_date`` were not given.
    :param lookback_days: the days exported again before the run's (or the given) first day.
    """
    if not windows or windows[0].first is None:
        return [f"Exporting {stream}: one snapshot of the profiles as they are now."]
    first, last = windows[0].first, windows[-1].last
    assert first is not None and last is not None
    days = (last - first).days + 1
    counts = plural(days, "day") + (f", {plural(len(windows), 'window')}" if len(windows) != days else "")
    head = f"Exporting {stream} {days_text(first, last)} ({counts})"
    own_first = first + timedelta(days=lookback_days)
    own_days = (last - own_first).days + 1
    # name the run's own days while they fit on the line; a long run by their count
    own = days_text(own_first, last) if own_days <= MAX_DAYS_LISTED else f"{own_days}"
    if run_days is not None:
        head += (
            f": run {'day' if own_days == 1 else 'days'} {own}" if own_days <= MAX_DAYS_LISTED else f": {own} run days"
        )
    elif lookback_days:
        head += f": from_date..to_date {own}" if own_days <= MAX_DAYS_LISTED else f": {own} given"
    else:
        head += ": from_date..to_date as given"
    if lookback_days:
        head += f" + {plural(lookback_days, 'look-back day')}"
    lines = [head + "."]
    if run_days is not None:
        why = f"Run {'day' if own_days == 1 else 'days'} {days_text(own_first, last)}: {run_days.reason}."
        lines += textwrap.wrap(why, LINE_WIDTH, subsequent_indent=CONTINUATION)
    return lines


def window_line(windows: Sequence[Window], parts: Sequence[WrittenPart]) -> str:
    """One window (or the windows of one object name) committed: its records, bytes and parts."""
    label = str(windows[0]) if len(windows) == 1 else f"{windows[0]}, ... {windows[-1]}"
    if windows[0].first is not None and windows[0].hours is None:
        first, last = windows[0].first, windows[-1].last
        assert last is not None
        label = days_text(first, last)
    records = sum(part.records for part in parts)
    written = sum(part.bytes for part in parts)
    return f"Committed {label}: {plural(records, 'record')}, {human_bytes(written)} in {plural(len(parts), 'part')}."


def summary_line(
    *, final: bool, records: int, bytes_in: int, bytes_out: int, seconds: float, windows: int | None = None
) -> str:
    """The progress line every few seconds, and the summary at the end."""
    rate = f"{records / seconds if seconds > 0 else 0.0:,.0f} records/s"
    if final:
        what = plural(records, "record") + (f" in {plural(windows, 'window')}" if windows is not None else "")
        return f"Done: {what}, {human_bytes(bytes_out)} written in {human_duration(seconds)} ({rate})."
    # parts are uploaded as they fill up: what was encoded shows progress before the first upload
    return (
        f"Progress: {plural(records, 'record')}, {human_bytes(bytes_in)} encoded, "
        f"{human_bytes(bytes_out)} written, {human_duration(seconds)} ({rate})."
    )
