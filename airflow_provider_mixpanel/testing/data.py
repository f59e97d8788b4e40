"""Deterministic synthetic Mixpanel data: export lines and engage profiles of any size.

Lines are rendered from pre-built byte templates so the server can produce hundreds of thousands of
events per second; the same (day, index) always gives the same bytes. The properties deliberately
include non-ASCII text, a U+2028 inside a string (a line splitter that breaks there corrupts the
record), nested objects, lists and numbers.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from airflow_provider_mixpanel.testing.identity import Visitors

if TYPE_CHECKING:
    from airflow_provider_mixpanel.testing.identity import IdentityMerge, Who
    from airflow_provider_mixpanel.testing.lateness import LateArrival

EVENT_NAMES = ("Page View", "Sign Up", "Purchase", "Add To Cart", "Search")
CITIES = ("São Paulo", "Zürich", "東京", "Kraków", "New York", "Montréal", "İstanbul", "Lagos")
PLANS = ("free", "pro", "enterprise")

_SENTINEL_TIME = 1_111_111_111
_SENTINEL_ID = "@@ID@@"
_SENTINEL_INSERT = "@@INSERT@@"
_SENTINEL_PROCESSED = 2_222_222_222_222
_SENTINEL_AMOUNT = 333.25
_SENTINEL_DEVICE = "@@DEVICE@@"
_SENTINEL_SESSION = "@@SESSION@@"
_SENTINEL_PRODUCT = 444_444_444
_SENTINEL_USER_ID = "@@USER_ID@@"
# Without late arrival every event is processed this long after its event time.
_ON_TIME_LAG_MS = 1500
_NEVER = 1 << 62  # a processing-time horizon no event reaches


def _event_template(name: str, city: str, plan: str, *, ascii_escape: bool, identified: bool = False) -> bytes:
    """A printf-style bytes template for one event; the sentinels become named slots. An
    ``identified`` event also carries ``$user_id`` (Simplified ID Merge)."""
    properties = {
        "$insert_id": _SENTINEL_INSERT,
        "mp_processing_time_ms": _SENTINEL_PROCESSED,
        "$device_id": _SENTINEL_DEVICE,
        "session_id": _SENTINEL_SESSION,
        "$browser": "Chrome",
        "$browser_version": 131,
        "$city": city,
        "$region": "Región Metropolitana",
        "mp_country_code": "BR",
        "$current_url": f"https://shop.example.com/products/{_SENTINEL_PRODUCT}?utm_source=newsletter&utm_medium=email",
        "$initial_referrer": "$direct",
        "$os": "Mac OS X",
        "$screen_height": 1117,
        "$screen_width": 1728,
        "mp_lib": "web",
        "$lib_version": "2.55.1",
        "plan": plan,
        "amount": _SENTINEL_AMOUNT,
        "is_trial": plan == "free",
        "coupon": None,
        "title": "Summer sale – 20% off\u2028second line",
        "items": [{"sku": "SKU-1", "qty": 2, "price": 19.99}, {"sku": "SKU-7", "qty": 1, "price": 5.0}],
        "experiment": {"id": "exp-checkout-v2", "variant": "B", "weights": [0.5, 0.5]},
        "tags": ["returning", "mobile-web", "näive"],
    }
    if identified:
        properties["$user_id"] = _SENTINEL_USER_ID
    # Mixpanel's export writes "time" and "distinct_id" first, then the other properties sorted by
    # name, so "$insert_id" stands among the "$" properties, after "$browser", "$city"...
    record = {
        "event": name,
        "properties": {"time": _SENTINEL_TIME, "distinct_id": _SENTINEL_ID, **dict(sorted(properties.items()))},
    }
    text = json.dumps(record, ensure_ascii=ascii_escape, separators=(",", ":"))
    text = text.replace("%", "%%")
    text = text.replace(str(_SENTINEL_TIME), "%(time)d", 1)
    text = text.replace(f'"{_SENTINEL_ID}"', '"%(user)s"', 1)
    text = text.replace(f'"{_SENTINEL_INSERT}"', '"%(insert_id)s"', 1)
    text = text.replace(str(_SENTINEL_PROCESSED), "%(processed)d", 1)
    text = text.replace(f'"{_SENTINEL_DEVICE}"', '"%(device)s"', 1)
    text = text.replace(f'"{_SENTINEL_SESSION}"', '"%(session)s"', 1)
    text = text.replace(str(_SENTINEL_PRODUCT), "%(product)d", 1)
    text = text.replace(f'"{_SENTINEL_USER_ID}"', '"%(user_id)s"', 1)
    text = text.replace(str(_SENTINEL_AMOUNT), "%(whole)d.%(cents)02d", 1)
    return (text + "\n").encode("utf-8")


class SyntheticEvents:
    """Deterministic export lines: ``events_per_day`` events each UTC day, spread over the day.

    Event ``i`` of a day has event time ``day start + i * (86,400,000 // events_per_day)`` ms
    (``time`` in whole seconds unless ``time_in_ms``), so events are in time order and never leave
    their day.

    :param events_per_day: how many events each day holds.
    :param ascii_escape: write non-ASCII as ``\\uXXXX`` escapes instead of raw UTF-8.
    :param late_arrival: when each event is processed; ``None`` processes every event 1.5 s after
        its event time and never hides one.
    :param identity: visitors who identify (Simplified ID Merge, :mod:`.identity`); ``None``: each
        event's ``distinct_id`` is ``user-<n>`` and no event carries ``$user_id``.
    """

    def __init__(
        self,
        events_per_day: int = 100,
        *,
        ascii_escape: bool = False,
        late_arrival: LateArrival | None = None,
        identity: IdentityMerge | None = None,
    ):
        self.events_per_day = events_per_day
        self.late_arrival = late_arrival
        self._templates = [
            (name, _event_template(name, CITIES[i % len(CITIES)], PLANS[i % len(PLANS)], ascii_escape=ascii_escape))
            for i, name in enumerate(EVENT_NAMES)
        ]
        self._identified_templates = [
            _event_template(
                name, CITIES[i % len(CITIES)], PLANS[i % len(PLANS)], ascii_escape=ascii_escape, identified=True
            )
            for i, name in enumerate(EVENT_NAMES)
        ]
        self.visitors = Visitors(identity, events_per_day, self._lag_ms) if identity is not None else None

    def _lag_ms(self, ordinal: int, index: int) -> int:
        """How long after its event time event ``index`` of a day is processed."""
        late = self.late_arrival
        return late.lag_ms(ordinal, index) if late is not None else _ON_TIME_LAG_MS

    def day_lines(
        self,
        day: date,
        *,
        names: frozenset[str] | None = None,
        time_in_ms: bool = False,
        since: int | None = None,
        until: int | None = None,
        visible_at_ms: int | None = None,
        resolve: Callable[[Who], str] | None = None,
    ) -> Iterator[bytes]:
        """The lines of one day, each ending in ``\\n``.

        :param names: only these event names.
        :param since: only events whose ``time`` (Unix seconds) is >= this.
        :param until: only events whose ``time`` (Unix seconds) is < this.
        :param visible_at_ms: only events processed at or before this Unix time in ms (with
            ``late_arrival``; without it every event is visible).
        :param resolve: with ``identity``: each event's ``distinct_id`` (e.g.
            :meth:`.identity.Visitors.resolved_at` the request's time).
        """
        n = self.events_per_day
        start = _day_start(day)
        first, stop = self.index_range(day, since=since, until=until)
        late = self.late_arrival
        if first >= stop or (late is not None and visible_at_ms is not None and visible_at_ms < start * 1000):
            return
        ordinal = day.toordinal()
        templates = self._templates
        count = len(templates)
        step = 86_400_000 // n  # milliseconds between events
        start_ms = start * 1000
        lags = late.lags_ms(ordinal, first, stop) if late is not None else itertools.repeat(_ON_TIME_LAG_MS)
        horizon = visible_at_ms if late is not None and visible_at_ms is not None else _NEVER
        visitors = self.visitors
        identified = self._identified_templates
        for i, lag in zip(range(first, stop), lags, strict=False):
            name, template = templates[i % count]
            if names is not None and name not in names:
                continue
            event_ms = start_ms + i * step
            processed_ms = event_ms + lag
            if processed_ms > horizon:
                continue
            user = (i * 7919 + ordinal) % 50_000
            distinct_id = b"user-%d" % user
            device = b"%016x" % ((user * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
            user_id = b""
            if visitors is not None and resolve is not None:
                who = visitors.who(ordinal, i, event_ms)
                distinct_id, device = resolve(who).encode(), who.device_id.encode()
                if who.user_id is not None:
                    template, user_id = identified[i % count], who.user_id.encode()
            yield template % {
                b"time": event_ms if time_in_ms else event_ms // 1000,
                b"user": distinct_id,
                b"user_id": user_id,
                b"insert_id": b"%07d-%08d" % (ordinal, i),
                b"processed": processed_ms,
                b"device": device,
                b"session": b"%016x" % (((i // 7) * 0xC2B2AE3D27D4EB4F + ordinal) & 0xFFFFFFFFFFFFFFFF),
                b"product": (i * 2654435761) % 100_000,
                b"whole": i % 1000,
                b"cents": i % 100,
            }

    def index_range(self, day: date, *, since: int | None = None, until: int | None = None) -> tuple[int, int]:
        """The indexes ``[first, stop)`` of the day's events whose ``time`` is in ``[since, until)``.

        Index arithmetic, no scan: event ``i``'s ``time`` is ``start + (i * step) // 1000``.
        """
        n = self.events_per_day
        if n <= 0:
            return 0, 0
        start = _day_start(day)
        step = 86_400_000 // n
        if step == 0:  # more events than milliseconds in a day: all of them at the day's start
            inside = (since is None or since <= start) and (until is None or start < until)
            return (0, n) if inside else (0, 0)
        first = 0 if since is None else min(n, max(0, -(-(since - start) * 1000 // step)))
        stop = n if until is None else min(n, max(0, -(-(until - start) * 1000 // step)))
        return first, max(first, stop)

    def day_count(self, *, names: frozenset[str] | None = None) -> int:
        """How many events one day holds (with the optional event-name filter)."""
        if names is None:
            return self.events_per_day
        count = len(self._templates)
        return sum(1 for i in range(self.events_per_day) if self._templates[i % count][0] in names)

    def visible_count(self, day: date, visible_at_ms: int | None, *, names: frozenset[str] | None = None) -> int:
        """How many of the day's events are processed by ``visible_at_ms`` (``None``: all of them)."""
        late = self.late_arrival
        if late is None or visible_at_ms is None:
            return self.day_count(names=names)
        start_ms = _day_start(day) * 1000
        if visible_at_ms >= start_ms + 86_400_000 + late.max_lag_ms and names is None:
            return self.events_per_day
        step = 86_400_000 // max(1, self.events_per_day)
        templates = self._templates
        count = len(templates)
        lags = late.lags_ms(day.toordinal(), 0, self.events_per_day)
        return sum(
            1
            for i, lag in enumerate(lags)
            if start_ms + i * step + lag <= visible_at_ms and (names is None or templates[i % count][0] in names)
        )

    def insert_ids(self, day: date, *, names: frozenset[str] | None = None) -> Iterator[str]:
        """The ``$insert_id`` of every event the day finally holds, in order."""
        ordinal = day.toordinal()
        count = len(self._templates)
        for i in range(self.events_per_day):
            if names is None or self._templates[i % count][0] in names:
                yield f"{ordinal:07d}-{i:08d}"


def _day_start(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def synthetic_profile(index: int, *, group: bool = False) -> dict:
    """One deterministic engage result."""
    city = CITIES[index % len(CITIES)]
    if group:
        return {
            "$distinct_id": f"company-{index}",
            "$properties": {"$name": f"Company {index}", "$city": city, "employees": 10 + index % 500},
        }
    return {
        "$distinct_id": f"user-{index}",
        "$properties": {
            "$last_seen": f"2024-01-{1 + index % 28:02d}T10:{index % 60:02d}:00",
            "$name": f"Üser {index}",
            "$email": f"user{index}@example.com",
            "$city": city,
            "plan": PLANS[index % len(PLANS)],
            "lifetime_value": round(index * 1.25, 2),
            "tags": ["beta"] if index % 5 == 0 else [],
        },
    }


_M64 = 0xFFFFFFFFFFFFFFFF


def mix64(*parts: int) -> int:
    """A deterministic 64-bit hash of some integers (splitmix64's finaliser, chained): the same
    parts always give the same number, so synthetic metadata is never stored, only computed."""
    state = 0x9E3779B97F4A7C15
    for part in parts:
        state = (state ^ (part & _M64)) * 0xBF58476D1CE4E5B9 & _M64
        state = (state ^ (state >> 31)) * 0x94D049BB133111EB & _M64
        state ^= state >> 29
    return state
