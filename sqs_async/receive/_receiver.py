"""`SqsReceiver`: reads a queue at least once, losing nothing.

Several long-polling `ReceiveMessage` calls run at once and fill a bounded prefetch buffer.
Every message received is *held* until the caller acks it (deleted, in batches of ten) or
releases it (visibility 0: another reader gets it at once); meanwhile a background task keeps
extending its visibility timeout, so a slow consumer never loses a message to a second reader.
Messages still buffered or held when the receiver closes are released.

    async with SqsReceiver(queue_url=url) as receiver:
        async for message in receiver.messages(until_empty=True):
            handle(message.body)
            await receiver.ack([message])

Cost model: each receive call brings up to 10 messages and waits up to `wait_time_seconds`
on an empty queue; `concurrent_receives` calls run at once. Holding N messages costs one
`ChangeMessageVisibilityBatch` per 10 of them about every `visibility_timeout / 2` seconds
(the keeper looks every sixth of it and extends what has less than half left).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from tenacity import RetryCallState

from .._lifecycle import AsyncResource
from ..config import ReceiverConfig
from ..defaults import MAX_BATCH_ENTRIES
from ..errors import Kind, SqsAsyncError, classify, error_code, kind_of, refusal
from ..retry import Sleep, default_sleep
from ..wire import (
    WIRE_IDS,
    EntryError,
    SqsReceiveClient,
    client_for,
    read_answer,
    resolve_queue_url,
)

log = logging.getLogger("sqs_async")

# Seconds a backlog estimate (ApproximateNumberOfMessages) is reused before it is asked again.
BACKLOG_MAX_AGE = 10.0
# Connections beyond the receive calls, for deletes and visibility changes.
SPARE_CONNECTIONS = 4


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A message as received: `attributes` are SQS's (`SentTimestamp`, `MessageGroupId`,
    `ApproximateReceiveCount`, ...), `message_attributes` the sender's, as SQS returns them."""

    message_id: str
    body: str
    receipt_handle: str = field(repr=False)
    attributes: dict[str, str] = field(default_factory=dict)
    message_attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    md5_of_body: str = ""

    @classmethod
    def from_response(cls, raw: dict[str, Any]) -> ReceivedMessage:
        return cls(
            message_id=str(raw.get("MessageId", "")),
            body=str(raw.get("Body", "")),
            receipt_handle=str(raw["ReceiptHandle"]),
            attributes=dict(raw.get("Attributes") or {}),
            message_attributes=dict(raw.get("MessageAttributes") or {}),
            md5_of_body=str(raw.get("MD5OfBody", "")),
        )

    @property
    def sent_timestamp(self) -> float | None:
        """When SQS accepted the message (seconds since the epoch), if it said."""
        millis = self.attributes.get("SentTimestamp")
        return int(millis) / 1000 if millis else None

    def as_record(self, *, with_receipt_handle: bool = False) -> dict[str, Any]:
        """A plain mapping (JSON-friendly but for Binary attribute values, which are bytes)."""
        record: dict[str, Any] = {
            "MessageId": self.message_id,
            "Body": self.body,
            "Attributes": self.attributes,
            "MessageAttributes": self.message_attributes,
        }
        if with_receipt_handle:
            record["ReceiptHandle"] = self.receipt_handle
        return record


@dataclass(slots=True)
class AckResult:
    """What `ack` or `release` did: each message is in `done` or in `failed`, with the reason."""

    done: list[ReceivedMessage] = field(default_factory=list)
    failed: list[tuple[ReceivedMessage, str, str]] = field(default_factory=list)
    # Set when SQS refused a whole call for the queue itself (it was deleted, access denied).
    refused: SqsAsyncError | None = field(default=None, repr=False)


@dataclass(slots=True)
class ReceiverStats:
    received: int = 0
    deleted: int = 0
    delete_failures: int = 0
    released: int = 0
    extensions: int = 0
    extension_failures: int = 0
    receive_calls: int = 0
    empty_receives: int = 0  # answers with no message
    found_empty: int = 0  # times the queue was found empty (see SqsReceiver._poll_returned)
    receive_seconds: float = 0.0
    # Time spent backing off after SQS throttled a call (receive, delete, visibility change).
    throttled_seconds: float = 0.0


class _ThrottledTime:
    """The wall time during which at least one of a receiver's calls was backing off after
    throttling, into `stats.throttled_seconds`: backoffs that overlap (several polls, deletes)
    count once, as runners read this time."""

    def __init__(self, stats: ReceiverStats, clock: Callable[[], float]) -> None:
        self._stats = stats
        self._clock = clock
        self._backing_off = 0
        self._since = 0.0

    def begin(self) -> None:
        if self._backing_off == 0:
            self._since = self._clock()
        self._backing_off += 1

    def end(self) -> None:
        self._backing_off -= 1
        if self._backing_off == 0:
            self._stats.throttled_seconds += self._clock() - self._since


class _ThrottleClock:
    """The sleep of one retry loop, counting into `time` the backoff that follows a
    throttling error (`saw`), and only that. A call's error replaces what was seen; entry
    errors of one batch answer add up (any throttled entry makes the backoff throttled)."""

    def __init__(self, time: _ThrottledTime, sleep: Sleep) -> None:
        self._time = time
        self._sleep = sleep
        self._throttled = False

    def saw(self, exc: BaseException) -> None:
        self._throttled = classify(exc) is Kind.THROTTLING

    def saw_entry(self, code: str) -> None:
        self._throttled = self._throttled or kind_of(code) is Kind.THROTTLING

    async def sleep(self, seconds: float) -> None:
        throttled, self._throttled = self._throttled, False
        if not throttled:
            await self._sleep(seconds)
            return
        self._time.begin()
        try:
            await self._sleep(seconds)
        finally:
            self._time.end()


@dataclass(slots=True)
class _Held:
    message: ReceivedMessage
    received_at: float
    visible_until: float
    handed_out: bool = False


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
        self.config = ReceiverConfig.merge(config, settings)
        self._poll_on_open = poll_on_open
        self._borrowed_client = client
        self._client_wrapper = client_wrapper
        self._sleep = sleep
        self._clock = clock
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._queue_url: str | None = self.config.queue_url
        self._buffer: asyncio.Queue[ReceivedMessage] = asyncio.Queue()
        self._held: dict[str, _Held] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._polls: list[asyncio.Task[None]] = []
        self._on_server: set[asyncio.Task[Any]] = set()  # polls with a call open on SQS
        self._stopping = False
        self._error: BaseException | None = None
        self._empty_poll = asyncio.Event()  # set when the queue was found empty
        self._empty_evidence: set[asyncio.Task[Any]] | None = None  # see _poll_returned
        self._broken = asyncio.Event()  # set with _error: the queue refused for good
        self.stats = ReceiverStats()
        self._throttled_time = _ThrottledTime(self.stats, clock)
        self._backlog: tuple[float, int | None] | None = None  # (when asked, answer)

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
        return len(self._held)

    def oldest_held_sent_timestamp(self) -> float | None:
        """The earliest sent time (seconds since the epoch) of a message held now, if any: a
        watermark that stays at or below it never passes a message this reader may still
        give back to the queue."""
        stamps = [t for h in self._held.values() if (t := h.message.sent_timestamp) is not None]
        return min(stamps, default=None)

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
                pool_size=self.config.concurrent_receives + SPARE_CONNECTIONS,
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
        except BaseException:
            await stack.aclose()
            raise
        self._client, self._stack = client, stack
        self._buffer = asyncio.Queue(maxsize=self.config.prefetch)
        keeper = asyncio.create_task(self._keep_invisible(), name="sqs-extend")
        keeper.add_done_callback(self._watch)
        self._tasks = [keeper]
        if self._poll_on_open:
            self.start_receiving()

    async def close(self) -> None:
        """Stop polling and extending; release every message not acked; close the client."""
        if self._stack is None:
            return
        await self._end_polls()
        stack, self._stack = self._stack, None
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            unacked = [held.message for held in self._held.values()]
            if unacked:
                await self.release(unacked)
        finally:
            await stack.aclose()

    def start_receiving(self) -> None:
        """Start polling (again, after `stop_receiving`); a no-op while polling."""
        if self._stack is None:
            raise RuntimeError("the receiver is not open: use `async with SqsReceiver(...)`")
        if not self._polls:
            self._polls = [
                asyncio.create_task(self._poll(), name=f"sqs-receive-{n}")
                for n in range(self.config.concurrent_receives)
            ]

    async def stop_receiving(self) -> None:
        """Stop polling and give back the buffered messages not handed out yet; messages
        handed out stay held (and extended) until acked or released. For a reader that has
        read all it wants but still has acks to make."""
        unused = await self.stop_polling()
        if unused:
            await self.release(unused)

    async def stop_polling(self) -> list[ReceivedMessage]:
        """Stop polling and hand out every message received and not handed out yet (the
        buffer, and what polls still open on SQS bring back): the caller holds them now,
        until it acks or releases them. A reader that ends when the queue looks empty takes
        these over, since one poll can come back empty while another brings messages."""
        await self._end_polls()
        while not self._buffer.empty():
            self._buffer.get_nowait()
        rest = [h for h in self._held.values() if not h.handed_out]
        for held in rest:
            held.handed_out = True
        return [held.message for held in rest]

    async def _end_polls(self) -> None:
        """End the polls without stranding a message. SQS does not learn that a client gave up
        on a long poll: a cancelled `ReceiveMessage` stays open on the server and takes the
        next messages to arrive, which then stay invisible for a visibility timeout and count
        as received. So a poll on the server is left to finish (at most `wait_time_seconds`)
        and what it brings is held, then released; polls not on the server (waiting for room
        in the buffer, or backing off) are cancelled at once. A call that outlasts its wait by
        a request timeout is stuck on the network, not waiting on SQS, and is cancelled."""
        polls, self._polls = self._polls, []
        self._stopping = True
        try:
            for task in polls:
                if task not in self._on_server:
                    task.cancel()
            if polls:
                await asyncio.wait(
                    polls, timeout=self.config.wait_time_seconds + self.config.request_timeout
                )
            for task in polls:
                task.cancel()
            await asyncio.gather(*polls, return_exceptions=True)
        finally:
            self._stopping = False

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
        Each is held until acked or released. Raises `SqsClientError` if the queue refuses."""
        deadline = None if max_time is None else self._clock() + max_time
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

    def __aiter__(self) -> AsyncIterator[ReceivedMessage]:
        return self.messages()

    async def receive(
        self, max_messages: int = MAX_BATCH_ENTRIES, wait: float = 0
    ) -> list[ReceivedMessage]:
        """Up to `max_messages` buffered messages, waiting up to `wait` seconds for the first."""
        first = await self._next(wait, until_empty=False)
        if first is None:
            return []
        batch = [first]
        while len(batch) < max_messages and not self._buffer.empty():
            batch.append(self._hand_out(self._buffer.get_nowait()))
        return batch

    async def ack(self, messages: Iterable[ReceivedMessage]) -> AckResult:
        """Delete `messages` (batches of 10, concurrently, retried); failures are reported.

        A message whose delete failed is no longer held: SQS gives it out again once its
        visibility timeout ends."""
        result = await self._each_ten(messages, self._delete_ten)
        self.stats.deleted += len(result.done)
        self.stats.delete_failures += len(result.failed)
        for message, code, reason in result.failed:
            log.warning("delete of message %s failed: %s: %s", message.message_id, code, reason)
        return result

    async def release(self, messages: Iterable[ReceivedMessage]) -> AckResult:
        """Make `messages` visible again at once, for another reader (a nack)."""
        result = await self._each_ten(messages, self._release_ten)
        self.stats.released += len(result.done)
        return result

    # Receiving

    async def _next(self, wait: float | None, until_empty: bool) -> ReceivedMessage | None:
        if self._error is not None:
            raise self._error
        if not self._buffer.empty():
            return self._hand_out(self._buffer.get_nowait())
        self._empty_poll.clear()
        getter = asyncio.ensure_future(self._buffer.get())
        waiters: set[asyncio.Future[Any]] = {getter}
        if until_empty:
            waiters.add(asyncio.ensure_future(self._empty_poll.wait()))
        waiters.add(asyncio.ensure_future(self._broken.wait()))
        try:
            await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters - {getter}:
                waiter.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return self._hand_out(getter.result())
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

    def _hand_out(self, message: ReceivedMessage) -> ReceivedMessage:
        held = self._held.get(message.receipt_handle)
        if held is not None:
            held.handed_out = True
        return message

    async def _poll(self) -> None:
        """One long-polling loop: receive, hold, buffer. Transient errors back off and retry;
        any other (the queue is gone, access denied) ends the loop and is raised to readers."""
        throttle = _ThrottleClock(self._throttled_time, self._sleep)

        async def receive() -> list[ReceivedMessage]:
            try:
                return await self._receive_once()
            except Exception as exc:
                throttle.saw(exc)
                raise

        while not self._stopping:
            try:
                received: list[ReceivedMessage] = await self.config.retry.retrying_forever(
                    sleep=throttle.sleep
                )(receive)
            except Exception as exc:
                self._fail(refusal(exc, error_code(exc), self.queue_url, work="receive"))
                return
            for message in received:
                if self._stopping:
                    return  # the rest stays held: released by stop_receiving or close
                await self._buffer.put(message)

    async def _receive_once(self) -> list[ReceivedMessage]:
        config = self.config
        if self._stopping:
            return []  # no new poll once stopping began
        started = self._clock()
        task = asyncio.current_task()
        assert task is not None
        self._on_server.add(task)
        try:
            response = await self._client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=MAX_BATCH_ENTRIES,
                WaitTimeSeconds=config.wait_time_seconds,
                VisibilityTimeout=config.visibility_timeout,
                MessageSystemAttributeNames=list(config.attribute_names),
                MessageAttributeNames=list(config.message_attribute_names),
            )
        finally:
            self._on_server.discard(task)
        now = self._clock()
        self.stats.receive_calls += 1
        self.stats.receive_seconds += now - started
        received = [ReceivedMessage.from_response(m) for m in response.get("Messages") or []]
        self.stats.received += len(received)
        for message in received:
            visible_until = started + config.visibility_timeout
            self._held[message.receipt_handle] = _Held(message, now, visible_until)
        self._poll_returned(task, brought=bool(received))
        return received

    def _poll_returned(self, task: asyncio.Task[Any], *, brought: bool) -> None:
        """Decide when the queue is empty. One empty answer is not enough: a poll open at the
        same time may be bringing the very messages this one could not see (another reader,
        or that poll, held them). The queue counts as empty once every poll open on SQS when
        an empty answer came has come back empty too; any messages void that evidence."""
        if brought:
            self._empty_evidence = None
            return
        self.stats.empty_receives += 1
        if self._empty_evidence is None:
            self._empty_evidence = set(self._on_server)  # polls still to come back empty
        # A poll that ended without an answer (cancelled when polling stopped) has no say.
        self._empty_evidence = {t for t in self._empty_evidence if t is not task and not t.done()}
        if not self._empty_evidence:
            self._empty_evidence = None
            self.stats.found_empty += 1
            self._empty_poll.set()

    # Holding

    async def _keep_invisible(self) -> None:
        """Extend the visibility of held messages before it runs out."""
        timeout = self.config.visibility_timeout
        while True:
            await asyncio.sleep(timeout / 6)
            now = self._clock()
            due = []
            for held in list(self._held.values()):
                if (
                    self.config.max_hold is not None
                    and now - held.received_at >= self.config.max_hold
                ):
                    self._held.pop(held.message.receipt_handle, None)
                    continue
                if held.visible_until - now < timeout / 2:
                    due.append(held.message)
            if due:
                result = await self._each_ten(due, self._extend_ten)
                if result.refused is not None:
                    raise result.refused  # the queue is gone or closed to us: stop, once
                self.stats.extensions += len(result.done)
                self.stats.extension_failures += len(result.failed)
                for message in result.done:
                    held_now = self._held.get(message.receipt_handle)
                    if held_now is not None:
                        held_now.visible_until = now + timeout
                for message, code, _ in result.failed:
                    if kind_of(code) is Kind.RECEIPT_HANDLE:
                        self._held.pop(message.receipt_handle, None)  # SQS will not keep it for us

    # Batch calls on receipt handles

    async def _each_ten(
        self,
        messages: Iterable[ReceivedMessage],
        call: Callable[[list[ReceivedMessage]], Any],
    ) -> AckResult:
        batch = list(messages)
        parts = await asyncio.gather(
            *(
                call(batch[i : i + MAX_BATCH_ENTRIES])
                for i in range(0, len(batch), MAX_BATCH_ENTRIES)
            )
        )
        result = AckResult()
        for part in parts:
            result.done += part.done
            result.failed += part.failed
            result.refused = result.refused or part.refused
        return result

    async def _delete_ten(self, messages: list[ReceivedMessage]) -> AckResult:
        for message in messages:
            self._held.pop(message.receipt_handle, None)  # stop extending at once
        return await self._handle_call(messages, "delete_message_batch", {})

    async def _release_ten(self, messages: list[ReceivedMessage]) -> AckResult:
        for message in messages:
            self._held.pop(message.receipt_handle, None)
        return await self._handle_call(
            messages, "change_message_visibility_batch", {"VisibilityTimeout": 0}
        )

    async def _extend_ten(self, messages: list[ReceivedMessage]) -> AckResult:
        timeout = self.config.visibility_timeout
        return await self._handle_call(
            messages, "change_message_visibility_batch", {"VisibilityTimeout": timeout}
        )

    async def _handle_call(
        self, messages: list[ReceivedMessage], operation: str, extra: dict[str, Any]
    ) -> AckResult:
        """One batch call on receipt handles; the entries (or the whole call) that failed
        transiently are retried, `retry.max_trials` attempts in all."""
        result = AckResult()
        pending = list(messages)
        throttle = _ThrottleClock(self._throttled_time, self._sleep)

        async def attempt() -> list[ReceivedMessage]:
            nonlocal pending
            entries = [
                {"Id": wire_id, "ReceiptHandle": m.receipt_handle, **extra}
                for wire_id, m in zip(WIRE_IDS, pending, strict=False)
            ]
            try:
                response = await getattr(self._client, operation)(
                    QueueUrl=self.queue_url, Entries=entries
                )
            except Exception as exc:
                throttle.saw(exc)
                raise
            retry = []
            for message, answer in zip(pending, read_answer(response, len(pending)), strict=True):
                if not isinstance(answer, EntryError):
                    result.done.append(message)
                elif answer.sender_fault:
                    result.failed.append((message, answer.code, answer.reason))
                else:
                    last_error[message.receipt_handle] = (answer.code, answer.reason)
                    throttle.saw_entry(answer.code)
                    retry.append(message)
            pending = retry
            return retry

        def give_up(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            for message in pending:
                code, reason = (
                    (error_code(error), str(error))
                    if error is not None
                    else last_error[message.receipt_handle]
                )
                result.failed.append((message, code, reason))

        last_error: dict[str, tuple[str, str]] = {}
        retrying = self.config.retry.retrying_entries(sleep=throttle.sleep, on_give_up=give_up)
        try:
            await retrying(attempt)
        except Exception as exc:  # not transient: every entry still pending failed
            code = error_code(exc)
            result.failed += [(m, code, str(exc)) for m in pending]
            if classify(exc) is Kind.FATAL:
                result.refused = refusal(exc, code, self.queue_url, work="receive")
        return result
