"""Days as Mixpanel counts them: parsing a day argument and checking a range of days.

Mixpanel's ``from_date`` / ``to_date`` are whole days (UTC for projects created from 2023, the
project's time zone before). No Airflow here: the hook, the CLI and the operators share these.
"""

from __future__ import annotations

from datetime import date, datetime

from airflow_provider_mixpanel.errors import MixpanelConfigError


def parse_date(value: date | str, name: str) -> date:
    """A ``date`` from a ``date``, a ``datetime`` (its date) or a ``YYYY-MM-DD`` string, or a clear error."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
        except ValueError:
            pass
    raise MixpanelConfigError(
        f"{name}={value!r} is not a date: use YYYY-MM-DD (e.g. '2024-01-31'), a datetime.date, "
        "or a template such as '{{ ds }}'."
    )


def date_range(from_date: date | str, to_date: date | str, *, where: str = "") -> tuple[date, date]:
    """``(first, last)`` parsed and in order, or a :class:`MixpanelConfigError` that says how to fix them.

    :param where: prefix of the error message, e.g. ``"Task 'export': "``.
    """
    first = parse_date(from_date, "from_date")
    last = parse_date(to_date, "to_date")
    if first > last:
        raise MixpanelConfigError(
            f"{where}from_date {first} is after to_date {last}: swap them, or set to_date to {first} or later."
        )
    return first, last
