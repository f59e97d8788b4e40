"""Mixpanel's per-project rate limits, as the test server enforces them when ``quotas`` is set.

Two pools, each with a rolling-hour count, an optional per-second count and a concurrency cap: the
raw export API (60 per rolling hour, 3 per second, 100 at once) and the query API behind
``/engage`` (60 per rolling hour, 5 at once). A request is counted when it starts, if admitted; a
refused request is not counted. Its concurrency slot is given back when its response ends, or when
the client goes away. Windows run on the server's :class:`~.clock.SimClock`.

A refusal is a 429 with Mixpanel's body: ``{"request": "/api/2.0/export", "error": "Query rate
limit exceeded for project_id: 12345. 1/100 queries running concurrently and 61/60 queries running
in the last hour."}``. The counts include the refused request itself, as Mixpanel's do.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_mixpanel.testing.clock import SimClock

RETRY_AFTER_CHOICES = ("always", "never", "hourly-only")
HOUR = 3600.0
SECOND = 1.0
APIS = ("export", "engage")
_LIMIT_FIELDS = (
    "export_per_hour",
    "export_per_second",
    "export_concurrent",
    "query_per_hour",
    "query_per_second",
    "query_concurrent",
)


@dataclass(frozen=True)
class Quotas:
    """The limits the server enforces, per project. ``None`` turns one limit off.

    The defaults are Mixpanel's published limits (export: 60 queries per hour, 3 per second, 100
    concurrent; query API: 60 per hour, 5 concurrent).

    :param retry_after: when a 429 carries ``Retry-After``: ``"hourly-only"`` (only refusals of the
        rolling hour, the default: Mixpanel sends it on some 429s and not others), ``"always"`` or
        ``"never"``. The value is in **real** seconds: the simulated wait divided by the clock's
        speed, rounded up, at least 1.
    """

    export_per_hour: int | None = 60
    export_per_second: int | None = 3
    export_concurrent: int | None = 100
    query_per_hour: int | None = 60
    query_per_second: int | None = None
    query_concurrent: int | None = 5
    retry_after: str = "hourly-only"

    def __post_init__(self) -> None:
        if self.retry_after not in RETRY_AFTER_CHOICES:
            raise ValueError(f"retry_after must be one of {', '.join(RETRY_AFTER_CHOICES)}, not {self.retry_after!r}")
        for name in _LIMIT_FIELDS:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (or None for no limit), not {value!r}")

    def limits(self, api: str) -> tuple[int | None, int | None, int | None]:
        """(per hour, per second, concurrent) of ``export`` or ``engage``."""
        if api == "export":
            return self.export_per_hour, self.export_per_second, self.export_concurrent
        return self.query_per_hour, self.query_per_second, self.query_concurrent


@dataclass
class QuotaStats:
    """Counters of one API's pool, as :meth:`MixpanelTestServer.quota_stats` returns them."""

    admitted: int = 0
    refused_hourly: int = 0
    refused_per_second: int = 0
    refused_concurrent: int = 0
    running: int = 0
    peak_running: int = 0
    in_last_hour: int = 0

    @property
    def refused(self) -> int:
        return self.refused_hourly + self.refused_per_second + self.refused_concurrent


@dataclass(frozen=True)
class Refusal:
    """A request the quota refused: the limit it broke, the 429 body and the ``Retry-After``."""

    limit: str  # "hourly" | "per-second" | "concurrent"
    body: dict[str, str]
    retry_after: str | None

    @property
    def fault(self) -> str:
        """What :class:`RecordedRequest` records: ``quota:hourly``, ``quota:per-second``, ``quota:concurrent``."""
        return f"quota:{self.limit}"


@dataclass
class _Pool:
    hour: deque[float] = field(default_factory=deque)
    second: deque[float] = field(default_factory=deque)
    stats: QuotaStats = field(default_factory=QuotaStats)


class QuotaKeeper:
    """Admits or refuses requests against :class:`Quotas` on ``clock``; thread-safe.

    Memory is flat: a window holds at most its limit's number of timestamps.
    """

    def __init__(self, quotas: Quotas, clock: SimClock, project_id: int):
        self.quotas = quotas
        self.clock = clock
        self.project_id = project_id
        self._lock = threading.Lock()
        self._pools = {api: _Pool() for api in APIS}

    def admit(self, api: str, path: str) -> Refusal | None:
        """Count a request to ``api`` starting now, or say why it is refused.

        An admitted request holds a concurrency slot until :meth:`release`.
        """
        per_hour, per_second, concurrent = self.quotas.limits(api)
        with self._lock:
            now = self.clock.time()
            pool = self._pools[api]
            _expire(pool.hour, now - HOUR)
            _expire(pool.second, now - SECOND)
            stats = pool.stats
            if per_hour is not None and len(pool.hour) >= per_hour:
                wait = pool.hour[0] + HOUR - now
                stats.refused_hourly += 1
                text = self._text(stats.running, concurrent, counted=len(pool.hour), limit=per_hour, window="hour")
                return self._refuse("hourly", path, text, wait)
            if per_second is not None and len(pool.second) >= per_second:
                wait = pool.second[0] + SECOND - now
                stats.refused_per_second += 1
                text = self._text(
                    stats.running, concurrent, counted=len(pool.second), limit=per_second, window="second"
                )
                return self._refuse("per-second", path, text, wait)
            if concurrent is not None and stats.running >= concurrent:
                stats.refused_concurrent += 1
                text = self._text(stats.running, concurrent, counted=len(pool.hour), limit=per_hour, window="hour")
                return self._refuse("concurrent", path, text, SECOND)
            if per_hour is not None:
                pool.hour.append(now)
            if per_second is not None:
                pool.second.append(now)
            stats.admitted += 1
            stats.running += 1
            stats.peak_running = max(stats.peak_running, stats.running)
        return None

    def release(self, api: str) -> None:
        """The response of an admitted request ended (completely, or the client went away)."""
        with self._lock:
            self._pools[api].stats.running -= 1

    def stats(self) -> dict[str, QuotaStats]:
        """A snapshot of each pool's counters (``in_last_hour`` as of now)."""
        with self._lock:
            now = self.clock.time()
            snapshot = {}
            for api, pool in self._pools.items():
                _expire(pool.hour, now - HOUR)
                snapshot[api] = replace(pool.stats, in_last_hour=len(pool.hour))
            return snapshot

    def reset(self) -> None:
        """Forget every counted request and counter (requests still running keep their slots)."""
        with self._lock:
            for pool in self._pools.values():
                running = pool.stats.running
                pool.hour.clear()
                pool.second.clear()
                pool.stats = QuotaStats(running=running, peak_running=running)

    # ------------------------------------------------------------------ helpers

    def _text(self, running: int, concurrent: int | None, *, counted: int, limit: int | None, window: str) -> str:
        """Mixpanel's wording; the counts include the refused request, as in ``61/60``."""
        clauses = []
        if concurrent is not None:
            clauses.append(f"{running + 1}/{concurrent} queries running concurrently")
        if limit is not None:
            clauses.append(f"{counted + 1}/{limit} queries running in the last {window}")
        return f"Query rate limit exceeded for project_id: {self.project_id}. {' and '.join(clauses)}."

    def _refuse(self, limit: str, path: str, text: str, simulated_wait: float) -> Refusal:
        policy = self.quotas.retry_after
        send = policy == "always" or (policy == "hourly-only" and limit == "hourly")
        retry_after = None
        if send:
            real = self.clock.real_seconds(max(simulated_wait, 0.0))
            retry_after = str(max(1, math.ceil(real)))
        return Refusal(limit, {"request": path, "error": text}, retry_after)


def _expire(window: deque[float], before: float) -> None:
    while window and window[0] <= before:
        window.popleft()
