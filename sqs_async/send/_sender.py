"""`SqsSender`: the bulk way in. Sends any number of messages and returns what became of each.

The path of a message: its queue (the configured one, or the record's own: routing), the
engine's admission (record functions, payload stage, validation), its queue's accumulator, a
request the dispatcher starts, and its outcome back through the call's ledger into the
`SendResult`. `SqsProducer` owns an engine of its own and uses the same path.

Cost model: input is consumed lazily. A call keeps at most `2 * max_in_flight` batches' worth
of messages (20 per request slot) read and not yet resolved, in flight, waiting for a request
or backing off before a retry; on a FIFO queue, whose groups may have to wait for one
another, up to 200 per request slot. With a payload stage, up to `max_in_flight` of those
are in the stage at once. Memory holds those messages plus the results. A message costs a
tenth of a request per attempt, retries included: they share requests with fresh messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from typing import Any

from .._lifecycle import AsyncResource
from ..config import SenderConfig
from ..errors import DEADLINE_EXCEEDED
from ..results import Failed, SendResult
from ..retry import Sleep, default_sleep
from ..wire import QueueTraits, SqsClient
from ._accumulator import Accumulator, Pending
from ._engine import Engine
from ._ledger import SendLedger
from ._staging import Staged, Staging

log = logging.getLogger("sqs_async")

# Messages a send keeps read and unresolved, per request slot (see the module doc).
ROOM_PER_SLOT = 20
FIFO_ROOM_PER_SLOT = 200
# Seconds a partly filled batch waits for more of a slow async input (as a producer's linger).
INPUT_LINGER = 0.005


class SqsSender(AsyncResource):
    """Sends messages to SQS with many concurrent SendMessageBatch calls: to one queue, or to
    each record's own queue when `queue_url` or `queue_name` is a function of the record.

    Use it as an async context manager::

        async with SqsSender(queue_url=url, max_in_flight=32) as sender:
            result = await sender.send(messages)

    Settings are the fields of `SenderConfig`, given as keywords or as a `config`. `client`
    is borrowed: an open aiobotocore SQS client (or anything with the same async methods) that
    the sender uses and never closes. Without it the sender opens its own client on the
    running loop and closes it on exit. `client_wrapper` wraps whichever client is used (tests
    inject faults with it). `sleep` replaces `asyncio.sleep` between retries and `clock`
    the monotonic clock of deadlines and latencies (tests).
    """

    def __init__(
        self,
        config: SenderConfig | None = None,
        *,
        client: SqsClient | None = None,
        client_wrapper: Callable[[SqsClient], SqsClient] | None = None,
        sleep: Sleep = default_sleep,
        clock: Callable[[], float] = time.monotonic,
        **settings: Any,
    ) -> None:
        config = SenderConfig.merge(config, settings)
        self.config = config
        self._clock = clock
        self._engine = Engine(
            config, client=client, client_wrapper=client_wrapper, sleep=sleep, clock=clock
        )

    def __repr__(self) -> str:
        return f"SqsSender({self.config!r})"

    @property
    def queue_url(self) -> str:
        """The queue of an open sender (not of one that routes records to many queues)."""
        if self._engine.route is not None:
            raise RuntimeError("this sender routes each record to its own queue")
        if self._engine.queue_url is None:
            raise RuntimeError("the sender is not open: use `async with SqsSender(...)`")
        return self._engine.queue_url

    @property
    def traits(self) -> QueueTraits:
        """What the queue allows, as found when the sender opened."""
        if self._engine.route is not None:
            raise RuntimeError("this sender routes each record to its own queue")
        if self._engine.traits is None:
            raise RuntimeError("the sender is not open: use `async with SqsSender(...)`")
        return self._engine.traits

    async def open(self) -> None:
        """Open the client and find the queue; a no-op when already open."""
        await self._engine.open()

    async def close(self) -> None:
        """Stop what is still being sent and close the client if the sender opened it."""
        await self._engine.close()

    async def send(
        self,
        messages: Iterable[Any] | AsyncIterable[Any],
        *,
        keep_delivered: bool = True,
        deadline: float | None = None,
        log_level: int = logging.INFO,
    ) -> SendResult:
        """Send every message; return each one as `Delivered` or `Failed`.

        Invalid messages fail without a request; the rest are packed into batches and sent
        concurrently (on a FIFO queue, one message per group at a time: see `_fifo`). Raises
        `SqsClientError` when the queue refuses all requests (it does not exist, access is
        denied), since then no message can be delivered; with dynamic routing such a queue
        fails only its own messages instead.

        `keep_delivered=False` only counts delivered messages (`result.delivered_count`), so
        memory stays flat however long the input; failures are always kept. The summary line
        is logged at `log_level` (callers that sum up several sends pass DEBUG).

        `deadline` (seconds): no request or retry starts after it; every message not
        delivered by then fails with code `DeadlineExceeded` (the rest of the input is still
        read, to account for it). The call returns within the deadline plus one request
        timeout.
        """
        check_messages(messages, "send")
        if not self._engine.is_open:
            raise RuntimeError("the sender is not open: use `async with SqsSender(...)`")
        dispatcher = self._engine.dispatcher
        result = SendResult()
        throttled_before = dispatcher.limit.reduced_seconds
        deadline_at = None if deadline is None else dispatcher.now() + deadline
        ledger = SendLedger(
            result,
            keep_delivered,
            deadline_at,
            dynamic=self._engine.route is not None,
            clock=self._clock,
        )
        staging = None
        if self._engine.stage is not None:
            staging = Staging(self._engine.stage, self.config.max_in_flight, self._hand_on(ledger))
        timer = None
        if deadline is not None:
            timer = asyncio.get_running_loop().call_later(
                deadline, self._expire, ledger, staging, deadline
            )
        try:
            await self._feed(messages, ledger, staging, deadline)
            await ledger.settled()
        except BaseException:
            dispatcher.abandon(ledger)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if staging is not None:
                for staged in staging.cancel():
                    self._engine.abandoned(staged)
        if ledger.error is not None:
            raise ledger.error
        result.throttled_seconds = dispatcher.limit.reduced_seconds - throttled_before
        log.log(
            log_level,
            "total %d, succeeded %d, failed %d",
            result.total,
            result.delivered_count,
            len(result.failed),
        )
        if result.reordered:
            log.warning(
                "%d message(s) failed on their own while SQS accepted a later message of their "
                "FIFO group in the same request: those groups are out of order "
                "(fifo_messages_per_group=%d)",
                result.reordered,
                self.config.fifo_messages_per_group,
            )
        return result

    async def _feed(
        self,
        messages: Iterable[Any] | AsyncIterable[Any],
        ledger: SendLedger,
        staging: Staging | None,
        deadline: float | None,
    ) -> None:
        """Read the input into the accumulators (through the stage, if any), holding each
        used one (its partly filled batch waits for more) until the input ends and the stage
        is empty, the call waits for room, or a slow async input keeps it waiting
        (`INPUT_LINGER`)."""
        engine = self._engine
        dispatcher = engine.dispatcher
        held: list[Accumulator] = []
        slots = self.config.max_in_flight
        # One queue: one accumulator for every record (routing looks each one up).
        only = (
            None
            if engine.route is not None
            else dispatcher.accumulator(self.queue_url, self.traits)
        )

        def let_go() -> None:
            while held:
                held.pop().let_go()

        try:
            async for index, record in _enumerate(messages, let_go):
                if ledger.error is not None:
                    return
                ledger.unresolved += 1
                if ledger.deadline_at is not None and dispatcher.now() >= ledger.deadline_at:
                    ledger.fail(too_late(record, index, deadline))
                    continue
                accumulator = only or await engine.accumulator_for(record, index, ledger)
                if isinstance(accumulator, Failed):
                    ledger.fail(accumulator)
                    continue
                pending: Pending | None = None  # with a stage, admission follows it
                if staging is None:
                    admitted = engine.admit(record, index, ledger, accumulator)
                    if isinstance(admitted, Failed):
                        ledger.fail(admitted)
                        continue
                    pending = admitted
                room = (FIFO_ROOM_PER_SLOT if accumulator.fifo else ROOM_PER_SLOT) * slots
                if ledger.unresolved > room:
                    let_go()
                    if not await ledger.room(room):
                        ledger.fail(too_late(record, index, deadline))
                        continue
                    if ledger.error is not None:
                        return
                if accumulator not in held:
                    accumulator.hold()
                    held.append(accumulator)
                if pending is not None:
                    accumulator.add(pending)
                    continue
                assert staging is not None
                if not ledger.live:  # expired while the record was routed
                    ledger.fail(too_late(record, index, deadline))
                    continue
                staging.put(engine.staged(record, index, accumulator))
                if len(staging) >= slots:
                    await ledger.wait(lambda: len(staging) < slots)
            if staging is not None:
                await ledger.wait(lambda: not staging)
        finally:
            let_go()

    def _hand_on(self, ledger: SendLedger) -> Callable[[list[Staged]], None]:
        """What becomes of records back from the stage, in their turn: admission."""
        engine = self._engine

        def hand_on(ready: list[Staged]) -> None:
            for staged in ready:
                pending = engine.admit_staged(staged, ledger)
                if isinstance(pending, Failed):
                    ledger.fail(pending)
                else:
                    staged.accumulator.add(pending)
            ledger.wake()

        return hand_on

    def _expire(self, ledger: SendLedger, staging: Staging | None, deadline: float) -> None:
        """The send's deadline passed: what waits fails with `DeadlineExceeded`."""
        self._engine.dispatcher.expire(ledger)
        if staging is not None:
            for staged in staging.cancel():
                self._engine.abandoned(staged)
                ledger.fail(too_late(staged.record, staged.index, deadline))
            ledger.wake()


def check_messages(messages: object, call: str) -> None:
    """Raise TypeError for a lone message where an iterable of messages belongs: a `str` is
    iterable (`send("abc")` would send "a", "b" and "c"), and so are `bytes` and a mapping's
    keys."""
    if isinstance(messages, str | bytes | bytearray | memoryview | Mapping):
        raise TypeError(
            f"{call}() takes an iterable of messages, not a single "
            f"{type(messages).__name__}: pass [message] to send one"
        )


def too_late(record: Any, index: int, deadline: float | None) -> Failed:
    """The `Failed` result of a message read after the send's deadline passed."""
    return Failed(
        record=record,
        index=index,
        code=DEADLINE_EXCEEDED,
        message=f"not sent: the send's deadline of {deadline:g}s passed",
        sender_fault=False,
        attempts=0,
    )


async def _enumerate(
    messages: Iterable[Any] | AsyncIterable[Any], idle: Callable[[], None]
) -> AsyncIterator[tuple[int, Any]]:
    """The input with positions. An async input that keeps the call waiting for
    `INPUT_LINGER` seconds gets `idle()` called: what it brought so far should not wait."""
    if not isinstance(messages, AsyncIterable):
        for index, record in enumerate(messages):
            yield index, record
        return
    loop = asyncio.get_running_loop()
    iterator = aiter(messages)
    index = 0
    while True:
        timer = loop.call_later(INPUT_LINGER, idle)
        try:
            record = await anext(iterator)
        except StopAsyncIteration:
            return
        finally:
            timer.cancel()
        yield index, record
        index += 1
