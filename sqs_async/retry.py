"""The retry policy: how often and how patiently a failed call or entry is tried again.

tenacity owns every retry (botocore's own retries are switched off), so `max_trials` is the
exact number of attempts an entry gets. Which failures are worth retrying is the error-code
table's to say (`errors.CODES`): retryable and throttling ones are, with exponential backoff
and jitter; a rejected request or entry (4xx, `SenderFault=true`) never is; a fatal one (the
queue refuses everything) is raised at once as `SqsClientError`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from . import defaults
from .checks import check_number
from .errors import is_transient

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


class stop_at_deadline(stop_base):
    """Stop when the next attempt would start at or after `deadline_at` (a `clock` time)."""

    def __init__(self, deadline_at: float | None, clock: Callable[[], float]) -> None:
        self.deadline_at = deadline_at
        self.clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        if self.deadline_at is None:
            return False
        return self.clock() + retry_state.upcoming_sleep >= self.deadline_at


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently a failed entry is sent again.

    `max_trials` counts every attempt, the first included (1 means no retry). Between attempts
    the wait is `initial_backoff * 2**(attempt-1)` plus up to `jitter` seconds at random,
    capped at `max_backoff`.
    """

    max_trials: int = defaults.MAX_TRIALS
    initial_backoff: float = 0.1
    max_backoff: float = 10.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        check_number("RetryPolicy.max_trials", self.max_trials, low=1, integer=True)
        for name in ("initial_backoff", "max_backoff", "jitter"):
            check_number(f"RetryPolicy.{name}", getattr(self, name), low=0)

    def backoff(
        self,
        attempts: int,
        *,
        deadline_at: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> float | None:
        """Seconds an entry that failed its attempt number `attempts` waits before the next,
        or None when it has had its `max_trials` or the next attempt would start at or after
        `deadline_at` (a `clock` time).

        tenacity decides, as it would between two calls: its wait strategy gives the backoff
        with jitter, its stop conditions the end. The entry does not wait in a retry loop of
        its own: it goes back to its queue's accumulator (see `send._dispatcher`)."""
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempts
        wait = self._wait()(state)
        state.upcoming_sleep = wait
        stop = stop_after_attempt(self.max_trials) | stop_at_deadline(deadline_at, clock)
        return None if stop(state) else wait

    def retrying_call(self, *, sleep: Sleep) -> Retrying:
        """For a single call that retries transient exceptions."""
        return Retrying(
            lambda: AsyncRetrying(
                stop=stop_after_attempt(self.max_trials),
                wait=self._wait(),
                retry=retry_if_exception(is_transient),
                sleep=sleep,
                reraise=True,
            )
        )

    def retrying_entries(
        self, *, sleep: Sleep, on_give_up: Callable[[RetryCallState], Any]
    ) -> Retrying:
        """For one batch call on receipt handles (delete, change visibility): `max_trials`
        attempts in all; an attempt returns the entries still to retry (a partial failure is
        a result) or raises; transient errors are retried."""
        return Retrying(
            lambda: AsyncRetrying(
                stop=stop_after_attempt(self.max_trials),
                wait=self._wait(),
                retry=retry_if_result(bool) | retry_if_exception(is_transient),
                retry_error_callback=on_give_up,
                sleep=sleep,
            ),
            retry_result=True,
        )

    def retrying_forever(self, *, sleep: Sleep) -> Retrying:
        """For a long-running poll: transient errors are retried without end, backing off up
        to `max_backoff`; any other error is raised."""
        return Retrying(
            lambda: AsyncRetrying(
                wait=self._wait(), retry=retry_if_exception(is_transient), sleep=sleep, reraise=True
            )
        )

    def _wait(self) -> wait_exponential_jitter:
        return wait_exponential_jitter(
            multiplier=self.initial_backoff, max=self.max_backoff, jitter=self.jitter
        )


class Retrying:
    """tenacity's loop, entered only when the first attempt did not simply succeed (it raised,
    or with `retry_result` returned something to retry): then tenacity runs as if it had made
    that attempt itself (its outcome is replayed as attempt 1), so its waits, stops and
    callbacks are unchanged. Why: building an `AsyncRetrying` and stepping through its actions
    costs about as much CPU as the request itself on a fast network, and nearly every call
    succeeds at once."""

    def __init__(self, tenacity: Callable[[], AsyncRetrying], *, retry_result: bool = False):
        self._tenacity = tenacity
        self._retry_result = retry_result

    async def __call__(self, attempt: Callable[[], Awaitable[T]]) -> T:
        try:
            result = await attempt()
        except Exception as error:
            first: Callable[[], Awaitable[T]] = _raising(error)
        else:
            if not (self._retry_result and result):
                return result
            first = _returning(result)
        attempts = iter((first,))

        async def replayed_then_attempt() -> T:
            return await next(attempts, attempt)()

        retried: T = await self._tenacity()(replayed_then_attempt)
        return retried


def _raising(error: Exception) -> Callable[[], Awaitable[Any]]:
    async def outcome() -> Any:
        raise error

    return outcome


def _returning(result: T) -> Callable[[], Awaitable[T]]:
    async def outcome() -> T:
        return result

    return outcome


async def default_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)
