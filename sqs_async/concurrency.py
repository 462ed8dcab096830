"""How many requests may be in flight: a limit that adapts to throttling (AIMD).

The limit starts at `maximum`. A throttled or 5xx answer halves it (multiplicative decrease),
but only once per round: only answers to requests sent after the last decrease can decrease
it again, so one burst of throttled answers counts once. Each successful request adds
1/limit (additive increase: about one more slot per round of requests), up to `maximum`.
The caller's own mistakes (`SenderFault=true`) never change it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class AdaptiveLimit:
    def __init__(
        self,
        maximum: int,
        *,
        adaptive: bool = True,
        decrease: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.maximum = maximum
        self.adaptive = adaptive
        self.decrease = decrease
        self.limit = float(maximum)
        self.in_flight = 0
        self._clock = clock
        self._changed = asyncio.Condition()
        self._last_decrease = float("-inf")
        self._reduced_since: float | None = None
        self._reduced_total = 0.0

    @property
    def reduced_seconds(self) -> float:
        """Total time the limit has been below `maximum` (time spent throttled)."""
        ongoing = 0.0 if self._reduced_since is None else self._clock() - self._reduced_since
        return self._reduced_total + ongoing

    async def acquire(self) -> float:
        """Wait for a free slot; returns the time the request may be considered sent."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < int(self.limit))
            self.in_flight += 1
        return self._clock()

    async def release(self) -> None:
        async with self._changed:
            self.in_flight -= 1
            self._changed.notify()  # one slot freed: wake one waiter, not all of them

    async def succeeded(self) -> None:
        if not self.adaptive or self.limit >= self.maximum:
            return
        async with self._changed:
            slots = int(self.limit)
            self.limit = min(self.maximum, self.limit + 1 / self.limit)
            if self.limit >= self.maximum and self._reduced_since is not None:
                self._reduced_total += self._clock() - self._reduced_since
                self._reduced_since = None
            if int(self.limit) > slots:
                self._changed.notify()  # a new slot opened

    def congested(self, sent_at: float) -> None:
        """A request sent at `sent_at` was throttled or met a 5xx."""
        if not self.adaptive or sent_at < self._last_decrease:
            return
        self._last_decrease = self._clock()
        self.limit = max(1.0, self.limit * self.decrease)
        if self._reduced_since is None:
            self._reduced_since = self._last_decrease
