"""Simplified ID Merge for the synthetic events: visitors who browse anonymously and later identify.

Off by default (the synthetic events then carry no ``$user_id``, as before). With an
:class:`IdentityMerge`, every event belongs to a visitor, and the export answers each event's
distinct id as Mixpanel's does, resolved at the time of the request (the server's clock):

- a visitor arrives on a day (``new_visitors_per_day`` each day from ``start``) and uses one
  device, or two or three (``multi_device_share``); the visitor of event ``i`` of a day is drawn
  by integer hashing among the visitors who have arrived by then;
- a share of the visitors (``identify_share``) logs in, days or weeks after arriving (up to
  ``max_identify_delay_days``), each further device one day later: from that moment on the
  device's events carry ``$user_id`` (``u<visitor>``); the others never log in;
- the first event of a device that carries both ids maps the device to the user (Simplified ID
  Merge): from the moment Mixpanel has processed it, every event of that device, earlier ones
  included, is exported with the user id as ``distinct_id``; before, an anonymous event is
  exported with ``$device:<$device_id>``.

So a day exported before a login and exported again after it differ exactly as Mixpanel's do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import NamedTuple

_M64 = 0xFFFFFFFFFFFFFFFF
_U32 = 1 << 32
_MIX = 0x94D049BB133111EB
_SALTS = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0xD6E8FEB86659FD93, 0xA0761D6478BD642F)
_MS_PER_DAY = 86_400_000
DEVICE_PREFIX = "$device:"


def _hash(*values: int) -> int:
    """A 64-bit integer hash of some integers (splitmix64's finalizer over a salted sum)."""
    h = 0
    for salt, value in zip(_SALTS, values, strict=False):
        h = (h + value * salt) & _M64
    h = ((h ^ (h >> 31)) * _MIX) & _M64
    return h ^ (h >> 29)


@dataclass(frozen=True)
class IdentityMerge:
    """How the synthetic visitors identify (see the module's docstring).

    :param start: the day the first visitors arrive; earlier days hold the first day's visitors.
    :param new_visitors_per_day: visitors arriving each day.
    :param identify_share: the share of visitors who ever log in (0 to 1).
    :param multi_device_share: the share of visitors on two or three devices (0 to 1).
    :param max_identify_delay_days: a visitor logs in 0 to this many days after arriving.
    """

    start: date = date(2024, 3, 1)
    new_visitors_per_day: int = 20
    identify_share: float = 0.6
    multi_device_share: float = 0.3
    max_identify_delay_days: int = 21

    def __post_init__(self) -> None:
        if self.new_visitors_per_day < 1:
            raise ValueError(f"new_visitors_per_day must be at least 1, not {self.new_visitors_per_day!r}")
        for name in ("identify_share", "multi_device_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be from 0 to 1, not {getattr(self, name)!r}")
        if self.max_identify_delay_days < 0:
            raise ValueError(f"max_identify_delay_days must be >= 0, not {self.max_identify_delay_days!r}")


class Who(NamedTuple):
    """Whose event this is."""

    visitor: int
    device: int
    device_id: str
    #: ``None`` while the device is anonymous
    user_id: str | None


class Visitors:
    """The visitors of one :class:`IdentityMerge`, and the merges found so far.

    Whether a device is merged by some moment needs its mapping event: the first of its events
    at or after its login. Days are scanned once, in order, from ``start``, as far as a question
    needs (``events_per_day`` hash computations a day), so the server never stores events.
    """

    def __init__(self, config: IdentityMerge, events_per_day: int, lag_ms: Callable[[int, int], int]):
        self.config = config
        self.events_per_day = events_per_day
        self._lag_ms = lag_ms  # (ordinal, index) -> processing lag in ms
        self._start_ordinal = config.start.toordinal()
        self._merged_at: dict[tuple[int, int], int] = {}  # (visitor, device) -> processed at (Unix ms)
        self._mapped_at: dict[tuple[int, int], int] = {}  # (visitor, device) -> mapping event time (Unix ms)
        self._scanned_through = self._start_ordinal - 1
        self._lock = threading.Lock()

    # ------------------------------------------------------------ the visitors

    def who(self, ordinal: int, index: int, event_ms: int) -> Who:
        """The visitor, device and ids of event ``index`` of the day ``ordinal``."""
        config = self.config
        arrived = config.new_visitors_per_day * max(1, ordinal - self._start_ordinal + 1)
        visitor = _hash(ordinal, index, 1) % arrived
        device = _hash(ordinal, index, 2) % self.devices(visitor)
        device_id = f"{_hash(visitor, device, 3):016x}"
        login = self.login_ms(visitor, device)
        user_id = f"u{visitor}" if login is not None and event_ms >= login else None
        return Who(visitor, device, device_id, user_id)

    def devices(self, visitor: int) -> int:
        if _hash(visitor, 4) % _U32 >= self.config.multi_device_share * _U32:
            return 1
        return 2 + _hash(visitor, 5) % 2

    def login_ms(self, visitor: int, device: int) -> int | None:
        """When the visitor logs in on this device (Unix ms), ``None`` if never."""
        config = self.config
        if _hash(visitor, 6) % _U32 >= config.identify_share * _U32:
            return None
        arrival = self._start_ordinal + visitor // config.new_visitors_per_day
        delay = _hash(visitor, 7) % (config.max_identify_delay_days + 1)
        day = date.fromordinal(arrival + delay + device)
        return _day_ms(day) + _hash(visitor, device, 8) % _MS_PER_DAY

    # ------------------------------------------------------------ the merges

    def resolved_at(self, at_ms: int) -> Callable[[Who], str]:
        """The distinct id of an event as an export sent at ``at_ms`` answers it: the user id
        once Mixpanel has processed the device's mapping event, else ``$device:<id>``."""
        self.scan_through(at_ms)
        merged_at = self._merged_at

        def distinct_id(who: Who) -> str:
            if who.user_id is not None:
                return who.user_id
            merged = merged_at.get((who.visitor, who.device))
            if merged is not None and merged <= at_ms:
                return f"u{who.visitor}"
            return DEVICE_PREFIX + who.device_id

        return distinct_id

    def mapped_before(self, before_ms: int) -> Callable[[Who], str]:
        """The distinct id of an event resolved by the mapping events that happened (event
        time) before ``before_ms``, processed or not: what the exported days up to then can tell."""
        self.scan_through(before_ms)
        mapped_at = self._mapped_at

        def distinct_id(who: Who) -> str:
            if who.user_id is not None:
                return who.user_id
            mapped = mapped_at.get((who.visitor, who.device))
            if mapped is not None and mapped < before_ms:
                return f"u{who.visitor}"
            return DEVICE_PREFIX + who.device_id

        return distinct_id

    def scan_through(self, at_ms: int) -> None:
        """Find the mapping events up to the day of ``at_ms`` (Unix ms)."""
        ordinal = datetime.fromtimestamp(at_ms // 1000, UTC).date().toordinal()
        with self._lock:
            while self._scanned_through < ordinal:
                self._scanned_through += 1
                self._scan_day(self._scanned_through)

    def _scan_day(self, ordinal: int) -> None:
        n = self.events_per_day
        if n <= 0:
            return
        start_ms = _day_ms(date.fromordinal(ordinal))
        step = _MS_PER_DAY // n
        lag_ms = self._lag_ms
        for index in range(n):
            event_ms = start_ms + index * step
            who = self.who(ordinal, index, event_ms)
            key = (who.visitor, who.device)
            if who.user_id is not None and key not in self._mapped_at:
                self._mapped_at[key] = event_ms
                self._merged_at[key] = event_ms + lag_ms(ordinal, index)


def _day_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000


__all__ = ["IdentityMerge", "Visitors", "Who"]
