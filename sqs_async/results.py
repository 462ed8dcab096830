"""What became of each message: `Delivered` or `Failed`, and the `SendResult` that holds them."""

from __future__ import annotations

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

    `delivered_count` counts the delivered messages even when `send(keep_delivered=False)`
    leaves `delivered` empty to keep memory flat. The counters describe the requests made:
    `requests` (SendMessageBatch calls, retries included), `retried` (entries sent again
    after a transient failure), `throttled` (throttling errors, per request or entry),
    `bytes_delivered` (message bytes as SQS counts them), `latencies` (seconds per
    request) and `throttled_seconds` (time the sender ran below `max_in_flight` because SQS
    throttled or failed with 5xx) and `possible_duplicates` (entries sent again after a
    timeout or a dropped connection, when SQS may already have accepted them: on a standard
    queue each may be delivered twice), `reordered` (entries SQS failed on their own while it
    accepted a later entry of their FIFO group in the same request, possible only with
    `fifo_messages_per_group` above 1: those groups are out of order in the queue).
    """

    delivered: list[Delivered] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    delivered_count: int = 0
    requests: int = 0
    retried: int = 0
    throttled: int = 0
    bytes_delivered: int = 0
    latencies: list[float] = field(default_factory=list)
    throttled_seconds: float = 0.0
    possible_duplicates: int = 0
    reordered: int = 0

    @property
    def total(self) -> int:
        return self.delivered_count + len(self.failed)

    def absorb(self, part: SendResult, *, keep_delivered: bool = True) -> None:
        """Add the result of one batch."""
        if keep_delivered:
            self.delivered.extend(part.delivered)
        self.delivered_count += part.delivered_count
        self.failed.extend(part.failed)
        self.requests += part.requests
        self.retried += part.retried
        self.throttled += part.throttled
        self.bytes_delivered += part.bytes_delivered
        self.latencies.extend(part.latencies)
        self.possible_duplicates += part.possible_duplicates
        self.reordered += part.reordered
