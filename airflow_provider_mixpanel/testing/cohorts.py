"""Synthetic saved cohorts, and their members: real profiles that engage serves.

Cohort ``k`` (``0 <= k < cohorts``) has id ``1000 + k`` and ``size = min(cohort_size, profiles)``
members: the profiles at indexes ``(offset_k + j) % profiles`` for ``j < size``, where
``offset_k = k * 7919 % profiles``. Membership and any page of members are found by arithmetic,
never by listing, so 100 cohorts of 10,000 members (or of a billion) cost the server nothing.

``POST /api/query/cohorts/list`` answers a JSON array of cohorts in the key order of Mixpanel's
example (``openapi/query.openapi.yaml``, ``/cohorts/list``): ``count``, ``is_visible`` (0 or 1),
``description``, ``created`` (``"2019-03-19 23:49:51"``), ``project_id``, ``id``, ``name``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import overload

FIRST_COHORT_ID = 1000
# Offsets of successive cohorts step by a prime, so cohorts overlap only partly.
_OFFSET_STEP = 7919
_NAMES = ("Power users", "Churn risk – Zürich", "新規ユーザー", "Trial → paid", "Dormant (90 days)")
_DESCRIPTIONS = (
    "Users who purchased at least 3 times in the last 30 days.",
    "",  # Mixpanel keeps an empty description as ""
    'Signed up in the last 7 days; "new" as Marketing defines it.',
    "Converted from the free trial to a paid plan.",
    "No event in the last 90 days.\nReviewed monthly.",
)


@dataclass(frozen=True)
class SyntheticCohorts:
    """The project's cohorts.

    :param count: how many saved cohorts the project has.
    :param cohort_size: members of each cohort (at most ``profiles``: members are profiles).
    :param profiles: how many profiles engage serves.
    :param project_id: the project the cohorts belong to.
    :param since: the day the first cohort was created; each next one a day later.
    """

    count: int
    cohort_size: int
    profiles: int
    project_id: int
    since: date

    @property
    def size(self) -> int:
        return max(0, min(self.cohort_size, self.profiles))

    def ids(self) -> range:
        return range(FIRST_COHORT_ID, FIRST_COHORT_ID + self.count)

    def record(self, cohort_id: int) -> dict:
        """One entry of ``/cohorts/list``."""
        k = cohort_id - FIRST_COHORT_ID
        created = datetime(self.since.year, self.since.month, self.since.day) + timedelta(
            days=k, seconds=(k * 3607 + 1333) % 86_400
        )
        return {
            "count": self.size,
            "is_visible": 0 if k % 4 == 3 else 1,
            "description": _DESCRIPTIONS[k % len(_DESCRIPTIONS)],
            "created": created.strftime("%Y-%m-%d %H:%M:%S"),
            "project_id": self.project_id,
            "id": cohort_id,
            "name": f"{_NAMES[k % len(_NAMES)]} #{k + 1}",
        }

    def records(self) -> Iterator[dict]:
        for cohort_id in self.ids():
            yield self.record(cohort_id)

    def members(self, cohort_id: int) -> CohortMembers | None:
        """The profile indexes of cohort ``cohort_id``, or ``None`` if the project has no such cohort."""
        if cohort_id not in self.ids():
            return None
        k = cohort_id - FIRST_COHORT_ID
        offset = (k * _OFFSET_STEP) % self.profiles if self.profiles else 0
        return CohortMembers(offset, self.size, self.profiles)


class CohortMembers(Sequence[int]):
    """The profile indexes of one cohort, computed on demand: ``members[a:b]`` is one page."""

    def __init__(self, offset: int, size: int, profiles: int):
        self.offset = offset
        self.size = size
        self.profiles = profiles

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> list[int]: ...

    def __getitem__(self, index: int | slice) -> int | list[int]:
        if isinstance(index, slice):
            return [(self.offset + j) % self.profiles for j in range(*index.indices(self.size))]
        if not -self.size <= index < self.size:
            raise IndexError(index)
        return (self.offset + index % self.size) % self.profiles

    def __contains__(self, profile: object) -> bool:
        if not isinstance(profile, int) or not 0 <= profile < self.profiles:
            return False
        return (profile - self.offset) % self.profiles < self.size
