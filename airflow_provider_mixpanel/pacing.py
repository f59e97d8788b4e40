"""Mixpanel's per-project request limits, kept by every caller of the client alike.

Per project, Mixpanel allows the Raw Export API 3 queries per second and 100 at once, and the
Query API (Engage) 5 at once; both also allow 60 per rolling hour, which pacing cannot keep
(only spending few requests can: see ``docs/operators.rst``). A :class:`RequestPacer` spaces the
starts of requests and caps how many run at once. Pacers are shared per API host and project
within a process, so two hooks in one task, or the windows of one operator, are paced together.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ApiLimits:
    """What one Mixpanel API allows per project: request starts per second, requests at once."""

    requests_per_second: float | None
    concurrent: int


# Raw Export API: 3 queries per second, 100 concurrent (docs: reference/rate-limits).
EXPORT_LIMITS = ApiLimits(requests_per_second=3.0, concurrent=100)
# Query API, behind Engage: 5 concurrent; no per-second limit is documented.
QUERY_LIMITS = ApiLimits(requests_per_second=None, concurrent=5)
# The per-second limit is kept over a slightly longer window: requests reach Mixpanel a little
# after they start here, and unevenly (connection setup, a busy machine), which must never put
# 4 of them in one of Mixpanel's seconds.
_SECOND_WITH_SLACK = 1.1


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
        self._per_second = int(limits.requests_per_second) if limits.requests_per_second else 0
        self._starts: deque[float] = deque()
        self._slots = threading.BoundedSemaphore(limits.concurrent)
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def acquire(self) -> None:
        self._slots.acquire()
        if not self._per_second:
            return
        # Waiting threads queue on the lock, so starts are handed out in order.
        with self._lock:
            while True:
                now = self._clock()
                while self._starts and now - self._starts[0] >= _SECOND_WITH_SLACK:
                    self._starts.popleft()
                if len(self._starts) < self._per_second:
                    self._starts.append(now)
                    return
                self._sleep(self._starts[0] + _SECOND_WITH_SLACK - now)

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
