"""`SqsProducer`: the streaming way in, for long-running async programs.

Sending is two steps, as in aiokafka: `put` queues one message and returns a future; the
future resolves to its `Delivered` or `Failed` once SQS has answered. Behind it, messages are
packed into batches that go out when full (10 entries or the byte limit) or when the oldest
message has waited `linger` seconds, through the same dispatcher as the bulk `send`: same
validation, retries, concurrency bound and accounting.

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

from .batching import Batch, BatchPacker
from .client import SqsClient
from .config import SenderConfig
from .errors import SqsAsyncError
from .fifo import FifoScheduler
from .lanes import rejected
from .lifecycle import AsyncResource
from .results import Delivered, Failed, SendResult
from .retry import Sleep, default_sleep
from .sender import SqsSender
from .validation import Rejection, prepare

log = logging.getLogger("sqs_async")

Outcome = Delivered | Failed

# Code of the `Failed` result of a message the producer had to give up on at close.
CLOSED_BEFORE_CONFIRMATION = "ClosedBeforeConfirmation"


class ProducerFull(SqsAsyncError):
    """`put_nowait` found `max_buffered` messages waiting; retry after some resolve."""

    retryable = True


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
    with code `PrecedingMessageFailed` (see `sqs_async.fifo`). The producer writes to one
    queue: for routing records to many queues, use `SqsSender`.
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
        if not isinstance(linger, int | float) or linger < 0:
            raise ValueError(f"linger must be a number of seconds >= 0, got {linger!r}")
        if isinstance(max_buffered, bool) or not isinstance(max_buffered, int) or max_buffered < 1:
            raise ValueError(f"max_buffered must be an int >= 1, got {max_buffered!r}")
        if not isinstance(close_timeout, int | float) or close_timeout < 0:
            raise ValueError(f"close_timeout must be a number >= 0, got {close_timeout!r}")
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
        self._packer = BatchPacker(max_bytes=config.max_request_bytes)
        self._fifo: FifoScheduler | None = None  # on a FIFO queue, instead of the packer
        self._ready: asyncio.Queue[Batch | None] = asyncio.Queue()
        self._linger_timer: asyncio.TimerHandle | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closing = False
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"SqsProducer({self.config!r})"

    async def open(self) -> None:
        await self._sender.open()
        traits = self._sender.traits
        if traits.fifo:
            self._fifo = FifoScheduler(
                max_bytes=self.config.max_request_bytes,
                per_group=self.config.fifo_messages_per_group,
                halt_for_good=False,
            )
            rate = self.config.fifo_requests_per_second
            if not traits.high_throughput and rate is not None:
                self._sender.dispatcher.limit_rate(self._sender.queue_url, rate)
        self._runner = asyncio.create_task(self._run(), name="sqs-async-producer")

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
        self._flush_partial()
        waiting = [f for f, _ in self._waiting.values() if not f.done()]
        if waiting:
            await asyncio.wait(waiting)

    async def close(self) -> None:
        """Send what is buffered, wait up to `close_timeout`, resolve the rest, close."""
        if self._runner is None:
            return
        self._closing = True
        self._flush_partial()
        if self._fifo is None or self._fifo.is_idle:
            self._ready.put_nowait(None)  # else _resolve does, once the groups are sent
        runner, self._runner = self._runner, None
        try:
            await asyncio.wait_for(asyncio.shield(runner), self.close_timeout)
        except TimeoutError:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        except SqsAsyncError:
            pass  # already given to every future
        finally:
            self._give_up_outstanding()
            await self._sender.close()

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._runner is None or self._closing:
            raise RuntimeError("the producer is not open: use `async with SqsProducer(...)`")

    def _accept(self, message: Any) -> asyncio.Future[Outcome]:
        number = next(self._numbers)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        entry = self._sender.entry_of(message)
        prepared = entry
        if not isinstance(entry, Rejection):
            prepared = prepare(entry, number, self._sender.traits, record=message)
        if isinstance(prepared, Rejection):
            future.set_result(rejected(message, number, prepared))
            self._room.get_nowait()
            return future
        self._waiting[number] = (future, message)
        if self._fifo is not None:
            self._fifo.add(prepared)  # never halted: halts are not kept (halt_for_good=False)
            if self._fifo.has_full_batch:
                self._cancel_linger()
                self._send_ready_groups()
            waiting = self._fifo.ready_groups > 0
        else:
            batch = self._packer.add(prepared)
            if batch is not None:
                self._cancel_linger()
                self._ready.put_nowait(batch)
            waiting = not self._packer.is_empty
        if self._linger_timer is None and waiting:
            self._linger_timer = asyncio.get_running_loop().call_later(
                self.linger, self._flush_partial
            )
        return future

    def _cancel_linger(self) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None

    def _flush_partial(self) -> None:
        self._cancel_linger()
        if self._fifo is not None:
            self._send_ready_groups()
            return
        batch = self._packer.flush()
        if batch is not None:
            self._ready.put_nowait(batch)

    def _send_ready_groups(self) -> None:
        assert self._fifo is not None
        while (batch := self._fifo.next_batch()) is not None:
            self._ready.put_nowait(batch)

    async def _run(self) -> None:
        """Hands ready batches to the dispatcher until closed (or the queue refuses all)."""
        dispatcher = self._sender.dispatcher
        try:
            async with asyncio.TaskGroup() as group:
                while (batch := await self._ready.get()) is not None:
                    on_delivered = None if self._fifo is None else self._fifo_delivered
                    task = await dispatcher.submit(
                        batch,
                        group,
                        on_delivered=on_delivered,
                        ordered_groups=self.config.fifo_messages_per_group > 1,
                    )
                    task.add_done_callback(self._resolve)
        except BaseExceptionGroup as errors:
            error = errors.exceptions[0]
            self._error = error
            for future, _ in self._waiting.values():
                if not future.done():
                    future.set_exception(error)
            self._release(list(self._waiting))
            raise error from None

    def _resolve(self, task: asyncio.Task[SendResult]) -> None:
        if task.cancelled() or task.exception() is not None:
            return  # _run or close resolves these futures
        result = task.result()
        outcomes: list[Outcome] = [*result.delivered, *result.failed]
        self._settle(outcomes)
        if self._fifo is None:
            return
        for failed in result.failed:
            self._settle(self._fifo.failed(failed.index, failed.code))
        self._send_ready_groups()
        if self._closing and self._fifo.is_idle:
            self._ready.put_nowait(None)

    def _fifo_delivered(self, delivered: list[Delivered]) -> None:
        """A group's next message may go as soon as its message is in, before the batch ends."""
        assert self._fifo is not None
        for message in delivered:
            self._fifo.delivered(message.index)
        self._send_ready_groups()

    def _settle(self, outcomes: Sequence[Outcome]) -> None:
        """Give each outcome to its future (unless the caller cancelled it) and free its room."""
        for outcome in outcomes:
            future, _ = self._waiting.get(outcome.index, (None, None))
            if future is not None and not future.done():
                future.set_result(outcome)
        self._release([outcome.index for outcome in outcomes])

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
