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
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

from .batching import Batch, BatchPacker
from .client import SqsClient, open_client, read_queue_traits
from .config import SenderConfig
from .dispatch import DEADLINE_EXCEEDED, Dispatcher
from .errors import SqsClientError, SqsUnavailableError, explain
from .results import Failed, SendResult
from .retry import Sleep, default_sleep, error_code, is_transient
from .validation import QueueTraits, Rejection, prepare

log = logging.getLogger("sqs_async")


class SqsSender:
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
        self._queue_url: str | None = config.queue_url
        self._traits: QueueTraits | None = None

    def __repr__(self) -> str:
        return f"SqsSender({self.config!r})"

    @property
    def queue_url(self) -> str:
        if self._queue_url is None:
            raise RuntimeError("the sender is not open: use `async with SqsSender(...)`")
        return self._queue_url

    @property
    def traits(self) -> QueueTraits:
        """What the queue allows, as found when the sender opened."""
        if self._traits is None:
            raise RuntimeError("the sender is not open: use `async with SqsSender(...)`")
        return self._traits

    @property
    def dispatcher(self) -> Dispatcher:
        """The dispatcher of the open sender (the streaming producer shares it)."""
        if self._dispatcher is None:
            raise RuntimeError("the sender is not open: use `async with SqsSender(...)`")
        return self._dispatcher

    async def __aenter__(self) -> SqsSender:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the client and find the queue; a no-op when already open."""
        if self._dispatcher is not None:
            return
        stack = AsyncExitStack()
        try:
            client = self._borrowed_client or await open_client(self.config, stack)
            if self._client_wrapper is not None:
                client = self._client_wrapper(client)
            queue_url = self.config.queue_url or await self._resolve_queue_url(client)
            self._traits = await read_queue_traits(
                client, queue_url, self.config.max_message_bytes, self.config.max_request_bytes
            )
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
        concurrently. Raises `SqsClientError` when the queue refuses all requests (it does
        not exist, access is denied), since then no message can be delivered.

        `keep_delivered=False` only counts delivered messages (`result.delivered_count`), so
        memory stays flat however long the input; failures are always kept. The summary line
        is logged at `log_level` (callers that sum up several sends pass DEBUG).

        `deadline` (seconds): no request or retry starts after it; every message not
        delivered by then fails with code `DeadlineExceeded` (the rest of the input is still
        read, to account for it). The call returns within the deadline plus one request
        timeout.
        """
        dispatcher = self.dispatcher
        result = SendResult()
        throttled_before = dispatcher.limit.reduced_seconds
        packer = BatchPacker(max_bytes=self.config.max_request_bytes)
        deadline_at = None if deadline is None else dispatcher.now() + deadline

        def absorb(task: asyncio.Task[SendResult]) -> None:
            # Failed or cancelled tasks are raised by the task group.
            if not task.cancelled() and task.exception() is None:
                result.absorb(task.result(), keep_delivered=keep_delivered)

        def expired() -> bool:
            return deadline_at is not None and dispatcher.now() >= deadline_at

        async def dispatch(batch: Batch | None, group: asyncio.TaskGroup) -> None:
            if batch is None:
                return
            remaining = None if deadline_at is None else max(0, deadline_at - dispatcher.now())
            try:
                async with asyncio.timeout(remaining):
                    task = await dispatcher.submit(batch, group, deadline_at)
            except TimeoutError:
                result.failed.extend(too_late(m.record, m.index, deadline) for m in batch.messages)
            else:
                task.add_done_callback(absorb)

        try:
            async with asyncio.TaskGroup() as group:
                async for index, record in _enumerate(messages):
                    if expired():
                        result.failed.append(too_late(record, index, deadline))
                        continue
                    prepared = prepare(record, index, self.traits)
                    if isinstance(prepared, Rejection):
                        result.failed.append(rejected(record, index, prepared))
                        continue
                    await dispatch(packer.add(prepared), group)
                await dispatch(packer.flush(), group)
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
        return result

    async def _resolve_queue_url(self, client: SqsClient) -> str:
        """Look the queue URL up by name, with the same retries as a send."""
        name = self.config.queue_name
        assert name is not None
        retrying = self.config.retry.retrying_call(sleep=self._sleep)

        async def look_up() -> dict[str, Any]:
            return await client.get_queue_url(QueueName=name)

        try:
            response: dict[str, Any] = await retrying(look_up)
        except Exception as exc:
            code = error_code(exc)
            message = explain(code, str(exc), f"queue {name!r}")
            if is_transient(exc):
                raise SqsUnavailableError(message, code=code) from exc
            raise SqsClientError(message, code=code) from exc
        return str(response["QueueUrl"])


def too_late(record: Any, index: int, deadline: float | None) -> Failed:
    """The `Failed` result of a message not sent before the send's deadline."""
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
