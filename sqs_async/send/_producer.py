"""`SqsProducer`: the streaming way in, for long-running async programs.

Sending is two steps, as in aiokafka: `put` queues one message and returns a future; the
future resolves to its `Delivered` or `Failed` once SQS has answered. Behind it, a message
takes the path of a bulk `send` (see `_sender`): the producer owns an engine of its own, with
the same admission (record functions, payload stage, validation), accumulator and
dispatcher, so the same retries, concurrency bound and accounting. A partly filled batch
waits at most `linger` seconds for more messages.

With a payload stage, `put` hands the message to the stage (at most `max_in_flight` calls at
once) and it is admitted in `put` order once its call ends; `flush` and `close` wait for
messages still in the stage as for any other.

Memory is bounded: at most `max_buffered` messages are accepted and not yet resolved; `put`
waits for room beyond that (`put_nowait` raises `ProducerFull`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .._lifecycle import AsyncResource
from ..checks import check_number
from ..config import SenderConfig
from ..errors import CLOSED_BEFORE_CONFIRMATION, ProducerFull
from ..results import Delivered, Failed, SendResult
from ..retry import Sleep, default_sleep
from ..wire import SqsClient
from ._accumulator import Accumulator, Pending
from ._engine import Engine
from ._ledger import ProducerLedger
from ._staging import Staged, Staging

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
    outstanding future gets that exception and later `put` calls raise it. `client`,
    `client_wrapper`, `sleep` and `clock` are as for `SqsSender`. `stats` sums up the
    requests so far.

    On a FIFO queue each message group is sent in the order of `put`, one message per group
    at a time; when a message fails, the messages of its group already queued behind it fail
    with code `PrecedingMessageFailed` (see `send._fifo`); later ones are sent. The producer
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
        client_wrapper: Callable[[SqsClient], SqsClient] | None = None,
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
        self._engine = Engine(
            config, client=client, client_wrapper=client_wrapper, sleep=sleep, clock=clock
        )
        self._ledger = ProducerLedger(max_buffered)
        self._numbers = itertools.count()
        self._accumulator: Accumulator | None = None
        self._staging: Staging | None = None
        self._linger_timer: asyncio.TimerHandle | None = None  # set while holding a batch
        self._flushing = 0  # flushes (and a close) waiting: what is admitted goes at once
        self._closing = False
        self._throttled_seconds = 0.0  # as of the close

    def __repr__(self) -> str:
        return f"SqsProducer({self.config!r})"

    async def open(self) -> None:
        engine = self._engine
        await engine.open()
        assert engine.queue_url is not None and engine.traits is not None, "one queue"
        self._accumulator = engine.dispatcher.accumulator(engine.queue_url, engine.traits)
        if engine.stage is not None and self._staging is None:
            self._staging = Staging(engine.stage, self.config.max_in_flight, self._hand_on)

    @property
    def pending(self) -> int:
        """Messages accepted and not yet resolved."""
        return len(self._ledger.waiting)

    @property
    def stats(self) -> SendResult:
        """The counters of the producer's requests so far (`requests`, `retried`,
        `throttled`, `bytes_delivered`, `throttled_seconds`, `possible_duplicates`,
        `reordered`, `delivered_count`); `delivered`, `failed` and `latencies` stay empty:
        each message's outcome is its future's, and a long-lived producer keeps no list that
        grows with its requests."""
        counters = self._ledger.counters
        throttled = self._throttled_seconds
        if self._engine.is_open:
            throttled = self._engine.dispatcher.limit.reduced_seconds
        return replace(
            counters,
            delivered=[],
            failed=[],
            latencies=[],
            throttled_seconds=throttled,
        )

    async def put(self, message: Any) -> asyncio.Future[Outcome]:
        """Queue `message`; wait while `max_buffered` messages are outstanding."""
        self._check_open()
        await self._ledger.room.put(None)
        return self._accept(message)

    def put_nowait(self, message: Any) -> asyncio.Future[Outcome]:
        """Queue `message` or raise `ProducerFull` at once."""
        self._check_open()
        try:
            self._ledger.room.put_nowait(None)
        except asyncio.QueueFull:
            raise ProducerFull(f"{self.max_buffered} messages are waiting to be sent") from None
        return self._accept(message)

    async def send(self, message: Any) -> Outcome:
        """Queue `message` and wait for its outcome."""
        return await (await self.put(message))

    async def flush(self) -> None:
        """Send what is buffered now and wait until every accepted message is resolved."""
        self._check_open()
        self._flushing += 1
        try:
            self._let_go()
            waiting = [f for f, _ in self._ledger.waiting.values() if not f.done()]
            if waiting:
                await asyncio.wait(waiting)
        finally:
            self._flushing -= 1

    async def close(self) -> None:
        """Send what is buffered, wait up to `close_timeout`, resolve the rest, close."""
        if self._accumulator is None:
            return
        self._closing = True
        self._flushing += 1
        self._let_go()
        waiting = [f for f, _ in self._ledger.waiting.values() if not f.done()]
        try:
            if waiting:
                await asyncio.wait(waiting, timeout=self.close_timeout)
        finally:
            if self._staging is not None:
                for staged in self._staging.cancel():
                    self._engine.abandoned(staged)
            self._ledger.give_up(self._unconfirmed)
            dispatcher = self._engine.dispatcher
            dispatcher.abandon(self._ledger)
            self._throttled_seconds = dispatcher.limit.reduced_seconds
            self._accumulator = None
            self._flushing -= 1
            await self._engine.close()

    def _check_open(self) -> None:
        if self._ledger.error is not None:
            raise self._ledger.error
        if self._accumulator is None or self._closing:
            raise RuntimeError("the producer is not open: use `async with SqsProducer(...)`")

    def _accept(self, message: Any) -> asyncio.Future[Outcome]:
        accumulator = self._accumulator
        assert accumulator is not None, "checked open"
        number = next(self._numbers)
        ledger = self._ledger
        future = ledger.expect(number, message)
        if self._staging is not None:
            self._staging.put(self._engine.staged(message, number, accumulator))
            return future
        pending = self._engine.admit(message, number, ledger, accumulator)
        if isinstance(pending, Failed):
            ledger.fail(pending)  # resolves the future at once
        else:
            self._enqueue(accumulator, pending)
        return future

    def _enqueue(self, accumulator: Accumulator, pending: Pending) -> None:
        if self._linger_timer is None:  # hold the partly filled batch for `linger`
            accumulator.hold()
            self._linger_timer = asyncio.get_running_loop().call_later(self.linger, self._let_go)
        accumulator.add(pending)

    def _hand_on(self, ready: list[Staged]) -> None:
        """Messages back from the stage, in `put` order: admitted as `_accept` admits."""
        ledger = self._ledger
        accumulator = self._accumulator
        if not ledger.live or accumulator is None:  # refused: every future has its error
            if self._staging is not None:
                for staged in [*ready, *self._staging.cancel()]:
                    self._engine.abandoned(staged)
            return
        for staged in ready:
            pending = self._engine.admit_staged(staged, ledger)
            if isinstance(pending, Failed):
                ledger.fail(pending)
            else:
                self._enqueue(accumulator, pending)
        if self._flushing:
            self._let_go()

    def _let_go(self) -> None:
        """Let the partly filled batch go (the linger passed, or a flush or close)."""
        if self._linger_timer is None or self._accumulator is None:
            return
        self._linger_timer.cancel()
        self._linger_timer = None
        self._accumulator.let_go()

    def _unconfirmed(self, number: int, record: Any) -> Failed:
        """The outcome of a message that `close` could not wait for."""
        return Failed(
            record=record,
            index=number,
            code=CLOSED_BEFORE_CONFIRMATION,
            message=f"the producer closed after {self.close_timeout:g}s before SQS "
            "confirmed this message; it may or may not have been delivered",
            sender_fault=False,
            attempts=0,
        )
