"""Per-group order for FIFO queues: which messages may go in the next request.

SQS keeps a FIFO group in the order in which it accepts the group's messages. Retries break
that order in two ways: two requests with messages of one group in flight at once, and one
request in which SQS fails a group's first message but accepts its second. So a group has at
most one request's worth of messages on its way, and by default one message (`per_group=1`):
a group's next message waits until the one before it is delivered or has failed for good. A
message waiting to be retried is still on its way: nothing of its group overtakes it, and
`retry` puts it back at the head of its group. Different groups go in parallel, ten per
request. With `per_group` up to 10, a request carries that many consecutive messages of a
group (SQS stores a request's entries in order): a group then moves up to ten messages per
round trip, and order holds unless SQS fails an entry on its own while accepting a later entry
of its group in the same request (`overtaken` counts such cases).

When a message fails for good, the messages of its group behind it are not sent (`failed`
returns them, to fail with code `PrecedingMessageFailed`), so a consumer never sees a later
message of a group while an earlier one is silently missing. Whether later messages of the
group are halted too is the caller's choice (a bulk `send` halts them, for the rest of the call).

Pure logic: no I/O, no asyncio. Items are anything with `size` and `fields` (the message's
wire fields, with `MessageGroupId`); they are told apart by identity.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

from ..defaults import MAX_BATCH_ENTRIES
from ._batching import Batch


class Grouped(Protocol):
    @property
    def size(self) -> int: ...

    @property
    def fields(self) -> dict[str, Any]: ...


T = TypeVar("T", bound=Grouped)


def group_of(item: Grouped) -> str:
    return str(item.fields["MessageGroupId"])


class FifoScheduler(Generic[T]):
    """Queues items per group and hands out batches of group heads."""

    def __init__(
        self, *, max_bytes: int, max_entries: int = MAX_BATCH_ENTRIES, per_group: int = 1
    ) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.per_group = per_group
        self._queued: dict[str, deque[T]] = {}
        self._ready: OrderedDict[str, None] = OrderedDict()  # heads may go now, oldest first
        self._on_way: dict[int, str] = {}  # id(item) -> group, sent or waiting for a retry
        self._busy: dict[str, int] = {}  # group -> items on their way
        self.queued = 0

    @property
    def ready_groups(self) -> int:
        return len(self._ready)

    @property
    def has_full_batch(self) -> bool:
        """The ready groups have enough items to fill a request (ignoring bytes)."""
        count = 0
        for group in self._ready:  # stops after at most `max_entries` groups
            count += min(len(self._queued[group]), self.per_group)
            if count >= self.max_entries:
                return True
        return False

    def add(self, item: T) -> None:
        """Queue `item` behind its group."""
        group = group_of(item)
        queue = self._queued.get(group)
        if queue is None:
            queue = self._queued[group] = deque()
        queue.append(item)
        self.queued += 1
        if len(queue) == 1 and group not in self._busy:
            self._ready[group] = None

    def next_batch(self) -> Batch[T] | None:
        """Up to `per_group` heads of each ready group (oldest groups first), at most
        `max_entries` in all, now on their way."""
        batch: Batch[T] = Batch()
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
                self._on_way[id(head)] = group
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

    def delivered(self, item: T) -> None:
        """`item` reached SQS: once its group has nothing else on its way, the group's next
        item may go."""
        self._settle(self._on_way.pop(id(item)))

    def retry(self, items: Iterable[T]) -> None:
        """Items on their way that are to be sent again (their backoff has passed): back at
        the head of their groups, in their order, ahead of every other group."""
        by_group: dict[str, list[T]] = {}
        for item in items:
            by_group.setdefault(self._on_way.pop(id(item)), []).append(item)
        for group, retried in by_group.items():
            queue = self._queued.get(group)
            if queue is None:
                queue = self._queued[group] = deque()
            queue.extendleft(reversed(retried))
            self.queued += len(retried)
            self._busy[group] -= len(retried)
            if not self._busy[group]:
                del self._busy[group]
                self._ready[group] = None
                self._ready.move_to_end(group, last=False)

    def failed(self, item: T) -> list[T]:
        """`item` failed for good: returns (and forgets) its group's queued items, which must
        not be sent after it (see module doc)."""
        group = self._on_way.pop(id(item))
        followers = self.halt(group)
        self._settle(group)
        return followers

    def halt(self, group: str) -> list[T]:
        """Remove and return what is queued for `group`."""
        self._ready.pop(group, None)
        queue = self._queued.pop(group, deque())
        self.queued -= len(queue)
        return list(queue)

    def remove(self, doomed: Callable[[T], bool]) -> list[T]:
        """Remove and return the queued `doomed` items (their send ended)."""
        gone: list[T] = []
        for group in list(self._queued):
            queue = self._queued[group]
            if not any(doomed(item) for item in queue):
                continue
            kept = deque(item for item in queue if not doomed(item))
            gone += [item for item in queue if doomed(item)]
            self.queued -= len(queue) - len(kept)
            if kept:
                self._queued[group] = kept
            else:
                del self._queued[group]
                self._ready.pop(group, None)
        return gone

    def _settle(self, group: str) -> None:
        self._busy[group] -= 1
        if self._busy[group]:
            return
        del self._busy[group]
        if self._queued.get(group):
            self._ready[group] = None
        else:
            self._queued.pop(group, None)


def overtaken(request: list[Any], accepted: Callable[[Any], bool]) -> int:
    """Entries of a request that did not reach SQS while a later entry of their group did:
    possible only with several messages of a FIFO group in one request."""
    count = 0
    waiting: set[str] = set()  # groups with an earlier entry that did not reach SQS
    for item in request:
        group = group_of(item)
        if not accepted(item):
            waiting.add(group)
        elif group in waiting:
            count += 1
            waiting.discard(group)
    return count
