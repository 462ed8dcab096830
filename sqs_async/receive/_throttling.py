"""Throttled time: how long a receiver's calls spent backing off after SQS throttled them,
as runners read it (Beam's `cumulativeThrottlingSeconds` scales workers on it).

Plain accounting around the retry loops' sleep; polls and batch calls on receipt handles
share one `ThrottledTime` per receiver.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import Kind, classify, kind_of
from ..retry import Sleep
from ._messages import ReceiverStats


class ThrottledTime:
    """The wall time during which at least one of a receiver's calls was backing off after
    throttling, into `stats.throttled_seconds`: backoffs that overlap (several polls, deletes)
    count once, as runners read this time."""

    def __init__(self, stats: ReceiverStats, clock: Callable[[], float]) -> None:
        self._stats = stats
        self._clock = clock
        self._backing_off = 0
        self._since = 0.0

    def begin(self) -> None:
        if self._backing_off == 0:
            self._since = self._clock()
        self._backing_off += 1

    def end(self) -> None:
        self._backing_off -= 1
        if self._backing_off == 0:
            self._stats.throttled_seconds += self._clock() - self._since


class ThrottleClock:
    """The sleep of one retry loop, counting into `time` the backoff that follows a
    throttling error (`saw`), and only that. A call's error replaces what was seen; entry
    errors of one batch answer add up (any throttled entry makes the backoff throttled)."""

    def __init__(self, time: ThrottledTime, sleep: Sleep) -> None:
        self._time = time
        self._sleep = sleep
        self._throttled = False

    def saw(self, exc: BaseException) -> None:
        self._throttled = classify(exc) is Kind.THROTTLING

    def saw_entry(self, code: str) -> None:
        self._throttled = self._throttled or kind_of(code) is Kind.THROTTLING

    async def sleep(self, seconds: float) -> None:
        throttled, self._throttled = self._throttled, False
        if not throttled:
            await self._sleep(seconds)
            return
        self._time.begin()
        try:
            await self._sleep(seconds)
        finally:
            self._time.end()
