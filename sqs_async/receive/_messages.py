"""What a receiver hands out and reports: `ReceivedMessage`, `AckResult`, `ReceiverStats`.

Plain values: no I/O, no asyncio.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import SqsAsyncError


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A message as received: `attributes` are SQS's (`SentTimestamp`, `MessageGroupId`,
    `ApproximateReceiveCount`, ...), `message_attributes` the sender's, as SQS returns them.
    `payload_location`: where a payload stage found the body (`s3://bucket/key` for a message
    whose body was stored in S3; see `sqs_async.offload`), else None."""

    message_id: str
    body: str
    receipt_handle: str = field(repr=False)
    attributes: dict[str, str] = field(default_factory=dict)
    message_attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    md5_of_body: str = ""
    payload_location: str | None = None

    @classmethod
    def from_response(cls, raw: dict[str, Any]) -> ReceivedMessage:
        """One message of a `ReceiveMessage` answer (its mappings are taken, not copied: the
        answer is parsed for this receive alone)."""
        return cls(
            message_id=str(raw.get("MessageId") or ""),
            body=str(raw.get("Body") or ""),
            receipt_handle=str(raw["ReceiptHandle"]),
            attributes=raw.get("Attributes") or {},
            message_attributes=raw.get("MessageAttributes") or {},
            md5_of_body=str(raw.get("MD5OfBody") or ""),
        )

    def without_payload(self) -> ReceivedMessage:
        """This message without the body a payload stage fetched (`payload_location` set),
        for what only acks it: a held large body is not kept twice. Otherwise itself."""
        return self if self.payload_location is None else replace(self, body="")

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
        if self.payload_location is not None:
            record["PayloadLocation"] = self.payload_location
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
    """A receiver's counters, from the moment it was made (they only grow)."""

    received: int = 0
    deleted: int = 0
    delete_failures: int = 0
    released: int = 0
    extensions: int = 0
    extension_failures: int = 0
    receive_calls: int = 0
    empty_receives: int = 0  # answers with no message
    found_empty: int = 0  # times the queue was found empty (see `_polling.EmptyQueue`)
    receive_seconds: float = 0.0
    # Time spent backing off after SQS throttled a call (receive, delete, visibility change).
    throttled_seconds: float = 0.0
    # Received messages the payload stage's `incoming` failed on (not handed out, no longer
    # held: SQS gives them out again after their visibility timeout).
    stage_failures: int = 0
    # Deleted messages the payload stage's `deleted` failed on (the deletes stand).
    ack_stage_failures: int = 0
    # Received messages the payload stage discarded (`stages.Discard`), deleted unseen.
    discarded: int = 0
