"""Where valid messages wait for a request: one accumulator per destination queue, alive as
long as the sender.

Both ways in feed the same accumulators: `SqsSender.send` (a `Ledger` per call) and
`SqsProducer.put` (a `Ledger` per producer). The dispatcher drains them: `take` hands out the
entries of the next request. A retried entry comes back (`requeue`) once its backoff has
passed, and leaves in the next request that has room, beside fresh messages.

A full batch leaves as soon as a request slot is free. A partly filled batch waits while a
feeder `hold`s the accumulator (a send still reading its input, a producer within its
linger) and leaves once nobody does: a request does not go out a tenth full while more
messages are about to come.

`Accumulator` packs a standard queue's entries in arrival order; `FifoAccumulator` keeps each
message group in order (see `fifo`). Pure logic: no I/O, no asyncio.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import DEADLINE_EXCEEDED, PRECEDING_MESSAGE_FAILED, SqsClientError
from ..results import Delivered, Failed, SendResult
from ..wire import QueueTraits
from ._batching import BatchPacker
from ._fifo import FifoScheduler, group_of, overtaken
from ._validation import OutgoingMessage


class Ledger:
    """Where the outcomes of one `send` call, or of one producer, go: the one channel back.

    Every entry ends in exactly one `absorb`ed part (a `SendResult` with its `Delivered` or
    `Failed`, and the counters of the requests it was in). `refuse` says that a queue refused a
    request for good. A ledger that is no longer `live` (its call ended early, its deadline
    passed) gets no more of its entries sent.
    """

    # A message that fails for good halts the rest of its FIFO group for the ledger's life
    # (a bulk send does; a producer fails only what is queued behind the failure).
    halts_groups = False
    # Whether outcomes carry each `Delivered` (else only the count: flat memory, less work).
    keeps_delivered = True

    def __init__(self, deadline_at: float | None = None) -> None:
        self.deadline_at = deadline_at
        self.live = True
        self.halted: dict[tuple[str, str], str] = {}  # (queue, group) -> why

    def owns(self, entry: Entry) -> bool:
        return entry.ledger is self

    def absorb(self, part: SendResult) -> None:
        raise NotImplementedError

    def refuse(self, error: SqsClientError, queue_url: str, entries: list[Entry]) -> None:
        """`queue_url` refused a request for good; `entries`: this ledger's messages that were
        in it or waiting for it (no longer in any accumulator)."""
        raise NotImplementedError


class Entry:
    """A valid message on its way, with what happened on its last attempt."""

    __slots__ = ("attempts", "code", "fields", "ledger", "maybe_sent", "message", "reason", "size")

    def __init__(self, message: OutgoingMessage, ledger: Ledger) -> None:
        self.message = message
        self.ledger = ledger
        self.size = message.size
        self.fields = message.fields
        self.attempts = 0
        self.code = ""
        self.reason = ""
        self.maybe_sent = False  # the last attempt may have reached SQS

    def delivered(self, message_id: str, sequence_number: str | None) -> Delivered:
        return Delivered(
            record=self.message.record,
            index=self.message.index,
            message_id=message_id,
            attempts=self.attempts,
            sequence_number=sequence_number,
        )

    def failed(self, *, sender_fault: bool, code: str | None = None, reason: str = "") -> Failed:
        """Failed with the last attempt's error, or with `code` and `reason`."""
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
    """A standard queue's waiting entries, packed in arrival order."""

    fifo = False

    def __init__(self, queue_url: str, traits: QueueTraits, *, max_request_bytes: int) -> None:
        self.queue_url = queue_url
        self.traits = traits
        self.holders = 0
        self._packer: BatchPacker[Entry] = BatchPacker(max_bytes=max_request_bytes)
        self._full: deque[list[Entry]] = deque()

    def hold(self) -> None:
        """A feeder may add more soon: keep a partly filled batch for it."""
        self.holders += 1

    def let_go(self) -> None:
        self.holders -= 1

    def admit(self, entry: Entry) -> Failed | None:
        """A `Failed` if `entry` may not be queued (see `FifoAccumulator`), else None."""
        return None

    def refused(self, ledger: Ledger, group: Any, why: str) -> None:
        """A message of the ledger failed validation (see `FifoAccumulator`)."""

    def add(self, entry: Entry) -> bool:
        """Queue a fresh entry; True when a full batch is ready."""
        batch = self._packer.add(entry)
        if batch is None:
            return False
        self._full.append(batch.messages)
        return True

    def requeue(self, entries: list[Entry]) -> None:
        """Entries whose backoff has passed: they go with the next request that has room."""
        for entry in entries:
            self.add(entry)

    def take(self) -> list[Entry] | None:
        """The entries of the next request, if one should go now."""
        if self._full:
            return self._full.popleft()
        if self.holders:
            return None
        batch = self._packer.flush()
        return None if batch is None else batch.messages

    def remove(self, doomed: Callable[[Entry], bool]) -> list[Entry]:
        """Take the waiting `doomed` entries out (their ledger expired or ended)."""
        gone = self._packer.remove(doomed)
        for batch in self._full:
            gone += [entry for entry in batch if doomed(entry)]
        if gone:
            self._full = deque(
                kept for batch in self._full if (kept := [e for e in batch if not doomed(e)])
            )
        return gone

    def settle(
        self, request: list[Entry], delivered: set[Entry], failed: list[Entry]
    ) -> tuple[list[tuple[Entry, Failed]], int]:
        """A request came back: `delivered` reached SQS, `failed` failed for good, the rest
        will be retried. Returns the entries halted in consequence, each with its `Failed`,
        and how many entries a later entry of their FIFO group overtook (none here)."""
        return [], 0


class FifoAccumulator(Accumulator):
    """A FIFO queue's waiting entries: one request's worth per group on its way (see `fifo`)."""

    fifo = True

    def __init__(
        self, queue_url: str, traits: QueueTraits, *, max_request_bytes: int, per_group: int
    ) -> None:
        super().__init__(queue_url, traits, max_request_bytes=max_request_bytes)
        self._scheduler: FifoScheduler[Entry] = FifoScheduler(
            max_bytes=max_request_bytes, per_group=per_group
        )
        self._per_group = per_group

    def admit(self, entry: Entry) -> Failed | None:
        """A `Failed` if `entry`'s group is halted for its ledger, else None."""
        if entry.ledger.halted:
            why = entry.ledger.halted.get((self.queue_url, group_of(entry)))
            if why is not None:
                return entry.halted(why)
        return None

    def refused(self, ledger: Ledger, group: Any, why: str) -> None:
        """A message of `group` failed validation: with `halts_groups`, the rest of the group
        is refused (what is queued already still goes)."""
        if ledger.halts_groups and isinstance(group, str):
            ledger.halted[(self.queue_url, group)] = why

    def add(self, entry: Entry) -> bool:
        self._scheduler.add(entry)
        return self._scheduler.has_full_batch

    def requeue(self, entries: list[Entry]) -> None:
        self._scheduler.retry(entries)

    def take(self) -> list[Entry] | None:
        scheduler = self._scheduler
        if scheduler.has_full_batch or (not self.holders and scheduler.ready_groups):
            batch = scheduler.next_batch()
            return None if batch is None else batch.messages
        return None

    def remove(self, doomed: Callable[[Entry], bool]) -> list[Entry]:
        return self._scheduler.remove(doomed)

    def settle(
        self, request: list[Entry], delivered: set[Entry], failed: list[Entry]
    ) -> tuple[list[tuple[Entry, Failed]], int]:
        """Groups move on; a failure halts what is queued behind it, and the entries of its
        group later in the same request that were to be retried."""
        scheduler = self._scheduler
        halted: list[tuple[Entry, Failed]] = []
        if not failed:
            for entry in delivered:
                scheduler.delivered(entry)
            return halted, overtaken(request, delivered.__contains__) if self._per_group > 1 else 0
        final = set(failed)
        stopped: dict[str, str] = {}  # group -> why, for its later entries in this request
        for entry in request:
            group = group_of(entry)
            if entry in delivered:
                scheduler.delivered(entry)
            elif entry in final:
                why = f"message #{entry.message.index} failed ({entry.code})"
                stopped.setdefault(group, why)
                halted += [(f, f.halted(why)) for f in scheduler.failed(entry)]
                if entry.ledger.halts_groups:
                    entry.ledger.halted.setdefault((self.queue_url, group), why)
            elif group in stopped:
                scheduler.failed(entry)
                halted.append((entry, entry.halted(stopped[group])))
        return halted, overtaken(request, delivered.__contains__) if self._per_group > 1 else 0
