"""What became of each message: `Delivered` or `Failed`, and the `SendResult` that holds them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Delivered:
    """A message SQS accepted.

    `record` is the caller's input, untouched; `index` is its position in the input.
    """

    record: Any
    index: int
    message_id: str
    attempts: int
    sequence_number: str | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """A message that was not delivered, and why.

    `attempts` is 0 when the message was rejected by validation, before any request.
    `sender_fault` is True when the message itself is at fault: sending it again unchanged
    will fail again.
    """

    record: Any
    index: int
    code: str
    message: str
    sender_fault: bool
    attempts: int


@dataclass(slots=True)
class SendResult:
    """The outcome of one `SqsSender.send`: every input message is in exactly one list.

    The counters describe the requests made: `requests` (SendMessageBatch calls, retries
    included), `retried` (entries sent again after a transient failure), `throttled`
    (requests refused for throttling), `bytes_delivered` (message bytes as SQS counts them)
    and `latencies` (seconds per request).
    """

    delivered: list[Delivered] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    requests: int = 0
    retried: int = 0
    throttled: int = 0
    bytes_delivered: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.delivered) + len(self.failed)

    def absorb(self, task: asyncio.Task[SendResult]) -> None:
        """Add the result of a finished batch task (a done callback); failures are raised
        by whoever awaits the task."""
        if task.cancelled() or task.exception() is not None:
            return
        part = task.result()
        self.delivered.extend(part.delivered)
        self.failed.extend(part.failed)
        self.requests += part.requests
        self.retried += part.retried
        self.throttled += part.throttled
        self.bytes_delivered += part.bytes_delivered
        self.latencies.extend(part.latencies)
