"""Per-group order for FIFO queues: which messages may go in the next request.

SQS keeps a FIFO group in the order in which it accepts the group's messages. Retries break
that order in two ways: two requests with messages of one group in flight at once, and one
request in which SQS fails a group's first message but accepts its second. So a group has at
most one request on its way, and by default one message in it (`per_group=1`): a group's next
message waits until the one before it is delivered. Different groups go in parallel, ten per
request. With `per_group` up to 10, a request carries that many consecutive messages of a
group (SQS stores a request's entries in order): a group then moves up to ten messages per
round trip, and order holds unless SQS fails an entry on its own while accepting a later entry
of its group in the same request (the dispatcher counts such cases as `reordered`).

When a message fails for good (after its retries, or refused by validation), the messages of
its group behind it are not sent: each fails with code `PrecedingMessageFailed`, so a consumer
never sees a later message of a group while an earlier one is silently missing. With
`halt_for_good` (the bulk `send`) the group stays halted for the rest of the call; otherwise
(the streaming producer) only the messages already queued behind the failure are failed.

Pure logic: no I/O, no asyncio.
"""

from __future__ import annotations

from collections import deque

from .batching import MAX_BATCH_ENTRIES, Batch
from .results import Failed
from .validation import OutgoingMessage

# Code of a message not sent because an earlier message of its group failed.
PRECEDING_MESSAGE_FAILED = "PrecedingMessageFailed"


class FifoScheduler:
    """Queues messages per group and hands out batches of group heads."""

    def __init__(
        self,
        *,
        max_bytes: int,
        max_entries: int = MAX_BATCH_ENTRIES,
        per_group: int = 1,
        halt_for_good: bool = True,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.per_group = per_group
        self.halt_for_good = halt_for_good
        self._queued: dict[str, deque[OutgoingMessage]] = {}
        self._ready: dict[str, None] = {}  # groups whose head may go now, oldest first
        self._in_flight: dict[int, str] = {}  # message index -> group
        self._busy: dict[str, int] = {}  # group -> messages in flight
        self._halted: dict[str, str] = {}  # group -> why
        self.queued = 0

    @property
    def ready_groups(self) -> int:
        return len(self._ready)

    @property
    def has_full_batch(self) -> bool:
        """The ready groups have enough messages to fill a request (ignoring bytes)."""
        count = 0
        for group in self._ready:  # stops after at most `max_entries` groups
            count += min(len(self._queued[group]), self.per_group)
            if count >= self.max_entries:
                return True
        return False

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def is_idle(self) -> bool:
        """Nothing queued and nothing on its way."""
        return not self.queued and not self._in_flight

    def add(self, message: OutgoingMessage) -> Failed | None:
        """Queue `message` behind its group; a `Failed` if its group is halted."""
        group = group_of(message)
        if group in self._halted:
            return halted(message, self._halted[group])
        queue = self._queued.setdefault(group, deque())
        queue.append(message)
        self.queued += 1
        if len(queue) == 1 and group not in self._busy:
            self._ready[group] = None
        return None

    def next_batch(self) -> Batch | None:
        """Up to `per_group` heads of each ready group (oldest groups first), at most
        `max_entries` in all, now in flight."""
        batch = Batch()
        for group in list(self._ready):
            queue = self._queued[group]
            taken = 0
            while (
                queue
                and taken < self.per_group
                and len(batch.messages) < self.max_entries
                and batch.size + queue[0].size <= self.max_bytes
            ):
                head = queue.popleft()
                self._in_flight[head.index] = group
                batch.messages.append(head)
                batch.size += head.size
                taken += 1
            if taken:
                del self._ready[group]
                self._busy[group] = taken
                self.queued -= taken
            if len(batch.messages) == self.max_entries:
                break
        return batch if batch.messages else None

    def delivered(self, index: int) -> None:
        """The in-flight message `index` reached SQS: once its group has nothing else on its
        way, the group's next message may go."""
        self._settle(self._in_flight.pop(index))

    def failed(self, index: int, code: str) -> list[Failed]:
        """The in-flight message `index` failed for good: halt its group (see module doc)."""
        group = self._in_flight.pop(index)
        halted = self.halt(group, f"message #{index} failed ({code})")
        self._settle(group)
        return halted

    def _settle(self, group: str) -> None:
        self._busy[group] -= 1
        if self._busy[group]:
            return
        del self._busy[group]
        if self._queued.get(group):
            self._ready[group] = None
        else:
            self._queued.pop(group, None)

    def refused(self, group: str, why: str) -> None:
        """A message of `group` was refused before it was queued (invalid): with
        `halt_for_good`, later messages of the group fail; those queued before it still go."""
        if self.halt_for_good:
            self._halted[group] = why

    def halt(self, group: str, why: str) -> list[Failed]:
        """Fail what is queued for `group`; with `halt_for_good`, also what comes later."""
        if self.halt_for_good:
            self._halted[group] = why
        self._ready.pop(group, None)
        queue = self._queued.pop(group, deque())
        self.queued -= len(queue)
        return [halted(message, why) for message in queue]

    def drain(self) -> list[OutgoingMessage]:
        """Remove and return every queued message (a deadline passed)."""
        messages = [message for queue in self._queued.values() for message in queue]
        self._queued.clear()
        self._ready.clear()
        self.queued = 0
        return messages


def group_of(message: OutgoingMessage) -> str:
    return str(message.fields["MessageGroupId"])


def halted(message: OutgoingMessage, why: str) -> Failed:
    """The `Failed` result of a message held back because an earlier one of its group failed."""
    return Failed(
        record=message.record,
        index=message.index,
        code=PRECEDING_MESSAGE_FAILED,
        message=f"not sent: an earlier message of group {group_of(message)!r} did not reach "
        f"SQS ({why}); sending this one would break the group's order",
        sender_fault=False,
        attempts=0,
    )
