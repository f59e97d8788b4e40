"""The arguments kinds share, each declared once (help, CLI flag, templated or not, its check),
and the checks behind them. A kind's :class:`~.base.Query` lists the ones it accepts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow_provider_mixpanel.errors import MixpanelConfigError
from airflow_provider_mixpanel.kinds.base import Argument

# Profiles asked for per engage page when the caller does not say: 1,000,000 profiles in 21
# queries (20 pages, then the empty one that ends paging) of the query API's 60 per hour
# (Mixpanel's own default, 1,000, would need 1,000 queries, about 17 hours of quota). Pages are
# parsed as they arrive, so a large page costs no memory.
DEFAULT_ENGAGE_PAGE_SIZE = 50_000
# Mixpanel caps one export request's `limit` at this many events.
MAX_EXPORT_LIMIT = 100_000


def check_text(value: Any, name: str, where: str) -> str | None:
    """A string; ``""`` counts as not given (a template that rendered empty)."""
    if not isinstance(value, str):
        raise MixpanelConfigError(f"{where}{name}={value!r}: give a string.")
    return value or None


def check_names(value: Any, name: str, where: str) -> tuple[str, ...] | None:
    """One name or a list of non-empty names, as a tuple; an empty list counts as not given."""
    names = [value] if isinstance(value, str) else _listed(value, name, where)
    if not all(isinstance(n, str) and n for n in names):
        raise MixpanelConfigError(f"{where}{name}={names!r}: give a list of non-empty names.")
    return tuple(names) or None


def check_strings(value: Any, name: str, where: str) -> tuple[str, ...]:
    """One string or a list of strings, as a tuple (an empty list stays empty: it asks for none)."""
    names = [value] if isinstance(value, str) else _listed(value, name, where)
    if not all(isinstance(n, str) for n in names):
        raise MixpanelConfigError(f"{where}{name}={names!r}: give a list of strings.")
    return tuple(names)


def check_id(value: Any, name: str, where: str) -> int | None:
    """A whole number, or its digits as text (templates render to text); ``""`` counts as not given."""
    if value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise MixpanelConfigError(f"{where}{name}={value!r}: it must be a whole number (the id shown in Mixpanel).")


def check_ids(value: Any, name: str, where: str) -> tuple[int, ...] | None:
    """A list of ids (or one); an empty list counts as not given."""
    items = [value] if isinstance(value, int | str) else _listed(value, name, where)
    # An id given twice is asked for once: twice would export its records twice.
    ids = tuple(dict.fromkeys(check_id(item, name, where) for item in items))
    if None in ids:
        raise MixpanelConfigError(f"{where}{name}={value!r}: give whole numbers (the ids shown in Mixpanel).")
    return ids or None  # type: ignore[return-value]


def check_positive(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MixpanelConfigError(f"{where}{name}={value!r}: it must be a positive whole number.")
    return value


def check_limit(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_EXPORT_LIMIT:
        raise MixpanelConfigError(f"{where}{name}={value!r}: Mixpanel accepts 1 to {MAX_EXPORT_LIMIT}.")
    return value


def check_flag(value: Any, name: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise MixpanelConfigError(f"{where}{name}={value!r}: use True or False.")
    return value


def _listed(value: Any, name: str, where: str) -> list[Any]:
    if isinstance(value, Iterable) and not isinstance(value, bytes | dict):
        return list(value)
    raise MixpanelConfigError(f"{where}{name}={value!r}: give a list.")


WHERE = Argument(
    'a Mixpanel filter expression, e.g. \'properties["plan"] == "pro"\'',
    check_text,
    templated=True,
    flag="--where",
    metavar="EXPRESSION",
)
OUTPUT_PROPERTIES = Argument(
    "only these profile properties (much smaller pages)",
    check_strings,
    templated=True,
    flag="--output-property",
    metavar="NAME",
    repeat=True,
)
PAGE_SIZE = Argument(
    f"profiles per Engage request (default {DEFAULT_ENGAGE_PAGE_SIZE:,}; Mixpanel's own, 1,000, "
    "would spend 50 times the hourly query quota)",
    check_positive,
    flag="--page-size",
    metavar="N",
    cli_type=int,
)
INCLUDE_ALL_USERS = Argument(
    "with a cohort: also members without a profile (Mixpanel's default)",
    check_flag,
    flag="--include-all-users",
    metavar=None,
)
