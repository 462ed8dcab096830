"""Packs valid messages, in input order, into SendMessageBatch-sized batches.

A batch holds at most `max_entries` messages whose sizes add up to at most `max_bytes`.
Pure logic: no I/O, no asyncio.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .validation import OutgoingMessage

MAX_BATCH_ENTRIES = 10


@dataclass(slots=True)
class Batch:
    messages: list[OutgoingMessage] = field(default_factory=list)
    size: int = 0


class BatchPacker:
    """Accumulates messages and hands back each batch as soon as it is full."""

    def __init__(self, *, max_bytes: int, max_entries: int = MAX_BATCH_ENTRIES) -> None:
        if not 1 <= max_entries <= MAX_BATCH_ENTRIES:
            raise ValueError(f"max_entries must be 1 to {MAX_BATCH_ENTRIES}, got {max_entries}")
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._current = Batch()

    def add(self, message: OutgoingMessage) -> Batch | None:
        """Add a message; return the batch it closed, if any.

        A message larger than `max_bytes` is the caller's error: validation limits message
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

    @property
    def is_empty(self) -> bool:
        return not self._current.messages

    def flush(self) -> Batch | None:
        """Return the partly filled batch, if any, and start a new one."""
        if not self._current.messages:
            return None
        batch, self._current = self._current, Batch()
        return batch
