"""Drains the engine's accumulators: bounded concurrency, retries of only what failed, and an
outcome for every message, back through its ledger.

Concurrency of send requests is bounded here: at most `max_in_flight` SendMessageBatch calls
at once, fewer while SQS throttles (`AdaptiveLimit`, unless `adaptive` is off). A slot is held
for the call only. `pump` starts a request whenever a slot is free and an accumulator has a
batch that should go (see `_accumulator`); it runs when an accumulator has one ready (a
message arrives, a feeder lets go), a request ends or a backoff passes, so there is no loop
to wake and nothing to poll. A queue
may also have a request rate cap (FIFO queues below high throughput).

Each request is one `Request` (aiokafka's `SendProduceReqHandler`): it makes the call and reads
the answer. A failed message does not retry in a request of its own: the retry policy
(tenacity's wait and stop, `RetryPolicy.backoff`) says how long it waits, and after that it
goes back into its queue's accumulator and leaves with the next request that has room, beside
fresh messages. Messages failing together with the same attempt count wait together (one
timer).

Outcomes: each message's `Delivered` or `Failed`, with the counters of the requests it was in,
goes to its ledger's `absorb`; a queue that refuses for good goes to the ledger's `refuse`.
If a request's task itself dies (a bug), its messages fail with the error's name: nothing is
left unaccounted for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from aiolimiter import AsyncLimiter

from ..errors import (
    DEADLINE_EXCEEDED,
    Kind,
    classify,
    error_code,
    is_congestion,
    kind_of,
    may_have_been_accepted,
    never_reached,
    refusal,
)
from ..results import Failed, SendResult
from ..retry import RetryPolicy, Sleep
from ..wire import WIRE_IDS, EntryError, QueueTraits, SqsClient, read_answer
from ._accumulator import Accumulator, FifoAccumulator, Pending
from ._concurrency import AdaptiveLimit
from ._ledger import Ledger

log = logging.getLogger("sqs_async")


class Dispatcher:
    """Sends the messages of every queue an engine writes to, on one client."""

    def __init__(
        self,
        *,
        client: SqsClient,
        policy: RetryPolicy,
        max_in_flight: int,
        max_request_bytes: int,
        request_timeout: float,
        sleep: Sleep,
        adaptive: bool = True,
        fifo_messages_per_group: int = 1,
        fifo_requests_per_second: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.policy = policy
        self.limit = AdaptiveLimit(max_in_flight, adaptive=adaptive, clock=clock)
        self.request_timeout = request_timeout
        self.now = clock
        self._max_request_bytes = max_request_bytes
        self._sleep = sleep
        self._per_group = fifo_messages_per_group
        self._fifo_rate = fifo_requests_per_second
        self._accumulators: dict[str, Accumulator] = {}
        self.rates: dict[str, AsyncLimiter] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._rate_timer: asyncio.TimerHandle | None = None
        self._closed = False

    def accumulator(self, queue_url: str, traits: QueueTraits) -> Accumulator:
        """The accumulator of `queue_url`, made on first use."""
        found = self._accumulators.get(queue_url)
        if found is not None:
            return found
        made: Accumulator
        if traits.fifo:
            made = FifoAccumulator(
                queue_url,
                traits,
                max_request_bytes=self._max_request_bytes,
                ready=self.pump,
                per_group=self._per_group,
            )
            if not traits.high_throughput and self._fifo_rate is not None:
                self.rates[queue_url] = AsyncLimiter(self._fifo_rate, 1.0)
        else:
            made = Accumulator(
                queue_url, traits, max_request_bytes=self._max_request_bytes, ready=self.pump
            )
        self._accumulators[queue_url] = made
        return made

    def pump(self) -> None:
        """Start requests while a slot is free and some accumulator has a batch to send."""
        limit = self.limit
        while limit.has_room() and not self._closed:
            for queue_url, accumulator in self._accumulators.items():
                rate = self.rates.get(queue_url)
                if rate is not None and not rate.has_capacity():
                    self._pump_later(1 / rate.max_rate)
                    continue
                batch = accumulator.take()
                if batch:
                    break
            else:
                return
            if len(self._accumulators) > 1:  # the next pump starts with another queue
                self._accumulators[queue_url] = self._accumulators.pop(queue_url)
            for pending in batch:
                if not pending.ledger.live:
                    batch = self._drop_dead(accumulator, batch)
                    break
            if not batch:
                continue
            request = Request(self, accumulator, batch, limit.acquire())
            task = asyncio.get_running_loop().create_task(request.send())
            self._watch(task, batch, holds_slot=True)

    def retry_later(self, accumulator: Accumulator, batch: list[Pending], wait: float) -> None:
        """`batch` goes back into `accumulator` after `wait` seconds (its backoff)."""

        async def later() -> None:
            await self._sleep(wait)
            accumulator.requeue(batch)
            self.pump()

        self._watch(asyncio.get_running_loop().create_task(later()), batch)

    def expire(self, ledger: Ledger) -> None:
        """`ledger`'s deadline passed: its waiting messages fail with `DeadlineExceeded`."""
        ledger.live = False
        for accumulator in self._accumulators.values():
            gone = accumulator.remove(ledger.owns)
            if gone:
                ledger.absorb(SendResult(failed=[pending.too_late() for pending in gone]))

    def abandon(self, ledger: Ledger) -> None:
        """`ledger`'s call ended early: its waiting messages are dropped, unsent."""
        ledger.live = False
        for accumulator in self._accumulators.values():
            for pending in accumulator.remove(ledger.owns):
                pending.abandoned()
        self.pump()

    async def close(self) -> None:
        """Stop every request and backoff timer (their callers have given up on them)."""
        self._closed = True
        if self._rate_timer is not None:
            self._rate_timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _pump_later(self, delay: float) -> None:
        if self._rate_timer is None:

            def pump() -> None:
                self._rate_timer = None
                self.pump()

            self._rate_timer = asyncio.get_running_loop().call_later(delay, pump)

    def _drop_dead(self, accumulator: Accumulator, batch: list[Pending]) -> list[Pending]:
        """Messages whose ledger is no longer live leave the request (they came back from a
        backoff after their deadline or their call's end)."""
        dead = [pending for pending in batch if not pending.ledger.live]
        halted, _ = accumulator.settle(dead, set(), dead)
        for pending in dead:
            pending.ledger.fail(pending.too_late())
        for pending, failed in halted:
            pending.ledger.fail(failed)
        return [pending for pending in batch if pending.ledger.live]

    def _watch(
        self, task: asyncio.Task[Any], batch: list[Pending], holds_slot: bool = False
    ) -> None:
        """Keep `task` (a request, or a backoff) until it ends; then free its request slot,
        if it holds one, and fail what it carried if it died."""
        self._tasks.add(task)
        task.add_done_callback(partial(self._task_done, batch=batch, holds_slot=holds_slot))

    def _task_done(self, task: asyncio.Task[Any], batch: list[Pending], holds_slot: bool) -> None:
        self._tasks.discard(task)
        if holds_slot:
            self.limit.release()
            self.pump()
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            return
        # A bug, not an SQS answer: fail what the request carried rather than lose it.
        log.error("a SendMessageBatch task failed", exc_info=error)
        for pending in batch:
            pending.undelivered = None  # it may have reached SQS
            pending.ledger.fail(
                pending.failed(
                    sender_fault=False,
                    code=type(error).__name__,
                    reason=f"the engine failed while sending: {error}",
                )
            )


class Request:
    """One SendMessageBatch request and what its answer means for each message in it:
    delivered, rejected (`SenderFault`), retried after a backoff, or given up. Each ledger
    with messages in it gets one part: its outcomes and the request's counters."""

    __slots__ = ("_dispatcher", "accumulator", "batch", "parts", "sent_at")

    def __init__(
        self, dispatcher: Dispatcher, accumulator: Accumulator, batch: list[Pending], sent_at: float
    ) -> None:
        self._dispatcher = dispatcher
        self.accumulator = accumulator
        self.batch = batch
        self.sent_at = sent_at
        self.parts: dict[Ledger, SendResult] = {}

    async def send(self) -> bool:
        """The call and its outcomes (and, when SQS rejects the request for its content, one
        call per message); True if a message failed for good. A request slot is held for it
        (the dispatcher frees it when the task ends)."""
        dispatcher = self._dispatcher
        parts = self.parts
        wire = []
        for pending, wire_id in zip(self.batch, WIRE_IDS, strict=False):
            part = parts.get(pending.ledger)
            if part is None:
                part = parts[pending.ledger] = SendResult(requests=1)
            pending.attempts += 1
            if pending.attempts > 1:
                part.retried += 1
            if pending.maybe_sent:
                part.possible_duplicates += 1
                pending.maybe_sent = False
            wire.append({"Id": wire_id, **pending.fields})
        queue_url = self.accumulator.queue_url
        rate = dispatcher.rates.get(queue_url)
        if rate is not None:
            await rate.acquire()
        started = dispatcher.now()
        try:
            async with asyncio.timeout(dispatcher.request_timeout):
                response = await dispatcher.client.send_message_batch(
                    QueueUrl=queue_url, Entries=wire
                )
        except Exception as exc:
            error: Exception | None = exc
        else:
            error = None
        latency = dispatcher.now() - started
        for part in parts.values():
            part.latencies.append(latency)
        if error is not None:
            return await self._failed(error)
        return self._answered(response)

    def _answered(self, response: Any) -> bool:
        """SQS answered: each message delivered, rejected or to be retried."""
        parts = self.parts
        batch = self.batch
        fifo = self.accumulator.fifo
        delivered: set[Pending] = set()  # what FIFO groups learn from (see `_accumulator`)
        rejected: list[Pending] = []
        retry: list[Pending] = []
        throttled = False
        for pending, answer in zip(batch, read_answer(response, len(batch)), strict=True):
            if isinstance(answer, EntryError):
                pending.code, pending.reason = answer.code, answer.reason
                if answer.sender_fault:
                    rejected.append(pending)
                    continue
                retry.append(pending)
                if kind_of(answer.code) is Kind.THROTTLING:
                    throttled = True
                    parts[pending.ledger].throttled += 1
                continue
            if fifo:
                delivered.add(pending)
            part = parts[pending.ledger]
            if pending.ledger.keeps_delivered:
                sequence = answer.get("SequenceNumber")
                part.delivered.append(
                    pending.delivered(
                        str(answer.get("MessageId")), None if sequence is None else str(sequence)
                    )
                )
            part.delivered_count += 1
            part.bytes_delivered += pending.size
        limit = self._dispatcher.limit
        if throttled:
            limit.congested(self.sent_at)
        else:
            limit.succeeded()
        if not (fifo or rejected or retry):  # all delivered, no group to move on
            for ledger, part in parts.items():
                ledger.absorb(part)
            return False
        return self._conclude(delivered, rejected, retry)

    async def _failed(self, error: Exception) -> bool:
        """The whole request failed: refused for good, rejected for its content, or not
        carried out (throttling, 5xx, timeout, connection)."""
        dispatcher = self._dispatcher
        accumulator = self.accumulator
        batch = self.batch
        if is_congestion(error):
            dispatcher.limit.congested(self.sent_at)
        kind = classify(error)
        code = error_code(error)
        if kind is Kind.FATAL:
            self._refused(refusal(error, code, accumulator.queue_url))
            return True
        if kind is Kind.REJECTED and len(batch) > 1:
            # Rejected for its content: each message goes on its own, so that one bad message
            # cannot fail its neighbours.
            log.debug("request rejected (%s); isolating %d messages", code, len(batch))
            self._absorb()
            stopped: dict[object, str] = {}  # FIFO group -> why: its later messages stay
            for pending in batch:
                group = pending.fields.get("MessageGroupId") if accumulator.fifo else None
                if group in stopped:
                    self._halt(pending, stopped[group])
                elif (
                    pending.ledger.live
                    and await Request(dispatcher, accumulator, [pending], dispatcher.now()).send()
                    and group is not None
                ):
                    stopped[group] = f"message #{pending.message.index} failed ({pending.code})"
            return False
        for pending in batch:
            pending.code, pending.reason = code, str(error) or type(error).__name__
        if kind is Kind.REJECTED:
            return self._conclude(set(), batch, [])
        if kind is Kind.THROTTLING:
            for part in self.parts.values():
                part.throttled += 1
        if may_have_been_accepted(error):
            for pending in batch:
                pending.maybe_sent = True
        if not never_reached(error):
            for pending in batch:
                pending.undelivered = None  # it may be delivered: its payload may be needed
        log.debug("request failed (%s), %d messages to retry", code, len(batch))
        return self._conclude(set(), [], batch)

    def _conclude(
        self, delivered: set[Pending], rejected: list[Pending], retry: list[Pending]
    ) -> bool:
        """Fail what failed for good, schedule the retries, report every outcome; True if
        something failed for good."""
        dispatcher = self._dispatcher
        policy = dispatcher.policy
        parts = self.parts
        waits: dict[tuple[int, float | None], float | None] = {}
        later: dict[float, list[Pending]] = {}
        gave_up: list[Pending] = []
        for pending in retry:
            key = (pending.attempts, pending.ledger.deadline_at)
            if key not in waits:
                waits[key] = policy.backoff(
                    pending.attempts, deadline_at=key[1], clock=dispatcher.now
                )
            wait = waits[key]
            if wait is None or not pending.ledger.live:
                gave_up.append(pending)
            else:
                later.setdefault(wait, []).append(pending)
        halted, reordered = self.accumulator.settle(self.batch, delivered, rejected + gave_up)
        for pending in rejected:
            parts[pending.ledger].failed.append(pending.failed(sender_fault=True))
        for pending in gave_up:
            parts[pending.ledger].failed.append(self._given_up(pending))
        stopped = set()
        for pending, failed in halted:
            stopped.add(pending)
            parts.setdefault(pending.ledger, SendResult()).failed.append(failed)
        if reordered:
            log.debug("%d FIFO group(s) overtaken within a request: out of order", reordered)
            parts[self.batch[0].ledger].reordered += reordered
        for wait, waiting in later.items():
            if stopped:
                waiting = [pending for pending in waiting if pending not in stopped]
            if waiting:
                dispatcher.retry_later(self.accumulator, waiting, wait)
        self._absorb()
        return bool(rejected or gave_up)

    def _halt(self, pending: Pending, why: str) -> None:
        """`pending` is not sent: an earlier message of its FIFO group failed for good."""
        halted, _ = self.accumulator.settle([pending], set(), [pending])
        pending.ledger.fail(pending.halted(why))
        for follower, failed in halted:
            follower.ledger.fail(failed)

    def _given_up(self, pending: Pending) -> Failed:
        if pending.attempts < self._dispatcher.policy.max_trials:  # stopped by the deadline
            return pending.failed(
                sender_fault=False,
                code=DEADLINE_EXCEEDED,
                reason=f"deadline passed before a retry; last: {pending.code}: {pending.reason}",
            )
        return pending.failed(sender_fault=False)

    def _refused(self, error: Any) -> None:
        """The queue refused a request for good: each ledger in it decides what that means
        for its messages to that queue (see `Ledger.refuse`)."""
        accumulator = self.accumulator
        request = self.batch
        ledgers = list(self.parts)
        waiting = {ledger: accumulator.remove(ledger.owns) for ledger in ledgers}
        halted, _ = accumulator.settle(request, set(), request)
        self._absorb()
        for pending, failed in halted:
            pending.ledger.fail(failed)
        for ledger in ledgers:
            mine = [pending for pending in request if pending.ledger is ledger]
            ledger.refuse(error, accumulator.queue_url, mine + waiting[ledger])

    def _absorb(self) -> None:
        parts = self.parts
        for ledger, part in parts.items():
            ledger.absorb(part)
        parts.clear()
