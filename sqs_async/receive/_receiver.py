"""`SqsReceiver`: reads a queue at least once, losing nothing.

Several long-polling `ReceiveMessage` calls run at once and fill a bounded prefetch buffer
(`_polling`). Every message received is *held* until the caller acks it (deleted, in batches
of ten: `_acks`) or releases it (visibility 0: another reader gets it at once); meanwhile a
background task keeps extending its visibility timeout (`_keeper`), so a slow consumer never
loses a message to a second reader. Messages still buffered or held when the receiver closes
are released. A payload stage (`ReceiverConfig.payload_stage`) sees each message before it
is handed out and after it is deleted (`_stages`).

    async with SqsReceiver(queue_url=url) as receiver:
        async for message in receiver.messages(until_empty=True):
            handle(message.body)
            await receiver.ack([message])

Cost model: each receive call brings up to 10 messages and waits up to `wait_time_seconds`
on an empty queue; `concurrent_receives` calls run at once. Unless the last answer was full
(more are likely waiting) or a reader waits for the queue to be found empty, a call waits
`defaults.SHORT_WAIT_SECONDS` instead, one at a time while nothing comes, so that closing
takes about a second: an idle receiver makes about one call a second. Holding N messages costs one
`ChangeMessageVisibilityBatch` per 10 of them about every `visibility_timeout / 2` seconds
(the keeper looks every sixth of it and extends what has less than half left). Deletes,
releases and extensions run at most `concurrent_receives + defaults.SPARE_CONNECTIONS` calls
at once (a poll's ten are acked by one call of ten), on connections of their own: the pool
has one per poll and one per such call, so acks never wait for a poll's connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack
from typing import Any

from .. import stages
from .._lifecycle import AsyncResource
from ..config import ReceiverConfig
from ..defaults import MAX_BATCH_ENTRIES, SPARE_CONNECTIONS
from ..errors import SqsAsyncError
from ..retry import Sleep, default_sleep
from ..wire import SqsReceiveClient, client_for, resolve_queue_url
from . import _stages
from ._acks import ReceiptCalls
from ._keeper import Keeper
from ._messages import AckResult, ReceivedMessage, ReceiverStats
from ._polling import Polling
from ._throttling import ThrottledTime

log = logging.getLogger("sqs_async")

# Seconds a backlog estimate (ApproximateNumberOfMessages) is reused before it is asked again.
BACKLOG_MAX_AGE = 10.0


class SqsReceiver(AsyncResource):
    """Receives from one SQS queue; see the module docstring. Settings are `ReceiverConfig`
    fields (or a `config`); `client` is borrowed, `client_wrapper` wraps whichever is used.
    `poll_on_open=False` opens without polling until `start_receiving()` (a reader that may
    be opened and never read from must not hold messages nobody will see)."""

    def __init__(
        self,
        config: ReceiverConfig | None = None,
        *,
        client: SqsReceiveClient | None = None,
        client_wrapper: Callable[[Any], Any] | None = None,
        sleep: Sleep = default_sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_on_open: bool = True,
        **settings: Any,
    ) -> None:
        self.config = config = ReceiverConfig.merge(config, settings)
        self._poll_on_open = poll_on_open
        self._borrowed_client = client
        self._client_wrapper = client_wrapper
        self._sleep = sleep
        self._clock = clock
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._queue_url: str | None = config.queue_url
        self._tasks: list[asyncio.Task[None]] = []  # the keeper's
        self._error: BaseException | None = None
        self._broken = asyncio.Event()  # set with _error: the queue refused for good
        self.stats = ReceiverStats()
        self._readers = 0  # `messages()` iterations under way
        self._backlog: tuple[float, int | None] | None = None  # (when asked, answer)
        self._stage: stages.PayloadStage | None = None  # its session, when it has `deleted`
        throttled_time = ThrottledTime(self.stats, clock)
        self._acks = ReceiptCalls(
            retry=config.retry,
            visibility_timeout=config.visibility_timeout,
            throttled_time=throttled_time,
            sleep=sleep,
            max_calls=config.concurrent_receives + SPARE_CONNECTIONS,
        )
        self._keeper = Keeper(
            visibility_timeout=config.visibility_timeout,
            max_hold=config.max_hold,
            extend=self._extend,
            stats=self.stats,
            clock=clock,
        )
        self._polling = Polling(
            config,
            keeper=self._keeper,
            stats=self.stats,
            throttled_time=throttled_time,
            fail=self._fail,
            discard=self._discard,
            sleep=sleep,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"SqsReceiver({self.config!r})"

    @property
    def queue_url(self) -> str:
        if self._queue_url is None:
            raise RuntimeError("the receiver is not open: use `async with SqsReceiver(...)`")
        return self._queue_url

    @property
    def held(self) -> int:
        """Messages received and neither acked nor released (buffered ones included)."""
        return len(self._keeper)

    def oldest_held_sent_timestamp(self) -> float | None:
        """The earliest sent time (seconds since the epoch) of a message held now, if any: a
        watermark that stays at or below it never passes a message this reader may still
        give back to the queue."""
        return self._keeper.oldest_sent_timestamp()

    def found_empty(self) -> bool:
        """Whether the queue was found empty since polling last started, with no message
        brought since: a poll came back empty, and so did every poll open on SQS at that
        moment (as `messages(until_empty=True)` decides; polls wait the full
        `wait_time_seconds` for that only while such a reader waits). A reader that read
        nothing and sees this has drained the queue, as far as SQS can tell."""
        return self._polling.empty.since_start

    async def backlog(self, max_age: float = BACKLOG_MAX_AGE) -> int | None:
        """SQS's estimate of the messages waiting in the queue (`ApproximateNumberOfMessages`),
        asked at most once per `max_age` seconds; None when it cannot be read (it needs
        `sqs:GetQueueAttributes`, which a reader may lack)."""
        now = self._clock()
        if self._backlog is not None and now - self._backlog[0] < max_age:
            return self._backlog[1]
        count: int | None = None
        try:
            response = await self._client.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )
            count = int(response["Attributes"]["ApproximateNumberOfMessages"])
        except Exception as exc:  # an estimate only: say so once in a while, go on
            log.debug("could not read the backlog of %s: %r", self.queue_url, exc)
        self._backlog = (now, count)
        return count

    async def open(self) -> None:
        """Open the client, find the queue and start polling; a no-op when already open."""
        if self._stack is not None:
            return
        stack = AsyncExitStack()
        try:
            client = await client_for(
                self.config,
                stack,
                borrowed=self._borrowed_client,
                wrapper=self._client_wrapper,
                pool_size=self.config.concurrent_receives + self._acks.max_calls,
            )
            if self._queue_url is None:
                assert self.config.queue_name is not None
                self._queue_url = await resolve_queue_url(
                    client,
                    self.config.queue_name,
                    self.config.retry,
                    self._sleep,
                    owner_account_id=self.config.queue_owner_account_id,
                    work="receive",
                )
            stage = None
            if self.config.payload_stage is not None:
                stage = await stack.enter_async_context(
                    self.config.payload_stage.session(self.config)
                )
        except BaseException:
            await stack.aclose()
            raise
        self._client, self._stack = client, stack
        self._stage = stage if stage is not None and stages.overrides(stage, "deleted") else None
        self._acks.bind(client, self._queue_url)
        self._polling.bind(client, self._queue_url, stage)
        keeper = asyncio.create_task(self._keeper.run(), name="sqs-extend")
        keeper.add_done_callback(self._watch)
        self._tasks = [keeper]
        if self._poll_on_open:
            self.start_receiving()

    async def close(self) -> None:
        """Stop polling and extending; release every message not acked; close the client."""
        if self._stack is None:
            return
        await self._polling.stop()
        stack, self._stack = self._stack, None
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            unacked = self._keeper.messages()
            if unacked:
                await self.release(unacked)
        finally:
            await stack.aclose()

    def start_receiving(self) -> None:
        """Start polling (again, after `stop_receiving`); a no-op while polling."""
        if self._stack is None:
            raise RuntimeError("the receiver is not open: use `async with SqsReceiver(...)`")
        self._polling.start()

    async def stop_receiving(self) -> None:
        """Stop polling and *release* every message received and not handed out yet (the
        buffered ones, and what the polls open on SQS bring back): they are visible to other
        readers at once. Messages already handed out stay held (and extended) until the
        caller acks or releases them. For a reader that has read all it wants but still has
        acks to make."""
        await self._polling.stop()
        self._polling.clear_buffer()
        unused = [held.message for held in self._keeper.take_not_handed_out()]
        if unused:
            await self.release(unused)

    async def stop_polling_and_take(self) -> list[ReceivedMessage]:
        """Stop polling and *hand the caller* every message received and not handed out yet
        (the buffered ones, and what the polls open on SQS bring back), releasing none of them.
        The caller holds them now (they are extended), and it acks or releases them. A
        reader that ends when the queue looks empty takes these over, since one poll can come
        back empty while another brings messages. (A message whose payload stage a stuck poll
        left unfinished is released instead: it was never ready to hand out.)"""
        await self._polling.stop()
        self._polling.clear_buffer()
        rest = self._keeper.take_not_handed_out()
        unready = [held.message for held in rest if not held.ready]
        if unready:
            await self.release(unready)
        return [held.message for held in rest if held.ready]

    async def messages(
        self,
        *,
        max_messages: int | None = None,
        max_time: float | None = None,
        until_empty: bool = False,
    ) -> AsyncIterator[ReceivedMessage]:
        """Messages as they arrive, until `max_messages`, `max_time` seconds or (with
        `until_empty`) the queue is found empty: a poll came back empty, and so did every
        poll open on SQS at that moment (one of them may be bringing what it could not see).
        Each is held until acked or released. Raises `SqsClientError` if the queue refuses.
        Polls ask for no more than one reader takes; while several read at once, they ask
        without limit (one reader's end must not stop the polls another waits on)."""
        deadline = None if max_time is None else self._clock() + max_time
        self._readers += 1
        alone = self._readers == 1
        self._polling.want(max_messages if alone else None, until_empty=until_empty)
        try:
            count = 0
            while max_messages is None or count < max_messages:
                remaining = None if deadline is None else deadline - self._clock()
                if remaining is not None and remaining <= 0:
                    return
                message = await self._next(remaining, until_empty)
                if message is None:
                    return
                count += 1
                yield message
        finally:
            self._readers -= 1
            if self._readers:
                self._polling.want(None)  # the others read on

    def __aiter__(self) -> AsyncIterator[ReceivedMessage]:
        return self.messages()

    async def receive(
        self, max_messages: int = MAX_BATCH_ENTRIES, wait: float = 0
    ) -> list[ReceivedMessage]:
        """Up to `max_messages` buffered messages, waiting up to `wait` seconds for the first."""
        self._polling.want(None)
        first = await self._next(wait, until_empty=False)
        if first is None:
            return []
        batch = [first]
        take, hand_out = self._polling.take, self._keeper.hand_out
        while len(batch) < max_messages and (message := take()) is not None:
            batch.append(hand_out(message))
        return batch

    async def ack(self, messages: Iterable[ReceivedMessage]) -> AckResult:
        """Delete `messages` (batches of 10, concurrently, retried); failures are reported.

        A message whose delete failed is no longer held: SQS gives it out again once its
        visibility timeout ends. The payload stage's `deleted` runs for each message deleted
        before this returns."""
        batch = list(messages)
        self._keeper.drop(batch)  # stop extending at once
        result = await self._acks.delete(batch)
        self.stats.deleted += len(result.done)
        self.stats.delete_failures += len(result.failed)
        for message, code, reason in result.failed:
            log.warning("delete of message %s failed: %s: %s", message.message_id, code, reason)
        if self._stage is not None and result.done:
            await _stages.deleted(self._stage, result.done, self.stats)
        return result

    async def release(self, messages: Iterable[ReceivedMessage]) -> AckResult:
        """Make `messages` visible again at once, for another reader (a nack)."""
        batch = list(messages)
        self._keeper.drop(batch)
        result = await self._acks.release(batch)
        self.stats.released += len(result.done)
        return result

    async def _discard(self, messages: list[ReceivedMessage]) -> None:
        """Delete `messages`, which the payload stage discarded (they are not handed out)."""
        result = await self._acks.delete(messages)
        self.stats.discarded += len(result.done)
        self.stats.delete_failures += len(result.failed)

    # Reading

    async def _next(self, wait: float | None, until_empty: bool) -> ReceivedMessage | None:
        if self._error is not None:
            raise self._error
        message = self._polling.take()
        if message is not None:
            return self._keeper.hand_out(message)
        message = await self._polling.wait(wait, until_empty=until_empty, broken=self._broken)
        if message is not None:
            return self._keeper.hand_out(message)
        if self._error is not None:
            raise self._error
        return None

    def _fail(self, error: BaseException) -> None:
        """The receiver cannot go on: readers get `error` (the first one) once they ask."""
        if self._error is None:
            self._error = error
        self._broken.set()

    def _watch(self, task: asyncio.Task[None]) -> None:
        """A background task that ends with an error fails the reader with that error."""
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("%s ended with %r; the receiver stops", task.get_name(), exc)
            self._fail(
                exc
                if isinstance(exc, SqsAsyncError)
                else SqsAsyncError(
                    f"the receiver's {task.get_name()} task failed: {exc!r}", type(exc).__name__
                )
            )

    # The keeper's extensions

    async def _extend(self, messages: list[ReceivedMessage]) -> AckResult:
        return await self._acks.in_tens(messages, self._extend_ten)

    async def _extend_ten(self, messages: list[ReceivedMessage]) -> AckResult:
        """One extension call (a seam: tests replace it to break the keeper)."""
        return await self._acks.extend_ten(messages)
