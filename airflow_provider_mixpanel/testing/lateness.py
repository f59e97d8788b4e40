"""Late arrival: when Mixpanel processes (ingests) each synthetic event, relative to its event time.

Each event gets a lag, drawn deterministically from the event's (day, index) by integer hashing, so
the same configuration always gives the same processing times and the server never stores them.
Its ``mp_processing_time_ms`` is event time + lag; an export at simulated time T returns only
events whose processing time is <= T.

The default shape follows what Mixpanel documents (``/track`` takes events up to 5 days old; mobile
SDKs flush queued events late): most events within a minute, a tail of hours, a few up to 5 days.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

_M64 = 0xFFFFFFFFFFFFFFFF
_U32 = 1 << 32
_DAY_SALT = 0x9E3779B97F4A7C15  # odd 64-bit constants of splitmix64
_INDEX_SALT = 0xBF58476D1CE4E5B9
_MIX = 0x94D049BB133111EB

#: 90% within a minute, 8% between a minute and 6 hours, 1.5% between 6 hours and a day, 0.5%
#: between one and five days. Each lag is uniform within its band.
DEFAULT_SHAPE: tuple[tuple[float, timedelta], ...] = (
    (0.90, timedelta(minutes=1)),
    (0.08, timedelta(hours=6)),
    (0.015, timedelta(days=1)),
    (0.005, timedelta(days=5)),
)


@dataclass(frozen=True)
class LateArrival:
    """How late events are processed: bands of ``(share, up_to)``.

    A band's events have a lag uniform between the previous band's ``up_to`` (0 for the first)
    and its own ``up_to``; shares add up to 1 and ``up_to`` grows. See :data:`DEFAULT_SHAPE`.

    :param shape: the bands, e.g. ``((0.95, timedelta(minutes=1)), (0.05, timedelta(days=2)))``.
    """

    shape: tuple[tuple[float, timedelta], ...] = DEFAULT_SHAPE
    _bands: tuple[tuple[int, int, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.shape:
            raise ValueError("LateArrival needs at least one (share, up_to) band")
        total = sum(share for share, _ in self.shape)
        if abs(total - 1.0) > 1e-9 or any(share < 0 for share, _ in self.shape):
            raise ValueError(f"LateArrival shares must be >= 0 and add up to 1, not {total!r}")
        bands = []
        cumulative = 0.0
        low_ms = 0
        for share, up_to in self.shape:
            high_ms = int(up_to.total_seconds() * 1000)
            if high_ms < low_ms:
                raise ValueError("LateArrival bands must be in increasing order of up_to")
            cumulative += share
            threshold = min(_U32, round(cumulative * _U32))
            bands.append((threshold, low_ms, high_ms - low_ms))
            low_ms = high_ms
        _, low, width = bands[-1]
        bands[-1] = (_U32, low, width)  # rounding never leaves a hash without a band
        object.__setattr__(self, "_bands", tuple(bands))

    @property
    def max_lag(self) -> timedelta:
        """No event is processed later than this after its event time."""
        return self.shape[-1][1]

    @property
    def max_lag_ms(self) -> int:
        return self._bands[-1][1] + self._bands[-1][2]

    def lag_ms(self, ordinal: int, index: int) -> int:
        """The lag of event ``index`` of the day whose ``date.toordinal()`` is ``ordinal``."""
        return next(self.lags_ms(ordinal, index, index + 1))

    def lags_ms(self, ordinal: int, start: int, stop: int) -> Iterator[int]:
        """The lags of events ``start`` .. ``stop - 1`` of one day, in order (integer arithmetic only)."""
        bands = self._bands
        first_threshold, first_low, first_width = bands[0]
        rest = bands[1:]
        base = ordinal * _DAY_SALT
        for index in range(start, stop):
            h = (base + index * _INDEX_SALT) & _M64
            h = ((h ^ (h >> 31)) * _MIX) & _M64
            pick = h >> 32
            fraction = h & 0xFFFFFFFF
            if pick < first_threshold:
                yield first_low + ((fraction * first_width) >> 32)
                continue
            for threshold, low, width in rest:
                if pick < threshold:
                    yield low + ((fraction * width) >> 32)
                    break
