"""Packs messages, in the order given, into SendMessageBatch-sized batches.

A batch holds at most `max_entries` items whose sizes add up to at most `max_bytes`; an item
is anything with a `size` (the engine packs the messages waiting in an accumulator).
Pure logic: no I/O, no asyncio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from ..defaults import MAX_BATCH_ENTRIES


class Sized(Protocol):
    @property
    def size(self) -> int: ...


T = TypeVar("T", bound=Sized)


@dataclass(slots=True)
class Batch(Generic[T]):
    messages: list[T] = field(default_factory=list)
    size: int = 0


class BatchPacker(Generic[T]):
    """Accumulates items and hands back each batch as soon as it is full."""

    def __init__(self, *, max_bytes: int, max_entries: int = MAX_BATCH_ENTRIES) -> None:
        if not 1 <= max_entries <= MAX_BATCH_ENTRIES:
            raise ValueError(f"max_entries must be 1 to {MAX_BATCH_ENTRIES}, got {max_entries}")
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._current: Batch[T] = Batch()

    def add(self, message: T) -> Batch[T] | None:
        """Add an item; return the batch it closed, if any.

        An item larger than `max_bytes` is the caller's error: validation limits message
        size to at most the request size.
        """
        if message.size > self.max_bytes:
            raise ValueError(f"message of {message.size} bytes exceeds the batch limit")
        closed = None
        if self._current.size + message.size > self.max_bytes:
            closed = self.flush()
        self._current.messages.append(message)
        self._current.size += message.size
        if len(self._current.messages) == self.max_entries:
            # Never two batches at once: a batch just emptied by the byte check holds one
            # message now, and with max_entries == 1 the byte check never finds one to close.
            return self.flush()
        return closed

    def flush(self) -> Batch[T] | None:
        """Return the partly filled batch, if any, and start a new one."""
        if not self._current.messages:
            return None
        batch, self._current = self._current, Batch()
        return batch

    def remove(self, doomed: Callable[[T], bool]) -> list[T]:
        """Take the `doomed` items out of the partly filled batch."""
        current = self._current
        gone = [m for m in current.messages if doomed(m)]
        if gone:
            current.messages = [m for m in current.messages if not doomed(m)]
            current.size -= sum(m.size for m in gone)
        return gone
