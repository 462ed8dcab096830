"""`SqsProducer`: the streaming way in, for long-running async programs.

Sending is two steps, as in aiokafka: `put` queues one message and returns a future; the
future resolves to its `Delivered` or `Failed` once SQS has answered. Behind it, a message
takes the path of a bulk `send` (see `sender`): the same admission and validation, the same
accumulator of the queue and dispatcher, so the same retries, concurrency bound and
accounting. A partly filled batch waits at most `linger` seconds for more messages.

Memory is bounded: at most `max_buffered` messages are accepted and not yet resolved; `put`
waits for room beyond that (`put_nowait` raises `ProducerFull`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from .._lifecycle import AsyncResource
from ..checks import check_number
from ..config import SenderConfig
from ..errors import CLOSED_BEFORE_CONFIRMATION, ProducerFull, SqsClientError
from ..results import Delivered, Failed, SendResult
from ..retry import Sleep, default_sleep
from ..wire import SqsClient
from ._accumulator import Accumulator, Entry, Ledger
from ._sender import SqsSender

log = logging.getLogger("sqs_async")

Outcome = Delivered | Failed


class SqsProducer(AsyncResource):
    """Batches messages put one at a time and sends them to one SQS queue.

        async with SqsProducer(queue_url=url, linger=0.005) as producer:
            future = await producer.put({"MessageBody": "hello"})
            outcome = await future          # Delivered or Failed

    Settings are `SenderConfig` fields (or a `config`), plus `linger` (seconds a partly filled
    batch may wait, default 5 ms), `max_buffered` (messages accepted and not yet resolved,
    default 10,000) and `close_timeout` (seconds `close` waits for outstanding messages before
    resolving them as `Failed` with code `ClosedBeforeConfirmation`, default 30). Leaving the
    context flushes and closes. If the queue refuses every request (`SqsClientError`), every
    outstanding future gets that exception and later `put` calls raise it.

    On a FIFO queue each message group is sent in the order of `put`, one message per group
    at a time; when a message fails, the messages of its group already queued behind it fail
    with code `PrecedingMessageFailed` (see `sqs_async.fifo`); later ones are sent. The producer
    writes to one queue: for routing records to many queues, use `SqsSender`.
    """

    def __init__(
        self,
        config: SenderConfig | None = None,
        *,
        linger: float = 0.005,
        max_buffered: int = 10_000,
        close_timeout: float = 30.0,
        client: SqsClient | None = None,
        sleep: Sleep = default_sleep,
        clock: Callable[[], float] = time.monotonic,
        **settings: Any,
    ) -> None:
        config = SenderConfig.merge(config, settings)
        if config.route is not None:
            raise ValueError("SqsProducer writes to one queue; SqsSender routes to many")
        check_number("linger", linger, low=0)
        check_number("max_buffered", max_buffered, low=1, integer=True)
        check_number("close_timeout", close_timeout, low=0)
        self.config = config
        self.linger = float(linger)
        self.max_buffered = max_buffered
        self.close_timeout = float(close_timeout)
        self._sender = SqsSender(config, client=client, sleep=sleep, clock=clock)
        # One token per accepted, unresolved message: a bounded queue is the public way to
        # have both a waiting and a non-waiting acquire.
        self._room: asyncio.Queue[None] = asyncio.Queue(maxsize=max_buffered)
        self._waiting: dict[int, tuple[asyncio.Future[Outcome], Any]] = {}
        self._numbers = itertools.count()
        self._ledger = _ProducerLedger(self)
        self._accumulator: Accumulator | None = None
        self._linger_timer: asyncio.TimerHandle | None = None  # set while holding a batch
        self._closing = False
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"SqsProducer({self.config!r})"

    async def open(self) -> None:
        await self._sender.open()
        self._accumulator = self._sender.dispatcher.accumulator(
            self._sender.queue_url, self._sender.traits
        )

    @property
    def pending(self) -> int:
        """Messages accepted and not yet resolved."""
        return len(self._waiting)

    async def put(self, message: Any) -> asyncio.Future[Outcome]:
        """Queue `message`; wait while `max_buffered` messages are outstanding."""
        self._check_open()
        await self._room.put(None)
        return self._accept(message)

    def put_nowait(self, message: Any) -> asyncio.Future[Outcome]:
        """Queue `message` or raise `ProducerFull` at once."""
        self._check_open()
        try:
            self._room.put_nowait(None)
        except asyncio.QueueFull:
            raise ProducerFull(f"{self.max_buffered} messages are waiting to be sent") from None
        return self._accept(message)

    async def send(self, message: Any) -> Outcome:
        """Queue `message` and wait for its outcome."""
        return await (await self.put(message))

    async def flush(self) -> None:
        """Send what is buffered now and wait until every accepted message is resolved."""
        self._check_open()
        self._let_go()
        waiting = [f for f, _ in self._waiting.values() if not f.done()]
        if waiting:
            await asyncio.wait(waiting)

    async def close(self) -> None:
        """Send what is buffered, wait up to `close_timeout`, resolve the rest, close."""
        if self._accumulator is None:
            return
        self._closing = True
        self._let_go()
        waiting = [f for f, _ in self._waiting.values() if not f.done()]
        try:
            if waiting:
                await asyncio.wait(waiting, timeout=self.close_timeout)
        finally:
            self._give_up_outstanding()
            self._sender.dispatcher.abandon(self._ledger)
            self._accumulator = None
            await self._sender.close()

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._accumulator is None or self._closing:
            raise RuntimeError("the producer is not open: use `async with SqsProducer(...)`")

    def _accept(self, message: Any) -> asyncio.Future[Outcome]:
        accumulator = self._accumulator
        assert accumulator is not None, "checked open"
        number = next(self._numbers)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        entry = self._sender.admit(message, number, self._ledger, accumulator)
        if isinstance(entry, Failed):
            future.set_result(entry)
            self._room.get_nowait()
            return future
        self._waiting[number] = (future, message)
        if self._linger_timer is None:  # hold the partly filled batch for `linger`
            accumulator.hold()
            self._linger_timer = asyncio.get_running_loop().call_later(self.linger, self._let_go)
        self._sender.dispatcher.add(accumulator, entry)
        return future

    def _let_go(self) -> None:
        """Let the partly filled batch go (the linger passed, or a flush or close)."""
        if self._linger_timer is None or self._accumulator is None:
            return
        self._linger_timer.cancel()
        self._linger_timer = None
        self._sender.dispatcher.let_go(self._accumulator)

    def _settle(self, outcomes: Sequence[Outcome]) -> None:
        """Give each outcome to its future (unless the caller cancelled it) and free its room."""
        for outcome in outcomes:
            future, _ = self._waiting.get(outcome.index, (None, None))
            if future is not None and not future.done():
                future.set_result(outcome)
        self._release([outcome.index for outcome in outcomes])

    def _fail_all(self, error: SqsClientError) -> None:
        """The queue refused for good: every outstanding future and later `put` get `error`."""
        self._error = error
        for future, _ in self._waiting.values():
            if not future.done():
                future.set_exception(error)
        self._release(list(self._waiting))
        self._sender.dispatcher.abandon(self._ledger)

    def _release(self, numbers: list[int]) -> None:
        for number in numbers:
            if self._waiting.pop(number, None) is not None:
                self._room.get_nowait()

    def _give_up_outstanding(self) -> None:
        """Resolve whatever close could not wait for; nothing is left hanging."""
        for number, (future, record) in list(self._waiting.items()):
            if not future.done():
                future.set_result(
                    Failed(
                        record=record,
                        index=number,
                        code=CLOSED_BEFORE_CONFIRMATION,
                        message=f"the producer closed after {self.close_timeout:g}s before SQS "
                        "confirmed this message; it may or may not have been delivered",
                        sender_fault=False,
                        attempts=0,
                    )
                )
        self._release(list(self._waiting))


class _ProducerLedger(Ledger):
    """The outcomes of a producer's messages, each to its future."""

    def __init__(self, producer: SqsProducer) -> None:
        super().__init__()
        self._producer = producer

    def absorb(self, part: SendResult) -> None:
        self._producer._settle([*part.delivered, *part.failed])

    def refuse(self, error: SqsClientError, queue_url: str, entries: list[Entry]) -> None:
        self._producer._fail_all(error)
