"""The test server's clock: real time, sped-up time, or time a test moves by hand.

Quotas (the rolling hour, the per-second window) and late arrival read this clock, so a benchmark can
spend a simulated hour in seconds and a test can step through days deterministically::

    SimClock()                                   # the wall clock (the default)
    SimClock(datetime(2024, 3, 2), speed=3600)   # starts at 2024-03-02 00:00 UTC, 1 real s = 1 simulated h
    clock = SimClock.manual(datetime(2024, 3, 2, 0, 30))
    clock.advance(timedelta(days=1))             # a manual clock moves only when told
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime, timedelta


class SimClock:
    """Simulated time = ``start`` + real time elapsed since then x ``speed``.

    :param start: the simulated time at construction (naive datetimes are read as UTC). ``None``
        means now, so ``SimClock()`` is the wall clock.
    :param speed: simulated seconds per real second. ``0`` stops the clock: it then moves only by
        :meth:`set` and :meth:`advance` (see :meth:`manual`).
    """

    def __init__(self, start: datetime | None = None, *, speed: float = 1.0):
        if speed < 0 or not math.isfinite(speed):
            raise ValueError(f"speed must be a finite number >= 0, not {speed!r}")
        self._speed = float(speed)
        self._lock = threading.Lock()
        self._anchor_sim = time.time() if start is None else _utc(start).timestamp()
        self._anchor_real = time.monotonic()

    @classmethod
    def manual(cls, start: datetime) -> SimClock:
        """A stopped clock at ``start``, moved only by :meth:`set` and :meth:`advance`."""
        return cls(start, speed=0.0)

    @property
    def speed(self) -> float:
        return self._speed

    def time(self) -> float:
        """Simulated now, as Unix seconds."""
        with self._lock:
            return self._anchor_sim + (time.monotonic() - self._anchor_real) * self._speed

    def now(self) -> datetime:
        """Simulated now, as an aware UTC datetime."""
        return datetime.fromtimestamp(self.time(), UTC)

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (a running clock keeps running from there)."""
        with self._lock:
            self._anchor_sim = _utc(when).timestamp()
            self._anchor_real = time.monotonic()

    def advance(self, delta: timedelta | float) -> None:
        """Move forward by ``delta`` (a timedelta, or simulated seconds)."""
        seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
        with self._lock:
            self._anchor_sim += seconds

    def real_seconds(self, simulated_seconds: float) -> float:
        """How long a client must really wait for ``simulated_seconds`` to pass.

        A stopped clock never moves by itself: the simulated seconds are returned unchanged.
        """
        return simulated_seconds / self._speed if self._speed else simulated_seconds

    def __repr__(self) -> str:
        return f"SimClock({self.now().isoformat()}, speed={self._speed:g})"


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
