"""Mixpanel's per-project request limits, kept by every caller of the client alike.

Per project, Mixpanel allows the Raw Export API 3 queries per second and 100 at once, the Query
API (Engage, cohorts, funnels) 5 at once, and the Lexicon Schemas API 5 requests a minute; export
and query also allow 60 per rolling hour, which pacing cannot keep (only spending few requests
can: see ``docs/operators.rst``). A :class:`RequestPacer` spaces the starts of requests and caps
how many run at once. Pacers are shared per API host and project within a process, so two hooks in
one task, or the windows of one operator, are paced together.

Each request belongs to one :class:`Quota` class; :data:`QUOTAS` is the one table of what each
class allows and which host serves it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class ApiLimits:
    """What one Mixpanel API allows per project: request starts per second (and per minute),
    requests at once."""

    requests_per_second: float | None
    concurrent: int
    requests_per_minute: int | None = None


# Raw Export API: 3 queries per second, 100 concurrent (docs: reference/rate-limits).
EXPORT_LIMITS = ApiLimits(requests_per_second=3.0, concurrent=100)
# Query API, behind Engage, cohorts and funnels: 5 concurrent; no per-second limit is documented.
QUERY_LIMITS = ApiLimits(requests_per_second=None, concurrent=5)
# Lexicon Schemas API: 5 requests a minute (docs: reference/rate-limits); one at a time is plenty.
LEXICON_LIMITS = ApiLimits(requests_per_second=None, concurrent=1, requests_per_minute=5)
# Other App API endpoints (annotations): no limit of their own is documented; paced as the Query API.
APP_LIMITS = ApiLimits(requests_per_second=None, concurrent=5)
# The per-second limit is kept over a slightly longer window: requests reach Mixpanel a little
# after they start here, and unevenly (connection setup, a busy machine), which must never put
# 4 of them in one of Mixpanel's seconds.
_SECOND_WITH_SLACK = 1.1
_MINUTE_WITH_SLACK = 61.0


class Quota(Enum):
    """The limit class a request counts against (see :data:`QUOTAS`)."""

    EXPORT = "export"
    QUERY = "query"
    LEXICON = "lexicon"
    APP = "app"


@dataclass(frozen=True)
class QuotaFacts:
    """What one quota class is: the host that serves it, its pacing, and what to do when it is spent."""

    #: ``"export"`` or ``"query"``: which of a region's hosts serves it (:data:`connection.REGIONS`)
    host: str
    limits: ApiLimits
    #: the advice of a 429 that outlasted the retries
    when_spent: str


_HOURLY_ADVICE = (
    "The quota (60 queries per rolling hour) is spent: let the task retry later (Airflow's retry_delay), "
    "spend fewer requests (wider windows, a larger page_size, fewer cohorts or funnels), or cap concurrent "
    "tasks with an Airflow pool."
)
QUOTAS: dict[Quota, QuotaFacts] = {
    Quota.EXPORT: QuotaFacts("export", EXPORT_LIMITS, _HOURLY_ADVICE),
    Quota.QUERY: QuotaFacts("query", QUERY_LIMITS, _HOURLY_ADVICE),
    Quota.LEXICON: QuotaFacts(
        "query", LEXICON_LIMITS, "The Lexicon Schemas API allows 5 requests a minute: retry a minute later."
    ),
    Quota.APP: QuotaFacts("query", APP_LIMITS, "Lower request concurrency (an Airflow pool) or retry later."),
}


class RequestPacer:
    """Keeps request starts within the per-second limit (over any sliding second) and caps
    requests in flight; thread-safe.

    Use ``pacer.acquire()`` before a request and ``pacer.release()`` once its response is fully
    read or abandoned.
    """

    def __init__(
        self,
        limits: ApiLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.limits = limits
        # (starts allowed, over how many seconds, the starts made within them)
        self._windows = [
            (int(count), seconds, deque[float]())
            for count, seconds in (
                (limits.requests_per_second, _SECOND_WITH_SLACK),
                (limits.requests_per_minute, _MINUTE_WITH_SLACK),
            )
            if count
        ]
        self._slots = threading.BoundedSemaphore(limits.concurrent)
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def acquire(self) -> None:
        self._slots.acquire()
        if not self._windows:
            return
        # Waiting threads queue on the lock, so starts are handed out in order.
        with self._lock:
            while True:
                now = self._clock()
                wait = 0.0
                for count, seconds, starts in self._windows:
                    while starts and now - starts[0] >= seconds:
                        starts.popleft()
                    if len(starts) >= count:
                        wait = max(wait, starts[0] + seconds - now)
                if wait <= 0:
                    for _, _, starts in self._windows:
                        starts.append(now)
                    return
                self._sleep(wait)

    def release(self) -> None:
        self._slots.release()


_shared: dict[tuple[str, int | None], RequestPacer] = {}
_shared_lock = threading.Lock()


def shared_pacer(url: str, project_id: int | None, limits: ApiLimits) -> RequestPacer:
    """The process-wide pacer of one API endpoint and project."""
    key = (url, project_id)
    with _shared_lock:
        pacer = _shared.get(key)
        if pacer is None:
            pacer = _shared[key] = RequestPacer(limits)
        return pacer
