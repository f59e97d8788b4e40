"""Synthetic annotations: dated notes on the project's charts, computed per day.

``GET /api/app/projects/{projectId}/annotations?fromDate=&toDate=`` answers ``{"status": "ok",
"results": [...]}``, each entry in the schema's keys (``openapi/annotations.openapi.yaml``,
``AnnotationsEntry``, ``additionalProperties: false``): ``date`` (``"2022-02-15 12:00:00"``),
``description``, ``id``, ``user`` (``id``, ``first_name``, ``last_name``) and ``tags`` (``id``,
``name``). Both dates are inclusive days.

Three days in four carry ``per_day`` annotations, the fourth none (so empty days are exercised);
annotation ``j`` of day ``d`` has id ``d.toordinal() * 100 + j``. Nothing is stored: any range of
days is computed as it is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

#: Ids are ``ordinal * 100 + j``: at most this many annotations a day keep them unique.
MAX_PER_DAY = 100
_USERS = (
    {"id": 501, "first_name": "Ana", "last_name": "Gonçalves"},
    {"id": 502, "first_name": "John", "last_name": "Smith"},
    {"id": 503, "first_name": "Łukasz", "last_name": "Kowalski"},
)
_TAGS = ({"id": 11, "name": "release"}, {"id": 12, "name": "marketing"}, {"id": 13, "name": "incident"})
_DESCRIPTIONS = (
    "Release 4.2 – new checkout",
    'Newsletter sent ("Summer sale")',
    "Outage: EU ingestion delayed 40 min",
    "Pricing page A/B test started → variant B",
    "Tracking plan updated\nsee Lexicon",
)


@dataclass(frozen=True)
class SyntheticAnnotations:
    """The project's annotations.

    :param per_day: annotations on each annotated day (three days in four).
    """

    per_day: int

    def day(self, day: date) -> Iterator[dict]:
        """The annotations of one day, in time order."""
        ordinal = day.toordinal()
        if ordinal % 4 == 0:
            return
        for j in range(self.per_day):
            minutes = 9 * 60 + j * (14 * 60 // max(1, self.per_day)) + ordinal % 7  # through the working day
            seed = ordinal + j
            yield {
                "date": f"{day.isoformat()} {minutes // 60:02d}:{minutes % 60:02d}:00",
                "description": _DESCRIPTIONS[seed % len(_DESCRIPTIONS)],
                "id": ordinal * MAX_PER_DAY + j,
                "user": dict(_USERS[seed % len(_USERS)]),
                "tags": [dict(tag) for tag in _TAGS[: seed % 3]],
            }

    def between(self, first: date, last: date) -> Iterator[dict]:
        """The annotations of ``[first, last]``, both inclusive, in date order."""
        day = first
        while day <= last:
            yield from self.day(day)
            day += timedelta(days=1)
