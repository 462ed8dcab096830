"""`SqsSender`: the bulk way in. Sends any number of messages and returns what became of each.

The path of a message: the record functions and validation (`admit`), the accumulator of its
queue (`accumulator`), a request started by the dispatcher (`dispatch`), and its outcome back
through the call's ledger into the `SendResult`. `SqsProducer` uses the same path.

Cost model: input is consumed lazily. A call keeps at most `2 * max_in_flight` batches' worth
of messages (20 per request slot) accepted and not yet resolved, in flight, waiting for a
request or backing off before a retry; on a FIFO queue, whose groups may have to wait for one
another, up to 200 per request slot. Memory holds those messages plus the results. A message
costs a tenth of a request per attempt, retries included: they share requests with fresh
messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

from .._lifecycle import AsyncResource
from ..config import SenderConfig
from ..errors import DEADLINE_EXCEEDED, INVALID_RECORD, SqsAsyncError, SqsClientError
from ..results import Failed, SendResult
from ..retry import Sleep, default_sleep
from ..wire import QueueTraits, SqsClient, client_for, read_queue_traits, resolve_queue_url
from ._accumulator import Accumulator, Entry, Ledger
from ._dispatcher import Dispatcher
from ._entries import EntryBuilder, QueueField
from ._validation import Rejection, prepare

log = logging.getLogger("sqs_async")

# Messages a send keeps accepted and unresolved, per request slot (see the module doc).
ROOM_PER_SLOT = 20
FIFO_ROOM_PER_SLOT = 200
# Seconds a partly filled batch waits for more of a slow async input (as a producer's linger).
INPUT_LINGER = 0.005


class SqsSender(AsyncResource):
    """Sends messages to one SQS queue with many concurrent SendMessageBatch calls.

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
        self._borrowed_client = client
        self._client_wrapper = client_wrapper
        self._sleep = sleep
        self._clock = clock
        self._stack: AsyncExitStack | None = None
        self._dispatcher: Dispatcher | None = None
        self._client: SqsClient | None = client
        self._route = config.route
        self._queue_url: str | None = None
        self._traits: QueueTraits | None = None
        self._destinations: dict[str, tuple[str, QueueTraits]] = {}
        self._entries = EntryBuilder(
            serializer=config.serializer,
            message_group_id=config.message_group_id,
            message_deduplication_id=config.message_deduplication_id,
            queue_field=self._route.name if isinstance(self._route, QueueField) else None,
        )

    def __repr__(self) -> str:
        return f"SqsSender({self.config!r})"

    @property
    def queue_url(self) -> str:
        """The queue of an open sender (not of one that routes records to many queues)."""
        if self._route is not None:
            raise RuntimeError("this sender routes each record to its own queue")
        if self._queue_url is None:
            raise RuntimeError("the sender is not open: use `async with SqsSender(...)`")
        return self._queue_url

    @property
    def traits(self) -> QueueTraits:
        """What the queue allows, as found when the sender opened."""
        if self._route is not None:
            raise RuntimeError("this sender routes each record to its own queue")
        if self._traits is None:
            raise RuntimeError("the sender is not open: use `async with SqsSender(...)`")
        return self._traits

    @property
    def dispatcher(self) -> Dispatcher:
        """The dispatcher of the open sender (the streaming producer feeds it too)."""
        if self._dispatcher is None:
            raise RuntimeError("the sender is not open: use `async with SqsSender(...)`")
        return self._dispatcher

    async def open(self) -> None:
        """Open the client and find the queue; a no-op when already open."""
        if self._dispatcher is not None:
            return
        stack = AsyncExitStack()
        try:
            client = await client_for(
                self.config,
                stack,
                borrowed=self._borrowed_client,
                wrapper=self._client_wrapper,
                pool_size=self.config.max_in_flight,
            )
            self._client = client
            queue = self.config.queue_url or self.config.queue_name
            queue_url = None
            if isinstance(queue, str):
                queue_url, self._traits = await self._destination(queue, dynamic=False)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        self._queue_url = queue_url
        config = self.config
        self._dispatcher = Dispatcher(
            client=client,
            policy=config.retry,
            max_in_flight=config.max_in_flight,
            max_request_bytes=config.max_request_bytes,
            request_timeout=config.request_timeout,
            sleep=self._sleep,
            adaptive=config.adaptive_concurrency,
            fifo_messages_per_group=config.fifo_messages_per_group,
            fifo_requests_per_second=config.fifo_requests_per_second,
            clock=self._clock,
        )

    async def close(self) -> None:
        """Stop what is still being sent and close the client if the sender opened it."""
        stack, self._stack = self._stack, None
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            await dispatcher.close()
        if stack is not None:
            await stack.aclose()

    def admit(
        self, record: Any, index: int, ledger: Ledger, accumulator: Accumulator
    ) -> Entry | Failed:
        """The one way of a record into an accumulator: the record functions, validation and,
        on a FIFO queue, the group's halt. An `Entry` to `dispatcher.add`, or its `Failed`."""
        entry = self._entries.build(record, fifo=accumulator.fifo)
        prepared = entry
        if not isinstance(entry, Rejection):
            prepared = prepare(entry, index, accumulator.traits, record=record)
        if isinstance(prepared, Rejection):
            if accumulator.fifo and isinstance(entry, Mapping):
                why = f"message #{index} was {prepared.code}"
                accumulator.refused(ledger, entry.get("MessageGroupId"), why)
            return rejected(record, index, prepared)
        admitted = Entry(prepared, ledger)
        halted = accumulator.admit(admitted) if accumulator.fifo else None
        return admitted if halted is None else halted

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
        concurrently (on a FIFO queue, one message per group at a time: see `fifo`). Raises
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
        dispatcher = self.dispatcher
        result = SendResult()
        throttled_before = dispatcher.limit.reduced_seconds
        deadline_at = None if deadline is None else dispatcher.now() + deadline
        ledger = _SendLedger(
            result, keep_delivered, deadline_at, dynamic=self._route is not None, clock=self._clock
        )
        timer = None
        if deadline is not None:
            timer = asyncio.get_running_loop().call_later(deadline, dispatcher.expire, ledger)
        try:
            await self._feed(messages, ledger, deadline)
            await ledger.settled()
        except BaseException:
            dispatcher.abandon(ledger)
            raise
        finally:
            if timer is not None:
                timer.cancel()
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
        ledger: _SendLedger,
        deadline: float | None,
    ) -> None:
        """Read the input into the accumulators, holding each used one (its partly filled
        batch waits for more) until the input ends, the call waits for room, or a slow async
        input keeps it waiting (`INPUT_LINGER`)."""
        dispatcher = self.dispatcher
        held: list[Accumulator] = []
        slots = self.config.max_in_flight
        # One queue: one accumulator for every record (routing looks each one up).
        only = (
            None if self._route is not None else dispatcher.accumulator(self.queue_url, self.traits)
        )

        def let_go() -> None:
            while held:
                dispatcher.let_go(held.pop())

        try:
            async for index, record in _enumerate(messages, let_go):
                if ledger.error is not None:
                    return
                if ledger.deadline_at is not None and dispatcher.now() >= ledger.deadline_at:
                    ledger.fail(too_late(record, index, deadline))
                    continue
                accumulator = only or await self._accumulator_of(record, ledger)
                if isinstance(accumulator, Failed):
                    ledger.fail(replace(accumulator, record=record, index=index))
                    continue
                entry = self.admit(record, index, ledger, accumulator)
                if isinstance(entry, Failed):
                    ledger.fail(entry)
                    continue
                room = (FIFO_ROOM_PER_SLOT if accumulator.fifo else ROOM_PER_SLOT) * slots
                if ledger.outstanding >= room:
                    let_go()
                    if not await ledger.room(room):
                        ledger.fail(too_late(record, index, deadline))
                        continue
                    if ledger.error is not None:
                        return
                if accumulator not in held:
                    accumulator.hold()
                    held.append(accumulator)
                ledger.outstanding += 1
                dispatcher.add(accumulator, entry)
        finally:
            let_go()

    async def _accumulator_of(self, record: Any, ledger: _SendLedger) -> Accumulator | Failed:
        """The accumulator of a routed `record`'s queue; a `Failed` (to fill in with the
        record) when the record cannot be routed, or its queue cannot be found or refused
        this call. (Without routing every record goes to the one queue's: see `_feed`.)"""
        route = self._route
        assert route is not None, "only routed records are looked up"
        try:
            key = route(record)
            if not isinstance(key, str) or not key:
                raise ValueError(f"it gave {key!r}, not a queue")
        except Exception as exc:
            return Failed(
                record=None,
                index=-1,
                code=INVALID_RECORD,
                message=f"the queue function failed on this record: {type(exc).__name__}: {exc}",
                sender_fault=True,
                attempts=0,
            )
        failed = ledger.unreachable.get(key)
        if failed is not None:
            return failed
        try:
            queue_url, traits = await self._destination(key, dynamic=True)
        except SqsAsyncError as error:
            failed = ledger.unreachable[key] = Failed(
                record=None,
                index=-1,
                code=getattr(error, "code", None) or type(error).__name__,
                message=str(error),
                sender_fault=not error.retryable,
                attempts=0,
            )
            return failed
        refused = ledger.refused.get(queue_url)
        if refused is not None:
            return refused
        return self.dispatcher.accumulator(queue_url, traits)

    async def _destination(self, queue: str, *, dynamic: bool) -> tuple[str, QueueTraits]:
        """URL and traits of `queue` (a URL or a name, as configured), found once and cached."""
        found = self._destinations.get(queue)
        if found is None:
            by_url = self.config.queue_url is not None
            queue_url = queue if by_url else await self._resolve_queue_url(queue)
            assert self._client is not None, "opened before use"
            traits = await read_queue_traits(
                self._client,
                queue_url,
                self.config.max_message_bytes,
                self.config.max_request_bytes,
            )
            found = self._destinations[queue] = (queue_url, traits)
        return found

    async def _resolve_queue_url(self, name: str) -> str:
        assert self._client is not None, "opened before use"
        return await resolve_queue_url(
            self._client,
            name,
            self.config.retry,
            self._sleep,
            owner_account_id=self.config.queue_owner_account_id,
        )


def check_messages(messages: object, call: str) -> None:
    """Refuse a lone message where an iterable of messages belongs: a `str` is iterable
    (`send("abc")` would send "a", "b" and "c"), and so are `bytes` and a mapping's keys."""
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


def rejected(record: Any, index: int, rejection: Rejection) -> Failed:
    """The `Failed` result of a message that validation refused."""
    return Failed(
        record=record,
        index=index,
        code=rejection.code,
        message=rejection.reason,
        sender_fault=True,
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


class _SendLedger(Ledger):
    """The outcomes of one `send` call, gathered into its `SendResult`."""

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
        self.outstanding = 0  # messages in an accumulator or a request, not yet resolved
        self.error: SqsClientError | None = None
        self.unreachable: dict[str, Failed] = {}  # queue -> why it cannot be found
        self.refused: dict[str, Failed] = {}  # queue URL -> refusal (dynamic routing)
        self._wake: asyncio.Future[None] | None = None

    def fail(self, failed: Failed) -> None:
        """A message that failed before it reached an accumulator."""
        self.result.failed.append(failed)

    def absorb(self, part: SendResult) -> None:
        if self.error is not None:
            return  # the call raised; nobody reads this result
        self.result.absorb(part, keep_delivered=self.keeps_delivered)
        settled = part.delivered_count + len(part.failed)
        if settled:
            self.outstanding -= settled
            self._notify()

    def refuse(self, error: SqsClientError, queue_url: str, entries: list[Entry]) -> None:
        """With dynamic routing the queue's messages of this call fail; otherwise the call
        raises `error` (no message can be delivered)."""
        if not self.dynamic:
            self.error = self.error or error
            self.live = False
            self._notify()
            return
        self.refused[queue_url] = Failed(
            record=None,
            index=-1,
            code=error.code or type(error).__name__,
            message=str(error),
            sender_fault=True,
            attempts=0,
        )
        self.absorb(
            SendResult(
                failed=[
                    entry.failed(sender_fault=True, code=error.code, reason=str(error))
                    for entry in entries
                ]
            )
        )

    async def room(self, room: int) -> bool:
        """Wait until fewer than `room` messages are unresolved; False if the deadline
        passed first."""
        remaining = None
        if self.deadline_at is not None:
            remaining = max(0.0, self.deadline_at - self._clock())
        try:
            async with asyncio.timeout(remaining):
                await self._until(lambda: self.outstanding < room)
        except TimeoutError:
            return False
        return True

    async def settled(self) -> None:
        """Wait until every message is resolved (or the call must raise)."""
        await self._until(lambda: self.outstanding == 0)

    async def _until(self, ready: Callable[[], bool]) -> None:
        while not ready() and self.error is None:
            self._wake = asyncio.get_running_loop().create_future()
            await self._wake

    def _notify(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
