"""`SqsSender`: the bulk way in. Sends any number of messages to one queue and returns what
became of each.

Cost model: input is consumed lazily; at most `max_in_flight` batches of up to 10 messages are
being sent at any moment, so memory holds those batches plus the results. A message costs one
request slot for a tenth of a request per attempt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

from .client import SqsClient, open_client, read_queue_traits, resolve_queue_url
from .config import SenderConfig
from .dispatch import Dispatcher
from .entries import EntryBuilder, QueueField
from .errors import SqsAsyncError, SqsClientError
from .lanes import FifoLane, Lane, PackedLane, rejected, too_late
from .lifecycle import AsyncResource
from .results import Failed, SendResult
from .retry import Sleep, default_sleep
from .validation import INVALID_RECORD, QueueTraits, Rejection, prepare

log = logging.getLogger("sqs_async")


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
        """The dispatcher of the open sender (the streaming producer shares it)."""
        if self._dispatcher is None:
            raise RuntimeError("the sender is not open: use `async with SqsSender(...)`")
        return self._dispatcher

    async def open(self) -> None:
        """Open the client and find the queue; a no-op when already open."""
        if self._dispatcher is not None:
            return
        stack = AsyncExitStack()
        try:
            client = self._borrowed_client or await open_client(
                self.config, stack, pool_size=self.config.max_in_flight
            )
            if self._client_wrapper is not None:
                client = self._client_wrapper(client)
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
        self._dispatcher = Dispatcher(
            client=client,
            queue_url=queue_url,
            policy=self.config.retry,
            max_in_flight=self.config.max_in_flight,
            adaptive=self.config.adaptive_concurrency,
            request_timeout=self.config.request_timeout,
            sleep=self._sleep,
            clock=self._clock,
        )

    async def close(self) -> None:
        """Close the client if the sender opened it."""
        stack, self._stack, self._dispatcher = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    def entry_of(self, record: Any) -> Any:
        """The entry `record` is sent as to this sender's queue (after the serializer and
        field functions), or a `Rejection` when one of those functions failed on it."""
        return self._entries.build(record, fifo=self.traits.fifo)

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
        lanes: dict[str, Lane | Failed] = {}

        def report(part: SendResult) -> None:
            result.absorb(part, keep_delivered=keep_delivered)

        try:
            async with asyncio.TaskGroup() as tasks:

                def new_lane(queue_url: str, traits: QueueTraits) -> Lane:
                    if traits.fifo and not traits.high_throughput:
                        rate = self.config.fifo_requests_per_second
                        if rate is not None:
                            dispatcher.limit_rate(queue_url, rate)
                    kind = FifoLane if traits.fifo else PackedLane
                    return kind(
                        dispatcher=dispatcher,
                        queue_url=queue_url,
                        traits=traits,
                        tasks=tasks,
                        report=report,
                        max_request_bytes=self.config.max_request_bytes,
                        deadline=deadline,
                        deadline_at=deadline_at,
                        dynamic=self._route is not None,
                        fifo_messages_per_group=self.config.fifo_messages_per_group,
                    )

                async for index, record in _enumerate(messages):
                    if deadline_at is not None and dispatcher.now() >= deadline_at:
                        result.failed.append(too_late(record, index, deadline))
                        continue
                    lane = await self._lane_of(record, lanes, new_lane)
                    if isinstance(lane, Failed):
                        result.failed.append(replace(lane, record=record, index=index))
                        continue
                    entry = self._entries.build(record, fifo=lane.traits.fifo)
                    if isinstance(entry, Rejection):
                        result.failed.append(rejected(record, index, entry))
                        continue
                    prepared = prepare(entry, index, lane.traits, record=record)
                    if isinstance(prepared, Rejection):
                        lane.reject(rejected(record, index, prepared), entry)
                        continue
                    await lane.add(prepared)
                for lane in lanes.values():
                    if isinstance(lane, Lane):
                        await lane.finish()
        except* SqsClientError as errors:
            raise errors.exceptions[0] from None
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

    async def _lane_of(
        self,
        record: Any,
        lanes: dict[str, Lane | Failed],
        new_lane: Callable[[str, QueueTraits], Lane],
    ) -> Lane | Failed:
        """The lane of `record`'s queue, made on first use; a `Failed` (to fill in with the
        record) when the record cannot be routed or its queue cannot be found."""
        route = self._route
        if route is None:
            key = self.queue_url
            if key not in lanes:
                lanes[key] = new_lane(key, self.traits)
            return lanes[key]
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
        if key not in lanes:
            try:
                queue_url, traits = await self._destination(key, dynamic=True)
            except SqsAsyncError as error:
                lanes[key] = Failed(
                    record=None,
                    index=-1,
                    code=getattr(error, "code", None) or type(error).__name__,
                    message=str(error),
                    sender_fault=not error.retryable,
                    attempts=0,
                )
            else:
                lanes[key] = new_lane(queue_url, traits)
        return lanes[key]

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


async def _enumerate(
    messages: Iterable[Any] | AsyncIterable[Any],
) -> AsyncIterator[tuple[int, Any]]:
    if isinstance(messages, AsyncIterable):
        index = 0
        async for record in messages:
            yield index, record
            index += 1
    else:
        for index, record in enumerate(messages):
            yield index, record
