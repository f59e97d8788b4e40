"""Mixpanel's per-project rate limits, as the test server enforces them when ``quotas`` is set.

Four pools, each with rolling windows (an hour, a minute, a second) and a concurrency cap: the raw
export API (60 per rolling hour, 3 per second, 100 at once), the query API behind ``/engage``,
``/cohorts/list`` and ``/funnels`` (60 per rolling hour, 5 at once), the Lexicon Schemas API (5
per minute) and the rest of the app API (``/annotations``: Mixpanel publishes no limit, so none by
default). A request is counted when it starts, if admitted; a refused request is not counted. Its
concurrency slot is given back when its response ends, or when the client goes away. Windows run on
the server's :class:`~.clock.SimClock`.

A refusal is a 429 with Mixpanel's body: ``{"request": "/api/2.0/export", "error": "Query rate
limit exceeded for project_id: 12345. 1/100 queries running concurrently and 61/60 queries running
in the last hour."}``. The counts include the refused request itself, as Mixpanel's do. The app API
(Lexicon, annotations) answers its errors as ``{"error": ..., "status": "error"}``, and so do its
429s here.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from airflow_provider_mixpanel.testing.clock import SimClock

RETRY_AFTER_CHOICES = ("always", "never", "hourly-only")
HOUR = 3600.0
MINUTE = 60.0
SECOND = 1.0
#: The quota pools: which endpoints share one is in :mod:`.routes`.
POOLS = ("export", "query", "lexicon", "app")
#: The query pool's name before cohorts and funnels shared it: ``quota_stats()["engage"]`` still works.
ENGAGE_ALIAS = "engage"
_LIMIT_FIELDS = (
    "export_per_hour",
    "export_per_second",
    "export_concurrent",
    "query_per_hour",
    "query_per_second",
    "query_concurrent",
    "lexicon_per_minute",
    "app_per_minute",
    "app_concurrent",
)


class PoolLimits(NamedTuple):
    """One pool's limits; ``None`` is no limit."""

    per_hour: int | None = None
    per_minute: int | None = None
    per_second: int | None = None
    concurrent: int | None = None


@dataclass(frozen=True)
class Quotas:
    """The limits the server enforces, per project. ``None`` turns one limit off.

    The defaults are Mixpanel's published limits (docs ``reference/rate-limits.mdx``; export: 60
    queries per hour, 3 per second, 100 concurrent; query API: 60 per hour, 5 concurrent; Lexicon
    Schemas API: 5 requests per minute). Mixpanel publishes none for the rest of the app API
    (annotations): ``app_per_minute`` / ``app_concurrent`` set one to test a client against it.

    :param retry_after: when a 429 carries ``Retry-After``: ``"hourly-only"`` (only refusals of a
        rolling hour or minute, the default: Mixpanel sends it on some 429s and not others),
        ``"always"`` or ``"never"``. The value is in **real** seconds: the simulated wait divided
        by the clock's speed, rounded up, at least 1.
    """

    export_per_hour: int | None = 60
    export_per_second: int | None = 3
    export_concurrent: int | None = 100
    query_per_hour: int | None = 60
    query_per_second: int | None = None
    query_concurrent: int | None = 5
    lexicon_per_minute: int | None = 5
    app_per_minute: int | None = None
    app_concurrent: int | None = None
    retry_after: str = "hourly-only"

    def __post_init__(self) -> None:
        if self.retry_after not in RETRY_AFTER_CHOICES:
            raise ValueError(f"retry_after must be one of {', '.join(RETRY_AFTER_CHOICES)}, not {self.retry_after!r}")
        for name in _LIMIT_FIELDS:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (or None for no limit), not {value!r}")

    def limits(self, pool: str) -> PoolLimits:
        """The limits of one of :data:`POOLS` (``engage`` is the query pool)."""
        if pool == "export":
            return PoolLimits(self.export_per_hour, None, self.export_per_second, self.export_concurrent)
        if pool in ("query", ENGAGE_ALIAS):
            return PoolLimits(self.query_per_hour, None, self.query_per_second, self.query_concurrent)
        if pool == "lexicon":
            return PoolLimits(per_minute=self.lexicon_per_minute)
        if pool == "app":
            return PoolLimits(per_minute=self.app_per_minute, concurrent=self.app_concurrent)
        raise ValueError(f"Unknown quota pool {pool!r}: use one of {', '.join(POOLS)}")


@dataclass
class QuotaStats:
    """Counters of one API's pool, as :meth:`MixpanelTestServer.quota_stats` returns them."""

    admitted: int = 0
    refused_hourly: int = 0
    refused_per_minute: int = 0
    refused_per_second: int = 0
    refused_concurrent: int = 0
    running: int = 0
    peak_running: int = 0
    in_last_hour: int = 0

    @property
    def refused(self) -> int:
        return self.refused_hourly + self.refused_per_minute + self.refused_per_second + self.refused_concurrent


@dataclass(frozen=True)
class Refusal:
    """A request the quota refused: the limit it broke, the 429 body and the ``Retry-After``."""

    limit: str  # "hourly" | "per-minute" | "per-second" | "concurrent"
    body: dict[str, str]
    retry_after: str | None

    @property
    def fault(self) -> str:
        """What :class:`RecordedRequest` records: ``quota:hourly``, ``quota:per-minute``,
        ``quota:per-second``, ``quota:concurrent``."""
        return f"quota:{self.limit}"


@dataclass
class _Pool:
    hour: deque[float] = field(default_factory=deque)
    minute: deque[float] = field(default_factory=deque)
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
        self._pools = {pool: _Pool() for pool in POOLS}

    def admit(self, pool_name: str, path: str) -> Refusal | None:
        """Count a request to pool ``pool_name`` starting now, or say why it is refused.

        An admitted request holds a concurrency slot until :meth:`release`.
        """
        limits = self.quotas.limits(pool_name)
        app_api = pool_name in _APP_POOLS
        with self._lock:
            now = self.clock.time()
            pool = self._pools[_pool_name(pool_name)]
            stats = pool.stats
            windows = (
                ("hourly", pool.hour, HOUR, limits.per_hour, "hour"),
                ("per-minute", pool.minute, MINUTE, limits.per_minute, "minute"),
                ("per-second", pool.second, SECOND, limits.per_second, "second"),
            )
            for label, window, seconds, limit, unit in windows:
                _expire(window, now - seconds)
                if limit is not None and len(window) >= limit:
                    counter = "refused_" + label.replace("-", "_")  # refused_hourly, refused_per_minute...
                    setattr(stats, counter, getattr(stats, counter) + 1)
                    text = self._text(
                        stats.running, limits.concurrent, counted=len(window), limit=limit, window=unit, app_api=app_api
                    )
                    return self._refuse(label, path, text, window[0] + seconds - now, app_api=app_api)
            if limits.concurrent is not None and stats.running >= limits.concurrent:
                stats.refused_concurrent += 1
                counted, limit, unit = _widest(pool, limits)
                text = self._text(
                    stats.running, limits.concurrent, counted=counted, limit=limit, window=unit, app_api=app_api
                )
                return self._refuse("concurrent", path, text, SECOND, app_api=app_api)
            for _, window, _, limit, _ in windows:
                if limit is not None:
                    window.append(now)
            stats.admitted += 1
            stats.running += 1
            stats.peak_running = max(stats.peak_running, stats.running)
        return None

    def release(self, pool_name: str) -> None:
        """The response of an admitted request ended (completely, or the client went away)."""
        with self._lock:
            self._pools[_pool_name(pool_name)].stats.running -= 1

    def stats(self) -> dict[str, QuotaStats]:
        """A snapshot of each pool's counters (``in_last_hour`` as of now); ``engage`` is ``query``."""
        with self._lock:
            now = self.clock.time()
            snapshot = {}
            for name, pool in self._pools.items():
                _expire(pool.hour, now - HOUR)
                snapshot[name] = replace(pool.stats, in_last_hour=len(pool.hour))
            snapshot[ENGAGE_ALIAS] = snapshot["query"]
            return snapshot

    def reset(self) -> None:
        """Forget every counted request and counter (requests still running keep their slots)."""
        with self._lock:
            for pool in self._pools.values():
                running = pool.stats.running
                pool.hour.clear()
                pool.minute.clear()
                pool.second.clear()
                pool.stats = QuotaStats(running=running, peak_running=running)

    # ------------------------------------------------------------------ helpers

    def _text(
        self, running: int, concurrent: int | None, *, counted: int, limit: int | None, window: str, app_api: bool
    ) -> str:
        """Mixpanel's wording; the counts include the refused request, as in ``61/60``."""
        noun = "requests" if app_api else "queries"
        clauses = []
        if concurrent is not None:
            clauses.append(f"{running + 1}/{concurrent} {noun} running concurrently")
        if limit is not None:
            clauses.append(f"{counted + 1}/{limit} {noun} {'in' if app_api else 'running in'} the last {window}")
        subject = "Rate" if app_api else "Query rate"
        return f"{subject} limit exceeded for project_id: {self.project_id}. {' and '.join(clauses)}."

    def _refuse(self, limit: str, path: str, text: str, simulated_wait: float, *, app_api: bool) -> Refusal:
        policy = self.quotas.retry_after
        send = policy == "always" or (policy == "hourly-only" and limit in ("hourly", "per-minute"))
        retry_after = None
        if send:
            real = self.clock.real_seconds(max(simulated_wait, 0.0))
            retry_after = str(max(1, math.ceil(real)))
        body = {"error": text, "status": "error"} if app_api else {"request": path, "error": text}
        return Refusal(limit, body, retry_after)


# The pools whose errors use the app API's envelope, {"error": ..., "status": "error"}.
_APP_POOLS = ("lexicon", "app")


def _pool_name(name: str) -> str:
    return "query" if name == ENGAGE_ALIAS else name


def _widest(pool: _Pool, limits: PoolLimits) -> tuple[int, int | None, str]:
    """The longest window that has a limit, for a concurrency refusal's wording (Mixpanel's
    names the hour beside the running count)."""
    if limits.per_hour is not None or limits.per_minute is None:
        return len(pool.hour), limits.per_hour, "hour"
    return len(pool.minute), limits.per_minute, "minute"


def _expire(window: deque[float], before: float) -> None:
    while window and window[0] <= before:
        window.popleft()
