"""Sends batches to one queue: bounded concurrency, retries of only what failed, and an outcome
for every message.

This is the single place where concurrency is bounded, twice:

* requests: at most `max_in_flight` SendMessageBatch calls at once (a slot is held for the
  call only, not while a batch backs off before a retry), fewer while SQS throttles
  (`AdaptiveLimit`, unless `adaptive` is off);
* batches: `submit` waits until fewer than `2 * max_in_flight` batches are alive (in flight or
  backing off), so input is read only as fast as it is sent, and throttling, which keeps
  batches alive longer, slows down intake instead of piling up requests.

The first attempt of a batch is made directly; a tenacity `AsyncRetrying` is built only for a
batch that has something to retry, which most never do.

One dispatcher serves every queue a sender writes to (its bounds are the client's); a batch
names its queue. A queue may also have a request rate cap (`limit_rate`, for FIFO queues).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiolimiter import AsyncLimiter
from tenacity import RetryCallState

from .batching import Batch
from .client import SqsClient
from .concurrency import AdaptiveLimit
from .errors import SqsClientError, refusal
from .fifo import halted
from .results import Delivered, Failed, SendResult
from .retry import (
    FailureKind,
    RetryPolicy,
    Sleep,
    classify,
    error_code,
    is_congestion,
    is_throttling_entry,
    may_have_been_accepted,
)
from .validation import OutgoingMessage

log = logging.getLogger("sqs_async")

# Code for an entry that SQS listed neither as successful nor as failed (retried).
MISSING_RESULT = "MissingResult"
# Code for a message still unsent when its send's deadline passed.
DEADLINE_EXCEEDED = "DeadlineExceeded"


@dataclass(slots=True)
class _Pending:
    """A message still on its way, with what happened on its last attempt."""

    message: OutgoingMessage
    attempts: int = 0
    code: str = ""
    reason: str = ""
    maybe_sent: bool = False  # the last attempt may have reached SQS
    accepted: bool = False  # SQS listed it as successful

    def failed(self, *, sender_fault: bool) -> Failed:
        return Failed(
            record=self.message.record,
            index=self.message.index,
            code=self.code,
            message=self.reason,
            sender_fault=sender_fault,
            attempts=self.attempts,
        )


# What a caller does with a batch whose queue refused the request for good (dynamic routing
# fails the batch's records instead of the whole send).
OnFatal = Callable[[SqsClientError, Batch], SendResult]
# Told of the messages each attempt delivered, before the batch's retries end (FIFO groups
# move on as soon as their message is in).
OnDelivered = Callable[[list[Delivered]], None]


class Dispatcher:
    """Runs SendMessageBatch calls on one client; `queue_url` is the default queue."""

    def __init__(
        self,
        *,
        client: SqsClient,
        queue_url: str | None,
        policy: RetryPolicy,
        max_in_flight: int,
        adaptive: bool = True,
        request_timeout: float,
        sleep: Sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._queue_url = queue_url
        self._policy = policy
        self.limit = AdaptiveLimit(max_in_flight, adaptive=adaptive, clock=clock)
        self._batches = asyncio.Semaphore(2 * max_in_flight)
        self._request_timeout = request_timeout
        self._sleep = sleep
        self._clock = clock
        self._rates: dict[str, AsyncLimiter] = {}

    def now(self) -> float:
        return self._clock()

    def _queue(self, queue_url: str | None) -> str:
        queue = queue_url or self._queue_url
        if queue is None:
            raise ValueError("this dispatcher has no default queue: name the batch's queue_url")
        return queue

    def limit_rate(self, queue_url: str, per_second: float) -> None:
        """Start at most `per_second` requests a second to `queue_url` (a FIFO queue's quota)."""
        if queue_url not in self._rates:
            self._rates[queue_url] = AsyncLimiter(per_second, 1.0)

    async def submit(
        self,
        batch: Batch,
        group: asyncio.TaskGroup,
        deadline_at: float | None = None,
        *,
        queue_url: str | None = None,
        on_fatal: OnFatal | None = None,
        on_delivered: OnDelivered | None = None,
        ordered_groups: bool = False,
    ) -> asyncio.Task[SendResult]:
        """Wait until a batch may start, then send `batch` as a task of `group`.

        Without `on_fatal`, a queue refusing the request for good raises `SqsClientError`
        from the task; with it, the task returns `on_fatal(error, batch)`.
        """
        await self._batches.acquire()
        try:
            task = group.create_task(
                self._send(
                    batch,
                    deadline_at,
                    self._queue(queue_url),
                    on_fatal,
                    on_delivered,
                    ordered_groups,
                )
            )
        except BaseException:
            self._batches.release()
            raise
        # A callback, not `finally`: a task cancelled before it starts never runs its body.
        task.add_done_callback(lambda _: self._batches.release())
        return task

    async def _send(
        self,
        batch: Batch,
        deadline_at: float | None,
        queue_url: str,
        on_fatal: OnFatal | None,
        on_delivered: OnDelivered | None,
        ordered_groups: bool,
    ) -> SendResult:
        try:
            return await self.send_batch(
                batch.messages,
                deadline_at,
                queue_url=queue_url,
                on_delivered=on_delivered,
                ordered_groups=ordered_groups,
            )
        except SqsClientError as error:
            if on_fatal is None:
                raise
            return on_fatal(error, batch)

    async def send_batch(
        self,
        messages: list[OutgoingMessage],
        deadline_at: float | None = None,
        *,
        queue_url: str | None = None,
        on_delivered: OnDelivered | None = None,
        ordered_groups: bool = False,
    ) -> SendResult:
        """Send `messages` with retries; every one ends delivered or failed in the result.

        No retry starts after `deadline_at` (a `now()` time): what is left then fails with
        `DeadlineExceeded`. Raises `SqsClientError` when the queue refuses every request.
        `on_delivered` hears of each attempt's deliveries as they happen. With
        `ordered_groups` (a FIFO batch holding several messages of a group), a message that
        fails for good stops the later messages of its group in the batch: they fail with
        `PrecedingMessageFailed` instead of being sent after it.
        """
        report = SendResult()
        queue = self._queue(queue_url)
        announced = 0
        groups = (
            {m.index: m.fields.get("MessageGroupId") for m in messages} if ordered_groups else {}
        )

        async def attempt(entries: list[_Pending]) -> list[_Pending]:
            """One request; tells `on_delivered`; returns what is worth another attempt."""
            nonlocal announced
            left = await self._request(queue, entries, report, ordered_groups)
            if on_delivered is not None and len(report.delivered) > announced:
                on_delivered(report.delivered[announced:])
                announced = len(report.delivered)
            return _halt_behind_failures(left, report, groups) if ordered_groups else left

        pending = await attempt([_Pending(message) for message in messages])

        async def retry() -> list[_Pending]:
            nonlocal pending
            report.retried += len(pending)
            pending = await attempt(pending)
            return pending

        def give_up(state: RetryCallState | None = None) -> list[_Pending]:
            next_attempt_at = self.now() + (state.upcoming_sleep if state else 0)
            if deadline_at is not None and next_attempt_at >= deadline_at:
                for p in pending:
                    p.reason = f"deadline passed before a retry; last: {p.code}: {p.reason}"
                    p.code = DEADLINE_EXCEEDED
            report.failed.extend(p.failed(sender_fault=False) for p in pending)
            return []

        if pending and self._policy.max_trials > 1:
            retrying = self._policy.retrying(
                sleep=self._sleep, on_give_up=give_up, deadline_at=deadline_at, clock=self._clock
            )
            await retrying(retry)
        elif pending:
            give_up()
        log.debug(
            "batch of %d: %d delivered, %d failed, %d requests",
            len(messages),
            len(report.delivered),
            len(report.failed),
            report.requests,
        )
        return report

    async def _request(
        self,
        queue_url: str,
        pending: list[_Pending],
        report: SendResult,
        ordered_groups: bool = False,
    ) -> list[_Pending]:
        """One SendMessageBatch call; returns the entries worth another attempt."""
        entries = [{"Id": str(i), **p.message.fields} for i, p in enumerate(pending)]
        for p in pending:
            p.attempts += 1
            if p.maybe_sent:
                report.possible_duplicates += 1
                p.maybe_sent = False
        report.requests += 1
        rate = self._rates.get(queue_url)
        if rate is not None:
            await rate.acquire()
        sent_at = await self.limit.acquire()
        try:
            async with asyncio.timeout(self._request_timeout):
                response = await self._client.send_message_batch(
                    QueueUrl=queue_url, Entries=entries
                )
        except Exception as exc:
            error: Exception | None = exc
        else:
            error = None
        finally:
            await self.limit.release()
            report.latencies.append(self._clock() - sent_at)
        if error is not None:
            if is_congestion(error):
                self.limit.congested(sent_at)
            return await self._request_failed(queue_url, error, pending, report, ordered_groups)
        retry = self._sort_entries(response, pending, report)
        if ordered_groups and len(pending) > 1:
            report.reordered += _overtaken(pending)
        if any(is_throttling_entry(p.code) for p in retry):
            self.limit.congested(sent_at)
        else:
            await self.limit.succeeded()
        return retry

    async def _request_failed(
        self,
        queue_url: str,
        exc: Exception,
        pending: list[_Pending],
        report: SendResult,
        ordered_groups: bool,
    ) -> list[_Pending]:
        kind = classify(exc)
        code = error_code(exc)
        reason = str(exc) or type(exc).__name__
        if kind is FailureKind.FATAL:
            raise refusal(exc, code, queue_url) from exc
        if kind is FailureKind.REJECTED and len(pending) > 1:
            # The request as a whole was refused for its content: send each entry on its own,
            # so that one bad message cannot fail its neighbours.
            log.debug("request rejected (%s); isolating %d entries", code, len(pending))
            retry: list[_Pending] = []
            groups = {p.message.index: p.message.fields.get("MessageGroupId") for p in pending}
            for p in pending:
                if ordered_groups and not _halt_behind_failures([p], report, groups):
                    continue  # an earlier message of its group failed for good
                retry += await self._request(queue_url, [p], report)
            return retry
        for p in pending:
            p.code, p.reason = code, reason
        if kind is FailureKind.REJECTED:
            report.failed.extend(p.failed(sender_fault=True) for p in pending)
            return []
        if kind is FailureKind.THROTTLED:
            report.throttled += 1
        if may_have_been_accepted(exc):
            for p in pending:
                p.maybe_sent = True
        log.debug("request failed (%s), %d entries to retry", code, len(pending))
        return pending

    def _sort_entries(
        self, response: dict[str, object], pending: list[_Pending], report: SendResult
    ) -> list[_Pending]:
        by_id = {str(i): p for i, p in enumerate(pending)}
        for entry in _entries(response, "Successful"):
            p = by_id.pop(str(entry.get("Id")), None)
            if p is not None:
                p.accepted = True
                report.delivered.append(
                    Delivered(
                        record=p.message.record,
                        index=p.message.index,
                        message_id=str(entry.get("MessageId")),
                        attempts=p.attempts,
                        sequence_number=_optional_str(entry.get("SequenceNumber")),
                    )
                )
                report.delivered_count += 1
                report.bytes_delivered += p.message.size
        retry = []
        for entry in _entries(response, "Failed"):
            p = by_id.pop(str(entry.get("Id")), None)
            if p is None:
                continue
            p.code = str(entry.get("Code") or "Unknown")
            p.reason = str(entry.get("Message") or "")
            if entry.get("SenderFault"):
                report.failed.append(p.failed(sender_fault=True))
            else:
                retry.append(p)
                if is_throttling_entry(p.code):
                    report.throttled += 1
        for p in by_id.values():
            p.code = MISSING_RESULT
            p.reason = "the response listed this entry neither as successful nor as failed"
            retry.append(p)
        return retry


def _halt_behind_failures(
    pending: list[_Pending], report: SendResult, groups: dict[int, object]
) -> list[_Pending]:
    """`pending` without the messages whose group has an earlier message among the batch's
    failures (`groups`: the batch's message indices to their group); those fail with
    `PrecedingMessageFailed` (see `fifo`)."""
    first_failure: dict[object, int] = {}
    for failed in report.failed:
        group = groups.get(failed.index)
        if group is not None and failed.index < first_failure.get(group, failed.index + 1):
            first_failure[group] = failed.index
    keep = []
    for p in pending:
        group = p.message.fields.get("MessageGroupId")
        if group in first_failure and p.message.index > first_failure[group]:
            report.failed.append(halted(p.message, f"message #{first_failure[group]} failed"))
        else:
            keep.append(p)
    return keep


def _overtaken(request: list[_Pending]) -> int:
    """Entries of a request that did not reach SQS while a later entry of their message group
    did: possible only with several messages of a FIFO group in one request."""
    overtaken = 0
    waiting: set[object] = set()  # groups with an earlier entry that did not reach SQS
    for p in request:
        group = p.message.fields.get("MessageGroupId")
        if group is None:
            continue
        if not p.accepted:
            waiting.add(group)
        elif group in waiting:
            overtaken += 1
            waiting.discard(group)
    if overtaken:
        log.debug("%d FIFO group(s) overtaken within a request: out of order in SQS", overtaken)
    return overtaken


def _entries(response: dict[str, object], key: str) -> list[dict[str, object]]:
    entries = response.get(key) or []
    return entries if isinstance(entries, list) else []


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)
