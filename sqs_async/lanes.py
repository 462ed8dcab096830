"""Where one `send`'s valid messages wait for a request: one lane per destination queue.

`PackedLane` (standard queues) packs messages in input order into full batches. `FifoLane`
(FIFO queues) keeps each message group in order with a `FifoScheduler`, and sends at most one
message per group at a time. Both hand batches to the sender's shared `Dispatcher` and report
every outcome through `report`; batches never mix queues.

With `dynamic` routing, a queue that refuses a request for good (it does not exist, access is
denied) fails only its own messages, with the error's code; otherwise it raises
`SqsClientError` and ends the send, as a single-queue sender always has.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from .batching import Batch, BatchPacker
from .dispatch import DEADLINE_EXCEEDED, Dispatcher, OnDelivered
from .errors import SqsClientError
from .fifo import FifoScheduler
from .results import Delivered, Failed, SendResult
from .validation import OutgoingMessage, QueueTraits, Rejection

Report = Callable[[SendResult], None]

# A FIFO lane queues at most this many messages per request slot before it sends batches
# with fewer than ten groups (few groups, long input): memory stays bounded.
FIFO_BACKLOG_PER_SLOT = 200


class Lane:
    """Sends one queue's messages for one `send` call."""

    def __init__(
        self,
        *,
        dispatcher: Dispatcher,
        queue_url: str,
        traits: QueueTraits,
        tasks: asyncio.TaskGroup,
        report: Report,
        max_request_bytes: int,
        deadline: float | None = None,
        deadline_at: float | None = None,
        dynamic: bool = False,
        fifo_messages_per_group: int = 1,
    ) -> None:
        self.dispatcher = dispatcher
        self.queue_url = queue_url
        self.traits = traits
        self.report = report
        self._tasks = tasks
        self._max_request_bytes = max_request_bytes
        self._deadline = deadline
        self._deadline_at = deadline_at
        self._dynamic = dynamic
        self._fifo_messages_per_group = fifo_messages_per_group
        self.refused: SqsClientError | None = None  # set when the queue refused for good
        # Hears of deliveries while a batch may still retry others (FIFO groups move on).
        self.on_delivered: OnDelivered | None = None
        # A FIFO batch may hold several messages of a group: keep them from overtaking.
        self.ordered_groups = False

    async def add(self, message: OutgoingMessage) -> None:
        raise NotImplementedError

    def reject(self, failed: Failed, entry: Any) -> None:
        """A message of this lane that validation refused."""
        self.report(SendResult(failed=[failed]))

    async def finish(self) -> None:
        """Send what is left (the caller's task group then waits for the requests)."""
        raise NotImplementedError

    def refuse(self, message: OutgoingMessage) -> bool:
        """Fail `message` at once if the queue already refused for good."""
        if self.refused is None:
            return False
        self.report(SendResult(failed=[refused(message, self.refused, attempts=0)]))
        return True

    async def _submit(self, batch: Batch) -> bool:
        """Start sending `batch`; False (and every message failed) if the deadline passed."""
        remaining = None
        if self._deadline_at is not None:
            remaining = max(0.0, self._deadline_at - self.dispatcher.now())
        try:
            async with asyncio.timeout(remaining):
                task = await self.dispatcher.submit(
                    batch,
                    self._tasks,
                    self._deadline_at,
                    queue_url=self.queue_url,
                    on_fatal=self._refused if self._dynamic else None,
                    on_delivered=self.on_delivered,
                    ordered_groups=self.ordered_groups,
                )
        except TimeoutError:
            self.report(SendResult(failed=[self.too_late(m) for m in batch.messages]))
            return False
        task.add_done_callback(self._done)
        return True

    def _done(self, task: asyncio.Task[SendResult]) -> None:
        # Failed or cancelled tasks are raised by the task group.
        if not task.cancelled() and task.exception() is None:
            self.report(task.result())

    def _refused(self, error: SqsClientError, batch: Batch) -> SendResult:
        self.refused = error
        return SendResult(failed=[refused(m, error, attempts=1) for m in batch.messages])

    def expired(self) -> bool:
        return self._deadline_at is not None and self.dispatcher.now() >= self._deadline_at

    def too_late(self, message: OutgoingMessage) -> Failed:
        return too_late(message.record, message.index, self._deadline)


class PackedLane(Lane):
    """A standard queue: full batches in input order, sent as soon as they fill."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._packer = BatchPacker(max_bytes=self._max_request_bytes)

    async def add(self, message: OutgoingMessage) -> None:
        if self.refuse(message):
            return
        batch = self._packer.add(message)
        if batch is not None:
            await self._submit(batch)

    async def finish(self) -> None:
        batch = self._packer.flush()
        if batch is not None:
            await self._submit(batch)


class FifoLane(Lane):
    """A FIFO queue: one message per group in flight, groups in parallel (see `fifo`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._scheduler = FifoScheduler(
            max_bytes=self._max_request_bytes, per_group=self._fifo_messages_per_group
        )
        self._changed = asyncio.Event()
        self._max_backlog = FIFO_BACKLOG_PER_SLOT * self.dispatcher.limit.maximum
        self.on_delivered = self._delivered
        self.ordered_groups = self._fifo_messages_per_group > 1

    async def add(self, message: OutgoingMessage) -> None:
        if self.refuse(message):
            return
        halted = self._scheduler.add(message)
        if halted is not None:
            self.report(SendResult(failed=[halted]))
            return
        while self._scheduler.has_full_batch:
            await self._send_next()
        while self._scheduler.queued >= self._max_backlog and not self.expired():
            await self._send_or_wait()

    def reject(self, failed: Failed, entry: Any) -> None:
        group = entry.get("MessageGroupId") if isinstance(entry, Mapping) else None
        if isinstance(group, str):
            self._scheduler.refused(group, f"message #{failed.index} was {failed.code}")
        self.report(SendResult(failed=[failed]))

    async def finish(self) -> None:
        while not self._scheduler.is_idle:
            if self.expired():
                drained = self._scheduler.drain()
                self.report(SendResult(failed=[self.too_late(m) for m in drained]))
                return  # in-flight batches end on their own by the deadline
            await self._send_or_wait()

    async def _send_or_wait(self) -> None:
        if self._scheduler.ready_groups:
            await self._send_next()
            return
        self._changed.clear()
        remaining = None
        if self._deadline_at is not None:
            remaining = max(0.0, self._deadline_at - self.dispatcher.now())
        try:
            async with asyncio.timeout(remaining):
                await self._changed.wait()
        except TimeoutError:
            pass

    async def _send_next(self) -> None:
        batch = self._scheduler.next_batch()
        if batch is not None and not await self._submit(batch):
            for message in batch.messages:
                self._forget(message.index, DEADLINE_EXCEEDED)

    def _done(self, task: asyncio.Task[SendResult]) -> None:
        super()._done(task)
        if task.cancelled() or task.exception() is not None:
            return
        for failed in task.result().failed:
            self._forget(failed.index, failed.code)
        if self.refused is not None:
            drained = self._scheduler.drain()
            self.report(SendResult(failed=[refused(m, self.refused, 0) for m in drained]))
        self._changed.set()

    def _delivered(self, delivered: list[Delivered]) -> None:
        for message in delivered:  # its group's next message may go now
            self._scheduler.delivered(message.index)
        self._changed.set()

    def _forget(self, index: int, code: str) -> None:
        halted = self._scheduler.failed(index, code)
        if halted:
            self.report(SendResult(failed=halted))


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


def refused(message: OutgoingMessage, error: SqsClientError, attempts: int) -> Failed:
    """The `Failed` result of a message whose queue refused requests for good."""
    return Failed(
        record=message.record,
        index=message.index,
        code=error.code or "QueueRefused",
        message=str(error),
        sender_fault=True,
        attempts=attempts,
    )
