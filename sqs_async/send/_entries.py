"""From a caller's record to the SQS entry that is validated and sent.

A record goes out as it is (a `str` body or a mapping of entry fields) unless the sender has
a `serializer`, which turns any record into a body or an entry (`json.dumps`, say).
`message_group_id` and `message_deduplication_id` fill those fields from the record when the
entry has none (the deduplication id on FIFO queues only: SQS rejects it on standard queues;
a group id is valid on both, as standard queues use it for fairness). With `QueueField`
routing, the field naming the queue is taken out of a mapping record before it is sent.
Whatever a caller's function raises fails that record alone (code `InvalidRecord`), never the
send.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import INVALID_RECORD
from ._validation import Rejection

RecordFunction = Callable[[Any], Any]


@dataclass(frozen=True)
class QueueField:
    """Route each record to the queue named in its field `name` (a queue name, or a URL when
    given as `queue_url`). The field is not sent: the rest of the mapping is the entry."""

    name: str

    def __call__(self, record: Any) -> str:
        value = record.get(self.name) if isinstance(record, Mapping) else None
        if not isinstance(value, str) or not value:
            raise ValueError(f"the record has no queue in its field {self.name!r}")
        return value


def stable_hash(record: Any) -> str:
    """SHA-256 (hex) of the record's canonical JSON: equal records hash equal in any process.

    Made for `message_deduplication_id`: when a runner retries a bundle, the records sent
    again carry the same deduplication id, and a FIFO queue drops them within its 5-minute
    deduplication window. Records must be JSON-like (str, numbers, bool, None, lists, tuples,
    str-keyed mappings, bytes).
    """
    canonical = json.dumps(
        record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_bytes_to_json
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _bytes_to_json(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON-like")


class EntryBuilder:
    """Applies a sender's record functions; `build` returns the entry or a `Rejection`."""

    def __init__(
        self,
        *,
        serializer: RecordFunction | None = None,
        message_group_id: str | RecordFunction | None = None,
        message_deduplication_id: RecordFunction | None = None,
        queue_field: str | None = None,
    ) -> None:
        self._serializer = serializer
        self._group_id = message_group_id
        self._deduplication_id = message_deduplication_id
        self._queue_field = queue_field
        self.is_identity = not (
            serializer or message_group_id or message_deduplication_id or queue_field
        )

    def build(self, record: Any, *, fifo: bool) -> Any:
        """The entry for `record` bound for a FIFO queue or not (a str or a mapping, validated
        later), or a `Rejection`. The deduplication id function applies to FIFO queues only:
        SQS rejects the field on a standard queue."""
        if self.is_identity:
            return record
        try:
            return self._build(record, fifo)
        except Exception as exc:  # a caller's function failed on this record
            return Rejection(INVALID_RECORD, str(exc))

    def _build(self, record: Any, fifo: bool) -> Any:
        entry = record
        if self._serializer is not None:
            entry = self._call("serializer", self._serializer, record)
        elif self._queue_field is not None and isinstance(record, Mapping):
            entry = {k: v for k, v in record.items() if k != self._queue_field}
        deduplication_id = self._deduplication_id if fifo else None
        if self._group_id is None and deduplication_id is None:
            return entry
        fields = dict(entry) if isinstance(entry, Mapping) else {"MessageBody": entry}
        if self._group_id is not None and fields.get("MessageGroupId") is None:
            group = self._group_id
            fields["MessageGroupId"] = (
                group if isinstance(group, str) else self._call("message_group_id", group, record)
            )
        if deduplication_id is not None and fields.get("MessageDeduplicationId") is None:
            fields["MessageDeduplicationId"] = self._call(
                "message_deduplication_id", deduplication_id, record
            )
        return fields

    @staticmethod
    def _call(what: str, function: RecordFunction, record: Any) -> Any:
        try:
            return function(record)
        except Exception as exc:
            raise ValueError(f"{what} failed on this record: {type(exc).__name__}: {exc}") from exc
