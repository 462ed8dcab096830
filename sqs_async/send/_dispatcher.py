"""Drains a sender's accumulators: bounded concurrency, retries of only what failed, and an
outcome for every message, back through its `Ledger`.

This is the one place where concurrency is bounded: at most `max_in_flight` SendMessageBatch
calls at once, fewer while SQS throttles (`AdaptiveLimit`, unless `adaptive` is off). A slot is
held for the call only. `pump` starts a request whenever a slot is free and an accumulator has
a batch that should go (see `accumulator`); it runs when an entry arrives, a feeder lets go,
a request ends or a backoff passes, so there is no loop to wake and nothing to poll. A queue
may also have a request rate cap (FIFO queues below high throughput).

A failed entry does not retry in a request of its own: the retry policy (tenacity's wait and
stop, `RetryPolicy.backoff`) says how long it waits, and after that it goes back into its
queue's accumulator and leaves with the next request that has room, beside fresh messages.
Entries failing together with the same attempt count wait together (one timer).

Outcomes: each entry's `Delivered` or `Failed`, with the counters of the requests it was in,
goes to its ledger's `absorb`; a queue that refuses for good goes to the ledger's `refuse`.
If a request's task itself dies (a bug), its entries fail with the error's name: nothing is
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
    refusal,
)
from ..results import Failed, SendResult
from ..retry import RetryPolicy, Sleep
from ..wire import WIRE_IDS, EntryError, QueueTraits, SqsClient, read_answer
from ._accumulator import Accumulator, Entry, FifoAccumulator, Ledger
from ._concurrency import AdaptiveLimit

log = logging.getLogger("sqs_async")


class Dispatcher:
    """Sends the entries of every queue a sender writes to, on one client."""

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
        self._client = client
        self._policy = policy
        self.limit = AdaptiveLimit(max_in_flight, adaptive=adaptive, clock=clock)
        self._max_request_bytes = max_request_bytes
        self._request_timeout = request_timeout
        self._sleep = sleep
        self._clock = clock
        self._per_group = fifo_messages_per_group
        self._fifo_rate = fifo_requests_per_second
        self._accumulators: dict[str, Accumulator] = {}
        self._rates: dict[str, AsyncLimiter] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._rate_timer: asyncio.TimerHandle | None = None
        self._closed = False

    def now(self) -> float:
        return self._clock()

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
                per_group=self._per_group,
            )
            if not traits.high_throughput and self._fifo_rate is not None:
                self._rates[queue_url] = AsyncLimiter(self._fifo_rate, 1.0)
        else:
            made = Accumulator(queue_url, traits, max_request_bytes=self._max_request_bytes)
        self._accumulators[queue_url] = made
        return made

    def add(self, accumulator: Accumulator, entry: Entry) -> None:
        if accumulator.add(entry):
            self.pump()

    def let_go(self, accumulator: Accumulator) -> None:
        """A feeder will add nothing more for now: a partly filled batch may go."""
        accumulator.let_go()
        if not accumulator.holders:
            self.pump()

    def pump(self) -> None:
        """Start requests while a slot is free and some accumulator has a batch to send."""
        limit = self.limit
        while limit.has_room() and not self._closed:
            for queue_url, accumulator in self._accumulators.items():
                rate = self._rates.get(queue_url)
                if rate is not None and not rate.has_capacity():
                    self._pump_later(1 / rate.max_rate)
                    continue
                entries = accumulator.take()
                if entries:
                    break
            else:
                return
            if len(self._accumulators) > 1:  # the next pump starts with another queue
                self._accumulators[queue_url] = self._accumulators.pop(queue_url)
            if any(not entry.ledger.live for entry in entries):
                entries = self._drop_dead(accumulator, entries)
                if not entries:
                    continue
            sent_at = limit.acquire()
            task = asyncio.get_running_loop().create_task(
                self._request(accumulator, entries, sent_at)
            )
            self._tasks.add(task)
            task.add_done_callback(partial(self._request_done, entries=entries))

    def expire(self, ledger: Ledger) -> None:
        """`ledger`'s deadline passed: its waiting entries fail with `DeadlineExceeded`."""
        ledger.live = False
        for accumulator in self._accumulators.values():
            gone = accumulator.remove(ledger.owns)
            if gone:
                ledger.absorb(SendResult(failed=[entry.too_late() for entry in gone]))

    def abandon(self, ledger: Ledger) -> None:
        """`ledger`'s call ended early: its waiting entries are dropped, unsent."""
        ledger.live = False
        for accumulator in self._accumulators.values():
            accumulator.remove(ledger.owns)
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

    def _drop_dead(self, accumulator: Accumulator, entries: list[Entry]) -> list[Entry]:
        """Entries whose ledger is no longer live leave the request (they came back from a
        backoff after their deadline or their call's end)."""
        dead = [entry for entry in entries if not entry.ledger.live]
        halted, _ = accumulator.settle(dead, set(), dead)
        for entry in dead:
            entry.ledger.absorb(SendResult(failed=[entry.too_late()]))
        for entry, failed in halted:
            entry.ledger.absorb(SendResult(failed=[failed]))
        return [entry for entry in entries if entry.ledger.live]

    def _request_done(self, task: asyncio.Task[None], entries: list[Entry]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is None:
            return
        # A bug, not an SQS answer: fail what the request carried rather than lose it.
        log.error("a SendMessageBatch task failed", exc_info=error)
        for entry in entries:
            entry.ledger.absorb(
                SendResult(
                    failed=[
                        entry.failed(
                            sender_fault=False,
                            code=type(error).__name__,
                            reason=f"the engine failed while sending: {error}",
                        )
                    ]
                )
            )

    async def _request(
        self, accumulator: Accumulator, entries: list[Entry], sent_at: float
    ) -> None:
        """One request slot's work: a SendMessageBatch call (and, when SQS refuses the
        request for its content, one call per entry)."""
        try:
            await self._call(accumulator, entries, sent_at)
        finally:
            self.limit.release()
            self.pump()

    async def _call(self, accumulator: Accumulator, entries: list[Entry], sent_at: float) -> bool:
        """One SendMessageBatch call and its outcomes; True if an entry failed for good."""
        parts: dict[Ledger, SendResult] = {}
        wire = []
        for entry, wire_id in zip(entries, WIRE_IDS, strict=False):
            part = parts.get(entry.ledger)
            if part is None:
                part = parts[entry.ledger] = SendResult(requests=1)
            entry.attempts += 1
            if entry.attempts > 1:
                part.retried += 1
            if entry.maybe_sent:
                part.possible_duplicates += 1
                entry.maybe_sent = False
            wire.append({"Id": wire_id, **entry.fields})
        rate = self._rates.get(accumulator.queue_url)
        if rate is not None:
            await rate.acquire()
        started = self._clock()
        try:
            async with asyncio.timeout(self._request_timeout):
                response = await self._client.send_message_batch(
                    QueueUrl=accumulator.queue_url, Entries=wire
                )
        except Exception as exc:
            error: Exception | None = exc
        else:
            error = None
        latency = self._clock() - started
        for part in parts.values():
            part.latencies.append(latency)
        if error is not None:
            return await self._call_failed(accumulator, entries, error, sent_at, parts)
        delivered: set[Entry] = set()  # what FIFO groups learn from (see `accumulator`)
        fifo = accumulator.fifo
        rejected: list[Entry] = []
        retry: list[Entry] = []
        throttled = False
        for entry, answer in zip(entries, read_answer(response, len(entries)), strict=True):
            if isinstance(answer, EntryError):
                entry.code, entry.reason = answer.code, answer.reason
                if answer.sender_fault:
                    rejected.append(entry)
                    continue
                retry.append(entry)
                if kind_of(answer.code) is Kind.THROTTLING:
                    throttled = True
                    parts[entry.ledger].throttled += 1
                continue
            if fifo:
                delivered.add(entry)
            part = parts[entry.ledger]
            if entry.ledger.keeps_delivered:
                part.delivered.append(entry.delivered(str(answer.get("MessageId")), _text(answer)))
            part.delivered_count += 1
            part.bytes_delivered += entry.size
        if throttled:
            self.limit.congested(sent_at)
        else:
            self.limit.succeeded()
        return self._conclude(accumulator, entries, delivered, rejected, retry, parts)

    async def _call_failed(
        self,
        accumulator: Accumulator,
        entries: list[Entry],
        error: Exception,
        sent_at: float,
        parts: dict[Ledger, SendResult],
    ) -> bool:
        """The whole request failed: refused for good, refused for its content, or not
        carried out (throttling, 5xx, timeout, connection)."""
        if is_congestion(error):
            self.limit.congested(sent_at)
        kind = classify(error)
        code = error_code(error)
        if kind is Kind.FATAL:
            self._refused(accumulator, entries, refusal(error, code, accumulator.queue_url), parts)
            return True
        if kind is Kind.REJECTED and len(entries) > 1:
            # Refused for its content: each entry goes on its own, so that one bad message
            # cannot fail its neighbours.
            log.debug("request rejected (%s); isolating %d entries", code, len(entries))
            self._absorb(parts)
            stopped: dict[object, str] = {}  # FIFO group -> why: its later entries stay
            for entry in entries:
                group = entry.fields.get("MessageGroupId") if accumulator.fifo else None
                if group in stopped:
                    self._halt(accumulator, entry, stopped[group])
                elif (
                    entry.ledger.live
                    and await self._call(accumulator, [entry], self._clock())
                    and group is not None
                ):
                    stopped[group] = f"message #{entry.message.index} failed ({entry.code})"
            return False
        for entry in entries:
            entry.code, entry.reason = code, str(error) or type(error).__name__
        if kind is Kind.REJECTED:
            return self._conclude(accumulator, entries, set(), entries, [], parts)
        if kind is Kind.THROTTLING:
            for part in parts.values():
                part.throttled += 1
        if may_have_been_accepted(error):
            for entry in entries:
                entry.maybe_sent = True
        log.debug("request failed (%s), %d entries to retry", code, len(entries))
        return self._conclude(accumulator, entries, set(), [], entries, parts)

    def _conclude(
        self,
        accumulator: Accumulator,
        request: list[Entry],
        delivered: set[Entry],
        rejected: list[Entry],
        retry: list[Entry],
        parts: dict[Ledger, SendResult],
    ) -> bool:
        """Fail what failed for good, schedule the retries, report every outcome; True if
        something failed for good."""
        waits: dict[tuple[int, float | None], float | None] = {}
        later: dict[float, list[Entry]] = {}
        gave_up: list[Entry] = []
        for entry in retry:
            key = (entry.attempts, entry.ledger.deadline_at)
            if key not in waits:
                waits[key] = self._policy.backoff(
                    entry.attempts, deadline_at=key[1], clock=self._clock
                )
            wait = waits[key]
            if wait is None or not entry.ledger.live:
                gave_up.append(entry)
            else:
                later.setdefault(wait, []).append(entry)
        halted, reordered = accumulator.settle(request, delivered, rejected + gave_up)
        for entry in rejected:
            parts[entry.ledger].failed.append(entry.failed(sender_fault=True))
        for entry in gave_up:
            parts[entry.ledger].failed.append(self._given_up(entry))
        stopped = set()
        for entry, failed in halted:
            stopped.add(entry)
            parts.setdefault(entry.ledger, SendResult()).failed.append(failed)
        if reordered:
            log.debug("%d FIFO group(s) overtaken within a request: out of order", reordered)
            parts[request[0].ledger].reordered += reordered
        for wait, entries in later.items():
            if stopped:
                entries = [entry for entry in entries if entry not in stopped]
            if entries:
                self._back_off(accumulator, entries, wait)
        self._absorb(parts)
        return bool(rejected or gave_up)

    def _halt(self, accumulator: Accumulator, entry: Entry, why: str) -> None:
        """`entry` is not sent: an earlier entry of its FIFO group failed for good."""
        halted, _ = accumulator.settle([entry], set(), [entry])
        entry.ledger.absorb(SendResult(failed=[entry.halted(why)]))
        for follower, failed in halted:
            follower.ledger.absorb(SendResult(failed=[failed]))

    def _given_up(self, entry: Entry) -> Failed:
        if entry.attempts < self._policy.max_trials:  # stopped by the deadline
            return entry.failed(
                sender_fault=False,
                code=DEADLINE_EXCEEDED,
                reason=f"deadline passed before a retry; last: {entry.code}: {entry.reason}",
            )
        return entry.failed(sender_fault=False)

    def _refused(
        self,
        accumulator: Accumulator,
        request: list[Entry],
        error: Any,
        parts: dict[Ledger, SendResult],
    ) -> None:
        """The queue refused a request for good: each ledger in it decides what that means
        for its messages to that queue (see `Ledger.refuse`)."""
        ledgers = list(parts)
        waiting = {ledger: accumulator.remove(ledger.owns) for ledger in ledgers}
        halted, _ = accumulator.settle(request, set(), request)
        self._absorb(parts)
        for entry, failed in halted:
            entry.ledger.absorb(SendResult(failed=[failed]))
        for ledger in ledgers:
            mine = [entry for entry in request if entry.ledger is ledger]
            ledger.refuse(error, accumulator.queue_url, mine + waiting[ledger])

    def _back_off(self, accumulator: Accumulator, entries: list[Entry], wait: float) -> None:
        async def later() -> None:
            await self._sleep(wait)
            accumulator.requeue(entries)
            self.pump()

        task = asyncio.get_running_loop().create_task(later())
        self._tasks.add(task)
        task.add_done_callback(partial(self._request_done, entries=entries))

    @staticmethod
    def _absorb(parts: dict[Ledger, SendResult]) -> None:
        for ledger, part in parts.items():
            ledger.absorb(part)
        parts.clear()


def _text(answer: Any) -> str | None:
    value = answer.get("SequenceNumber")
    return None if value is None else str(value)
