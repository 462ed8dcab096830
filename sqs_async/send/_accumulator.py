"""Where valid messages wait for a request: one accumulator per destination queue, alive as
long as the engine.

Both ways in feed the same accumulators: `SqsSender.send` (a ledger per call) and
`SqsProducer.put` (a ledger per producer). A message enters once (`add`), leaves in a request
(`take`, called by the dispatcher), and the request's answer is reported back (`settle`:
FIFO groups move on). A retried message comes back (`requeue`) once its backoff has passed,
and leaves in the next request that has room, beside fresh messages.

A full batch leaves as soon as a request slot is free. A partly filled batch waits while a
feeder `hold`s the accumulator (a send still reading its input, a producer within its
linger) and leaves once nobody does: a request does not go out a tenth full while more
messages are about to come. When a batch may leave, the accumulator calls `ready` (the
dispatcher's `pump`), as aiokafka's accumulator wakes its sender.

`Accumulator` packs a standard queue's messages in arrival order; `FifoAccumulator` keeps
each message group in order (see `_fifo`). `Pending` is a message on its way. Pure logic: no
I/O, no asyncio.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import DEADLINE_EXCEEDED, PRECEDING_MESSAGE_FAILED
from ..results import Delivered, Failed
from ..wire import QueueTraits
from ._batching import BatchPacker
from ._fifo import FifoScheduler, group_of, overtaken
from ._validation import OutgoingMessage

if TYPE_CHECKING:
    from ._ledger import Ledger


class Pending:
    """A valid message on its way (waiting, in a request, or backing off before a retry),
    with its ledger and what happened on its last attempt. It builds its own outcome."""

    __slots__ = (
        "attempts",
        "code",
        "fields",
        "ledger",
        "maybe_sent",
        "message",
        "reason",
        "size",
        "undelivered",
    )

    def __init__(self, message: OutgoingMessage, ledger: Ledger) -> None:
        self.message = message
        self.ledger = ledger
        self.size = message.size
        self.fields = message.fields
        self.attempts = 0
        self.code = ""
        self.reason = ""
        self.maybe_sent = False  # the last attempt may have reached SQS
        # Told of the fields if the message fails for good without any attempt that may have
        # reached SQS (the payload stage's `undelivered`; None: no one to tell, or one did).
        self.undelivered: Callable[[dict[str, Any]], None] | None = None

    def abandoned(self) -> None:
        """It will not be sent again: tell `undelivered`, if it is still to be told."""
        if self.undelivered is not None:
            self.undelivered(self.fields)
            self.undelivered = None

    def delivered(self, message_id: str, sequence_number: str | None) -> Delivered:
        return Delivered(
            record=self.message.record,
            index=self.message.index,
            message_id=message_id,
            attempts=self.attempts,
            sequence_number=sequence_number,
        )

    def failed(self, *, sender_fault: bool, code: str | None = None, reason: str = "") -> Failed:
        """Failed with the last attempt's error, or with `code` and `reason` (for good)."""
        self.abandoned()
        return Failed(
            record=self.message.record,
            index=self.message.index,
            code=self.code if code is None else code,
            message=self.reason if code is None else reason,
            sender_fault=sender_fault,
            attempts=self.attempts,
        )

    def too_late(self) -> Failed:
        return self.failed(
            sender_fault=False,
            code=DEADLINE_EXCEEDED,
            reason="not sent: the send's deadline passed"
            + (f" (last attempt: {self.code}: {self.reason})" if self.code else ""),
        )

    def halted(self, why: str) -> Failed:
        """Held back because an earlier message of its FIFO group failed."""
        return self.failed(
            sender_fault=False,
            code=PRECEDING_MESSAGE_FAILED,
            reason=f"not sent: an earlier message of group {group_of(self)!r} did not reach "
            f"SQS ({why}); sending this one would break the group's order",
        )


class Accumulator:
    """A standard queue's waiting messages, packed in arrival order."""

    fifo = False

    def __init__(
        self,
        queue_url: str,
        traits: QueueTraits,
        *,
        max_request_bytes: int,
        ready: Callable[[], None],
    ) -> None:
        self.queue_url = queue_url
        self.traits = traits
        self.holders = 0
        self._ready = ready
        self._packer: BatchPacker[Pending] = BatchPacker(max_bytes=max_request_bytes)
        self._full: deque[list[Pending]] = deque()

    def hold(self) -> None:
        """A feeder may add more soon: keep a partly filled batch for it."""
        self.holders += 1

    def let_go(self) -> None:
        """The feeder adds nothing more for now: once nobody holds, a partly filled batch
        may go."""
        self.holders -= 1
        if not self.holders:
            self._ready()

    def add(self, pending: Pending) -> None:
        """Queue a fresh message; `ready` if a batch may go (a full one, or any when nobody
        holds the accumulator)."""
        batch = self._packer.add(pending)
        if batch is not None:
            self._full.append(batch.messages)
            self._ready()
        elif not self.holders:
            self._ready()

    def requeue(self, retried: list[Pending]) -> None:
        """Messages whose backoff has passed: they go with the next request that has room
        (the caller pumps)."""
        for pending in retried:
            batch = self._packer.add(pending)
            if batch is not None:
                self._full.append(batch.messages)

    def take(self) -> list[Pending] | None:
        """The messages of the next request, if one should go now."""
        if self._full:
            return self._full.popleft()
        if self.holders:
            return None
        batch = self._packer.flush()
        return None if batch is None else batch.messages

    def remove(self, doomed: Callable[[Pending], bool]) -> list[Pending]:
        """Take the waiting `doomed` messages out (their ledger expired or ended)."""
        gone = self._packer.remove(doomed)
        for batch in self._full:
            gone += [pending for pending in batch if doomed(pending)]
        if gone:
            self._full = deque(
                kept for batch in self._full if (kept := [p for p in batch if not doomed(p)])
            )
        return gone

    def settle(
        self, request: list[Pending], delivered: set[Pending], failed: list[Pending]
    ) -> tuple[list[tuple[Pending, Failed]], int]:
        """A request came back: `delivered` reached SQS, `failed` failed for good, the rest
        will be retried. Returns the messages halted in consequence, each with its `Failed`,
        and how many messages a later one of their FIFO group overtook (none here)."""
        return [], 0


class FifoAccumulator(Accumulator):
    """A FIFO queue's waiting messages: one request's worth per group on its way (`_fifo`)."""

    fifo = True

    def __init__(
        self,
        queue_url: str,
        traits: QueueTraits,
        *,
        max_request_bytes: int,
        ready: Callable[[], None],
        per_group: int,
    ) -> None:
        super().__init__(queue_url, traits, max_request_bytes=max_request_bytes, ready=ready)
        self._scheduler: FifoScheduler[Pending] = FifoScheduler(
            max_bytes=max_request_bytes, per_group=per_group
        )
        self._per_group = per_group

    def add(self, pending: Pending) -> None:
        self._scheduler.add(pending)
        if not self.holders or self._scheduler.has_full_batch:
            self._ready()

    def requeue(self, retried: list[Pending]) -> None:
        self._scheduler.retry(retried)

    def take(self) -> list[Pending] | None:
        scheduler = self._scheduler
        if scheduler.has_full_batch or (not self.holders and scheduler.ready_groups):
            batch = scheduler.next_batch()
            return None if batch is None else batch.messages
        return None

    def remove(self, doomed: Callable[[Pending], bool]) -> list[Pending]:
        return self._scheduler.remove(doomed)

    def settle(
        self, request: list[Pending], delivered: set[Pending], failed: list[Pending]
    ) -> tuple[list[tuple[Pending, Failed]], int]:
        """Groups move on; a failure halts what is queued behind it, and the messages of its
        group later in the same request that were to be retried. A ledger that `halts_groups`
        halts the group for the rest of its life (see `Ledger.halt`)."""
        scheduler = self._scheduler
        halted: list[tuple[Pending, Failed]] = []
        if not failed:
            for pending in delivered:
                scheduler.delivered(pending)
            return halted, overtaken(request, delivered.__contains__) if self._per_group > 1 else 0
        final = set(failed)
        stopped: dict[str, str] = {}  # group -> why, for its later messages in this request
        for pending in request:
            group = group_of(pending)
            if pending in delivered:
                scheduler.delivered(pending)
            elif pending in final:
                why = f"message #{pending.message.index} failed ({pending.code})"
                stopped.setdefault(group, why)
                halted += [(f, f.halted(why)) for f in scheduler.failed(pending)]
                if pending.ledger.halts_groups:
                    pending.ledger.halted.setdefault((self.queue_url, group), why)
            elif group in stopped:
                scheduler.failed(pending)
                halted.append((pending, pending.halted(stopped[group])))
        return halted, overtaken(request, delivered.__contains__) if self._per_group > 1 else 0
