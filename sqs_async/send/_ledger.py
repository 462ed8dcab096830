"""Ledgers: where the outcomes of messages go, the one channel back from the engine.

A message ends in exactly one `absorb`ed part: a `SendResult` holding its `Delivered` or
`Failed`, with the counters of the requests it was in. That is so wherever it ends: before any
request (rejected by validation, not routable, too late, its payload stage failed: `fail`,
a part of one) or in the dispatcher (delivered, failed, halted behind a FIFO failure, expired).
A queue that refuses for good is reported with `refuse`: each ledger decides what that means
for its messages to that queue.

`SendLedger` gathers one `SqsSender.send` call's `SendResult` and counts the call's unresolved
messages (the call waits on that for room and for its end). `ProducerLedger` resolves each of
a producer's messages' future, gives its room back, and keeps the producer's counters
(`SqsProducer.stats`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import SqsAsyncError
from ..results import Delivered, Failed, SendResult

if TYPE_CHECKING:
    from ._accumulator import Pending

Outcome = Delivered | Failed


class Ledger:
    """Where the outcomes of one `send` call, or of one producer, go.

    A ledger that is no longer `live` (its call ended early, its deadline passed, its queue
    refused) gets no more of its messages sent. `halted` holds the FIFO groups (queue URL,
    group) that its later messages may not join, with why (see `halt`).
    """

    # A message that fails for good halts the rest of its FIFO group for the ledger's life
    # (a bulk send does; a producer fails only what is queued behind the failure).
    halts_groups = False
    # Whether outcomes carry each `Delivered` (else only the count: flat memory, less work).
    keeps_delivered = True

    def __init__(self, deadline_at: float | None = None) -> None:
        self.deadline_at = deadline_at
        self.live = True
        self.halted: dict[tuple[str, str], str] = {}  # (queue URL, group) -> why

    def owns(self, pending: Pending) -> bool:
        return pending.ledger is self

    def absorb(self, part: SendResult) -> None:
        """The outcomes in `part`, and the counters of the requests they were in."""
        raise NotImplementedError

    def fail(self, failed: Failed) -> None:
        """A message that ended before it reached a request."""
        self.absorb(SendResult(failed=[failed]))

    def refuse(self, error: SqsAsyncError, queue_url: str, lost: list[Pending]) -> None:
        """`queue_url` refused a request for good; `lost`: this ledger's messages that were
        in it or waiting for it (no longer in any accumulator)."""
        raise NotImplementedError

    def halt(self, queue_url: str, group: Any, why: str) -> None:
        """A message of FIFO `group` was rejected before any request: with `halts_groups`,
        the group's later messages are halted (what is queued already still goes)."""
        if self.halts_groups and isinstance(group, str):
            self.halted[(queue_url, group)] = why


class SendLedger(Ledger):
    """The outcomes of one `send` call, gathered into its `SendResult`.

    `unresolved` counts the messages read and not ended yet: the call adds one per message
    it reads; each outcome absorbed takes one off.
    """

    halts_groups = True

    def __init__(
        self,
        result: SendResult,
        keep_delivered: bool,
        deadline_at: float | None,
        *,
        dynamic: bool,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(deadline_at)
        self._clock = clock
        self.result = result
        self.keeps_delivered = keep_delivered
        self.dynamic = dynamic
        self.unresolved = 0
        self.error: SqsAsyncError | None = None
        # Per call, with dynamic routing: queue -> why it cannot be found; queue URL -> its
        # refusal. Each record bound there fails with its own `Failed` built from these.
        self.unreachable: dict[str, SqsAsyncError] = {}
        self.refused: dict[str, SqsAsyncError] = {}
        self._wake: asyncio.Future[None] | None = None

    def absorb(self, part: SendResult) -> None:
        if self.error is not None:
            return  # the call raised; nobody reads this result
        self.result.absorb(part, keep_delivered=self.keeps_delivered)
        ended = part.delivered_count + len(part.failed)
        if ended:
            self.unresolved -= ended
            self._notify()

    def refuse(self, error: SqsAsyncError, queue_url: str, lost: list[Pending]) -> None:
        """With dynamic routing the queue's messages of this call fail; otherwise the call
        raises `error` (no message can be delivered)."""
        if not self.dynamic:
            self.error = self.error or error
            self.live = False
            self._notify()
            return
        self.refused[queue_url] = error
        self.absorb(
            SendResult(
                failed=[
                    pending.failed(sender_fault=True, code=error.code, reason=str(error))
                    for pending in lost
                ]
            )
        )

    async def room(self, room: int) -> bool:
        """Wait until at most `room` messages are unresolved; False if the deadline passed
        first."""
        return await self.wait(lambda: self.unresolved <= room)

    async def wait(self, ready: Callable[[], bool]) -> bool:
        """Wait until `ready()` (asked again on each outcome and each `wake`) or the call
        must raise; False if the deadline passed first."""
        remaining = None
        if self.deadline_at is not None:
            remaining = max(0.0, self.deadline_at - self._clock())
        try:
            async with asyncio.timeout(remaining):
                await self._until(ready)
        except TimeoutError:
            return False
        return True

    def wake(self) -> None:
        """Something a waiter may be waiting for changed (records left the stage)."""
        self._notify()

    async def settled(self) -> None:
        """Wait until every message is resolved (or the call must raise)."""
        await self._until(lambda: self.unresolved == 0)

    async def _until(self, ready: Callable[[], bool]) -> None:
        while not ready() and self.error is None:
            self._wake = asyncio.get_running_loop().create_future()
            await self._wake

    def _notify(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)


class ProducerLedger(Ledger):
    """The outcomes of a producer's messages, each to its future, and the producer's counters.

    `room` holds one token per message accepted and not resolved (a bounded queue is the
    public way to have both a waiting and a non-waiting acquire); each outcome gives its
    token back. `counters` sums the requests' counters (`delivered` and `failed` stay empty:
    the futures carry the outcomes).
    """

    def __init__(self, max_buffered: int) -> None:
        super().__init__()
        self.counters = SendResult()
        self.room: asyncio.Queue[None] = asyncio.Queue(maxsize=max_buffered)
        self.waiting: dict[int, tuple[asyncio.Future[Outcome], Any]] = {}
        self.error: SqsAsyncError | None = None

    def expect(self, number: int, record: Any) -> asyncio.Future[Outcome]:
        """The future of message `number` (`record`), which has taken a token of `room`."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.waiting[number] = (future, record)
        return future

    def absorb(self, part: SendResult) -> None:
        waiting = self.waiting
        for outcomes in (part.delivered, part.failed):
            for outcome in outcomes:
                found = waiting.pop(outcome.index, None)
                if found is None:
                    continue
                self.room.get_nowait()
                future = found[0]
                if not future.done():  # unless the caller cancelled it
                    future.set_result(outcome)
        part.failed = []
        part.latencies = []  # one per request for the producer's life: not kept (flat memory)
        self.counters.absorb(part, keep_delivered=False)

    def refuse(self, error: SqsAsyncError, queue_url: str, lost: list[Pending]) -> None:
        """The queue refused for good: every outstanding future and later `put` get `error`."""
        self.error = error
        self.live = False
        for future, _ in self.waiting.values():
            if not future.done():
                future.set_exception(error)
        self._release_all()

    def give_up(self, failed: Callable[[int, Any], Failed]) -> None:
        """Resolve every outstanding message with `failed(number, record)` (the producer is
        closing and will not wait longer): nothing is left hanging."""
        self.absorb(
            SendResult(
                failed=[
                    failed(number, record)
                    for number, (future, record) in self.waiting.items()
                    if not future.done()
                ]
            )
        )
        self._release_all()  # the messages whose caller cancelled the future

    def _release_all(self) -> None:
        for _ in range(len(self.waiting)):
            self.room.get_nowait()
        self.waiting.clear()
