"""How many requests may be in flight: a limit that adapts to throttling (AIMD).

The limit starts at `maximum`. A throttled or 5xx answer halves it (multiplicative decrease),
but only once per round: only answers to requests sent after the last decrease can decrease
it again, so one burst of throttled answers counts once. Each successful request adds
1/limit (additive increase: about one more slot per round of requests), up to `maximum`.
The caller's own mistakes (`SenderFault=true`) never change it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# What a congestion signal multiplies the limit by.
DECREASE = 0.5


class AdaptiveLimit:
    """Counts requests in flight against the limit. Plain accounting, no waiting: the
    dispatcher starts a request only when `has_room()` (see `_dispatcher`)."""

    def __init__(
        self,
        maximum: int,
        *,
        adaptive: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.maximum = maximum
        self.adaptive = adaptive
        self.limit = float(maximum)
        self.in_flight = 0
        self._clock = clock
        self._last_decrease = float("-inf")
        self._reduced_since: float | None = None
        self._reduced_total = 0.0

    @property
    def reduced_seconds(self) -> float:
        """Total time the limit has been below `maximum` (time spent throttled)."""
        ongoing = 0.0 if self._reduced_since is None else self._clock() - self._reduced_since
        return self._reduced_total + ongoing

    def has_room(self) -> bool:
        return self.in_flight < int(self.limit)

    def acquire(self) -> float:
        """Count a request as started; returns the time it may be considered sent."""
        self.in_flight += 1
        return self._clock()

    def release(self) -> None:
        self.in_flight -= 1

    def succeeded(self) -> None:
        if not self.adaptive or self.limit >= self.maximum:
            return
        self.limit = min(self.maximum, self.limit + 1 / self.limit)
        if self.limit >= self.maximum and self._reduced_since is not None:
            self._reduced_total += self._clock() - self._reduced_since
            self._reduced_since = None

    def congested(self, sent_at: float) -> None:
        """A request sent at `sent_at` was throttled or met a 5xx."""
        if not self.adaptive or sent_at < self._last_decrease:
            return
        self._last_decrease = self._clock()
        self.limit = max(1.0, self.limit * DECREASE)
        if self._reduced_since is None:
            self._reduced_since = self._last_decrease
