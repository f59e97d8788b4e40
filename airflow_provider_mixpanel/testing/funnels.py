"""Synthetic saved funnels and their step results, computed per funnel and date bucket.

``GET /api/query/funnels/list`` answers ``[{"funnel_id": 7500, "name": ...}, ...]``; ``GET
/api/query/funnels?funnel_id=&from_date=&to_date=`` answers ``{"meta": {"dates": [...]}, "data":
{date: {"steps": [...], "analysis": {...}}}}``, in the shapes of Mixpanel's example
(``openapi/query.openapi.yaml``, ``/funnels`` and ``/funnels/list``).

Funnel ``k`` has ``2 + k % 3`` steps over the synthetic events; in every third funnel (``k % 3 ==
1``) the second step is a custom event (``goal`` ``$custom_event:<id>``, ``step_label``,
``custom_event``, ``custom_event_id``, as in Mixpanel's example). Counts are a deterministic hash
of (funnel, bucket start, bucket length): the same question always gets the same answer. Step 0's
``avg_time`` is ``null`` in even funnels (the schema says "null for step 0") and a number in odd
ones (Mixpanel's example has one), so readers meet both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from airflow_provider_mixpanel.testing.data import EVENT_NAMES, mix64

FIRST_FUNNEL_ID = 7500
FIRST_CUSTOM_EVENT_ID = 12_000
UNITS = ("day", "week", "month")
_NAMES = ("Signup funnel", "Checkout – Zürich store", "Search → purchase", "Onboarding (mobile)")


@dataclass(frozen=True)
class Bucket:
    """One date bucket of a funnel query: its first day and how many days it holds."""

    start: date
    days: int


def buckets(first: date, last: date, *, unit: str | None, interval: int) -> list[Bucket]:
    """The buckets of ``[first, last]``: ``interval`` days each, or calendar weeks / months by ``unit``
    (the first bucket starts at ``first``, the last one ends at ``last``)."""
    result: list[Bucket] = []
    day = first
    while day <= last:
        if unit == "month":
            following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        elif unit == "week":
            following = day + timedelta(days=7 - day.weekday())  # the next Monday
        else:  # "day", or no unit: interval days
            following = day + timedelta(days=(1 if unit == "day" else interval))
        end = min(following, last + timedelta(days=1))
        result.append(Bucket(day, (end - day).days))
        day = end
    return result


@dataclass(frozen=True)
class SyntheticFunnels:
    """The project's saved funnels.

    :param count: how many saved funnels the project has.
    """

    count: int

    def ids(self) -> range:
        return range(FIRST_FUNNEL_ID, FIRST_FUNNEL_ID + self.count)

    def saved(self) -> Iterator[dict]:
        """The entries of ``/funnels/list``."""
        for funnel_id in self.ids():
            k = funnel_id - FIRST_FUNNEL_ID
            yield {"funnel_id": funnel_id, "name": f"{_NAMES[k % len(_NAMES)]} #{k + 1}"}

    def result(self, funnel_id: int, bucket: Bucket) -> dict:
        """``data[<bucket start>]`` of ``/funnels``: the steps and the analysis of one bucket."""
        k = funnel_id - FIRST_FUNNEL_ID
        step_count = 2 + k % 3
        seed = mix64(funnel_id, bucket.start.toordinal(), bucket.days)
        counts = [bucket.days * (500 + seed % 4500)]
        for step in range(1, step_count):
            ratio_percent = 35 + mix64(seed, step) % 60  # 35% to 94% of the step before get through
            counts.append(counts[-1] * ratio_percent // 100)
        steps = []
        for step, count in enumerate(counts):
            previous = counts[step - 1] if step else count
            event = EVENT_NAMES[(k + step) % len(EVENT_NAMES)]
            timing = mix64(seed, step, 7) % 600
            entry: dict = {
                "count": count,
                "avg_time": None if step == 0 and k % 2 == 0 else timing,
                "avg_time_from_start": timing * step if step else (None if k % 2 == 0 else timing),
                "step_conv_ratio": count / previous if previous else 0,
                "goal": event,
            }
            if step == 1 and k % 3 == 1:
                custom_id = FIRST_CUSTOM_EVENT_ID + k
                entry["goal"] = f"$custom_event:{custom_id}"
                entry["step_label"] = f"{event} (custom)"
                entry["custom_event"] = True
                entry["custom_event_id"] = custom_id
            entry["overall_conv_ratio"] = count / counts[0] if counts[0] else 0
            entry["event"] = entry["goal"]
            steps.append(entry)
        drops = [counts[i] / counts[i - 1] if counts[i - 1] else 1.0 for i in range(1, step_count)]
        worst = 1 + drops.index(min(drops))
        return {
            "steps": steps,
            "analysis": {"completion": counts[-1], "starting_amount": counts[0], "steps": step_count, "worst": worst},
        }
