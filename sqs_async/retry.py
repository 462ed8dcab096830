"""The retry policy, and which failures are worth retrying.

tenacity owns every retry (botocore's own retries are switched off), so `max_trials` is the
exact number of attempts an entry gets. Three kinds of failure:

* transient: throttling, 5xx, timeouts, connection errors, and entries SQS marks
  `SenderFault=false`: retried with exponential backoff and jitter;
* rejected: the request or entry itself is wrong (4xx, `SenderFault=true`): never retried;
* fatal: the queue refuses everything (missing, access denied, bad credentials): raised at
  once as `SqsClientError`.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ReadTimeoutError,
)
from botocore.retries.standard import (
    RetryContext,
    ThrottledRetryableChecker,
    TransientRetryableChecker,
)
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from .checks import check_number
from .errors import CREDENTIAL_CODES

Sleep = Callable[[float], Awaitable[None]]

_FATAL_CODES = frozenset(
    {
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.QueueDeletedRecently",
        "QueueDeletedRecently",
        "AccessDenied",
        "AccessDeniedException",
        *CREDENTIAL_CODES,
        "OptInRequired",
        "InvalidAddress",
    }
)
# Throttling codes that botocore's generic list does not carry.
_EXTRA_THROTTLING_CODES = frozenset({"KMS.ThrottlingException", "RequestThrottled"})
_throttled_checker = ThrottledRetryableChecker()
_transient_checker = TransientRetryableChecker()


class FailureKind(enum.Enum):
    TRANSIENT = "transient"
    THROTTLED = "throttled"
    REJECTED = "rejected"
    FATAL = "fatal"


def error_code(exc: BaseException) -> str:
    """The AWS error code of `exc`, or its class name when it has none."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return str(error.get("QueryErrorCode") or error.get("Code") or "ClientError")
    return type(exc).__name__


def classify(exc: BaseException) -> FailureKind:
    """Say what a whole-request failure means for the entries of that request."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        codes = {error.get("Code"), error.get("QueryErrorCode")}
        if codes & _FATAL_CODES:
            return FailureKind.FATAL
        context = RetryContext(attempt_number=1, parsed_response=exc.response)
        if codes & _EXTRA_THROTTLING_CODES or _throttled_checker.is_retryable(context):
            return FailureKind.THROTTLED
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if status == 429:
            return FailureKind.THROTTLED
        if status >= 500 or _transient_checker.is_retryable(context):
            return FailureKind.TRANSIENT
        return FailureKind.REJECTED
    context = RetryContext(attempt_number=1, caught_exception=exc)
    if isinstance(exc, TimeoutError | OSError) or _transient_checker.is_retryable(context):
        return FailureKind.TRANSIENT
    if isinstance(exc, BotoCoreError):
        # Missing credentials or region, bad parameters: the same call will fail again.
        return FailureKind.FATAL
    return FailureKind.REJECTED


def is_transient(exc: BaseException) -> bool:
    return classify(exc) in (FailureKind.TRANSIENT, FailureKind.THROTTLED)


def is_congestion(exc: BaseException) -> bool:
    """Throttling or a 5xx: a sign to send fewer requests at once."""
    if classify(exc) is FailureKind.THROTTLED:
        return True
    if isinstance(exc, ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) >= 500
    return False


def may_have_been_accepted(exc: BaseException) -> bool:
    """The request may have reached SQS before it failed: retrying it may duplicate messages
    (on a standard queue; a FIFO queue deduplicates within 5 minutes)."""
    return isinstance(exc, TimeoutError | ReadTimeoutError | ConnectionClosedError)


def is_throttling_entry(code: str) -> bool:
    """Whether a per-entry error code means throttling (for example KMS throttling)."""
    return code in _EXTRA_THROTTLING_CODES or "Throttl" in code


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

    max_trials: int = 3
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
        its own: it goes back to its queue's accumulator (see `dispatch`)."""
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempts
        wait = self._wait()(state)
        state.upcoming_sleep = wait
        stop = stop_after_attempt(self.max_trials) | stop_at_deadline(deadline_at, clock)
        return None if stop(state) else wait

    def retrying_call(self, *, sleep: Sleep) -> AsyncRetrying:
        """A fresh `AsyncRetrying` for a single call that retries transient exceptions."""
        return AsyncRetrying(
            stop=stop_after_attempt(self.max_trials),
            wait=self._wait(),
            retry=retry_if_exception(is_transient),
            sleep=sleep,
            reraise=True,
        )

    def retrying_entries(
        self, *, sleep: Sleep, on_give_up: Callable[[RetryCallState], Any]
    ) -> AsyncRetrying:
        """A fresh `AsyncRetrying` for one batch call on receipt handles (delete, change
        visibility): `max_trials` attempts in all; an attempt returns the entries still to
        retry (a partial failure is a result) or raises; transient errors are retried."""
        return AsyncRetrying(
            stop=stop_after_attempt(self.max_trials),
            wait=self._wait(),
            retry=retry_if_result(bool) | retry_if_exception(is_transient),
            retry_error_callback=on_give_up,
            sleep=sleep,
        )

    def retrying_forever(self, *, sleep: Sleep) -> AsyncRetrying:
        """A fresh `AsyncRetrying` for a long-running poll: transient errors are retried
        without end, backing off up to `max_backoff`; any other error is raised."""
        return AsyncRetrying(
            wait=self._wait(), retry=retry_if_exception(is_transient), sleep=sleep, reraise=True
        )

    def _wait(self, multiplier: float | None = None) -> wait_exponential_jitter:
        return wait_exponential_jitter(
            multiplier=self.initial_backoff if multiplier is None else multiplier,
            max=self.max_backoff,
            jitter=self.jitter,
        )


async def default_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)
