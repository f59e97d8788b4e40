"""The part of an export's ``where`` expression the test server applies: bounds on the event time.

Airbyte and ingestr bound an export below a day with ``properties["$time"] >= datetime(<unix
seconds>)`` and ``properties["$time"] < datetime(<unix seconds>)``, joined with ``and`` (and with a
user's own expression). The server applies every such bound (``>=``, ``>``, ``<``, ``<=``) as an
intersection, and accepts but does not apply any other clause. A ``$time`` comparison in another
form (a date string, a float, ``==``) is refused with 400, so a bound is never dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BOUND = re.compile(
    r"""properties\s*\[\s*(?P<q>["'])\$time(?P=q)\s*\]\s*(?P<op>>=|<=|>|<)\s*datetime\(\s*(?P<seconds>-?\d+)\s*\)"""
)
_TIME = re.compile(r"""(?P<q>["'])\$time(?P=q)""")


@dataclass(frozen=True)
class TimeBounds:
    """Event times (Unix seconds) in ``[since, until)``; ``None`` is unbounded."""

    since: int | None = None
    until: int | None = None


def time_bounds(where: str | None) -> TimeBounds:
    """The ``$time`` bounds in ``where``; raises ``ValueError`` on a ``$time`` comparison it cannot read."""
    if not where:
        return TimeBounds()
    since: int | None = None
    until: int | None = None
    matches = list(_BOUND.finditer(where))
    if len(matches) != len(_TIME.findall(where)):
        raise ValueError(
            'the test server reads $time only as properties["$time"] >= datetime(<unix seconds>) '
            f"(or >, <, <=), in: {where}"
        )
    for match in matches:
        seconds = int(match["seconds"])
        op = match["op"]
        if op in (">=", ">"):
            low = seconds if op == ">=" else seconds + 1
            since = low if since is None else max(since, low)
        else:
            high = seconds if op == "<" else seconds + 1
            until = high if until is None else min(until, high)
    return TimeBounds(since, until)
