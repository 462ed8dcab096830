"""Checks a caller's record against the rules of SendMessageBatch and measures it.

Pure logic, no I/O: everything SQS would reject for the message itself is caught here, so a
bad message fails alone, with a reason, and never costs a request or fails its neighbours.

A record is a `str` body or a mapping of SQS entry fields (`MessageBody`, `MessageAttributes`,
`MessageSystemAttributes`, `DelaySeconds`, `MessageGroupId`, `MessageDeduplicationId`, and
`Id`, which is kept in the record but never sent: the engine assigns its own wire Ids).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ..defaults import MAX_ATTRIBUTES, MAX_DELAY_SECONDS
from ..errors import (
    INVALID_ATTRIBUTES,
    INVALID_BODY,
    INVALID_CHARACTERS,
    INVALID_DELAY,
    INVALID_FIFO_FIELDS,
    INVALID_RECORD,
    MESSAGE_TOO_LONG,
)
from ..wire import QueueTraits

ENTRY_FIELDS = frozenset(
    {
        "Id",
        "MessageBody",
        "MessageAttributes",
        "MessageSystemAttributes",
        "DelaySeconds",
        "MessageGroupId",
        "MessageDeduplicationId",
    }
)
SYSTEM_ATTRIBUTES = frozenset({"AWSTraceHeader"})

# Characters SQS accepts: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
_FORBIDDEN_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ALLOWED_ASCII = bytes([0x9, 0xA, 0xD, *range(0x20, 0x80)])
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,256}")
_DATA_TYPE = re.compile(r"(String|Number|Binary)(\.[A-Za-z0-9_.\-]+)?")
_FIFO_ID = re.compile(r"[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}")


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A valid message: its wire fields (no Id) and its size as SQS counts it."""

    record: Any
    index: int
    fields: dict[str, Any]
    size: int


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record can never be accepted by SQS."""

    code: str
    reason: str


class _Invalid(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.rejection = Rejection(code, reason)


def prepare(
    entry: Any, index: int, queue: QueueTraits, *, record: Any = None
) -> OutgoingMessage | Rejection:
    """Validate `entry` and build its wire fields, or say why it can never be sent.

    `record` is the caller's record the entry was made from (by a serializer, say), kept in
    the result; by default the entry itself.
    """
    if record is None:
        record = entry
    try:
        fields = _entry_fields(entry)
        size = _body_size(fields.get("MessageBody"))
        if len(fields) > 1 or queue.fifo:  # a bare body on a standard queue: nothing more
            size += _attributes_size(fields.get("MessageAttributes"))
            _check_system_attributes(fields.get("MessageSystemAttributes"))
            _check_delay(fields.get("DelaySeconds"), queue)
            _check_fifo_fields(fields, queue)
    except _Invalid as invalid:
        return invalid.rejection
    if size > queue.max_message_bytes:
        return Rejection(
            MESSAGE_TOO_LONG,
            f"message is {size} bytes (body and attributes, UTF-8); "
            f"the limit is {queue.max_message_bytes} bytes",
        )
    return OutgoingMessage(record=record, index=index, fields=fields, size=size)


def attributes_size(entry: Mapping[str, Any]) -> int | None:
    """The size of `entry`'s message attributes as SQS counts them (names, data types and
    values, as `prepare` counts them), or None when they are not valid (`prepare` says why)."""
    try:
        return _attributes_size(entry.get("MessageAttributes"))
    except _Invalid:
        return None


def _entry_fields(record: Any) -> dict[str, Any]:
    if isinstance(record, str):
        return {"MessageBody": record}
    if not isinstance(record, Mapping):
        raise _Invalid(
            INVALID_RECORD,
            f"a message must be a str body or a mapping of SQS entry fields, "
            f"not {type(record).__name__}",
        )
    unknown = [key for key in record if key not in ENTRY_FIELDS]
    if unknown:
        raise _Invalid(
            INVALID_RECORD,
            f"unknown entry field(s) {sorted(map(str, unknown))}; allowed: {sorted(ENTRY_FIELDS)}",
        )
    return {key: value for key, value in record.items() if key != "Id" and value is not None}


def _check_text(text: str, what: str) -> None:
    # Fast path for ASCII (most messages): deleting every allowed byte must leave nothing.
    if text.isascii() and not text.encode("ascii").translate(None, _ALLOWED_ASCII):
        return
    bad = _FORBIDDEN_CHAR.search(text)
    if bad is not None:
        raise _Invalid(
            INVALID_CHARACTERS,
            f"{what} contains U+{ord(bad.group()):04X} at position {bad.start()}, "
            "a character SQS does not accept",
        )


def _body_size(body: Any) -> int:
    if body is None:
        raise _Invalid(INVALID_BODY, "MessageBody is missing")
    if not isinstance(body, str):
        raise _Invalid(INVALID_BODY, f"MessageBody must be str, not {type(body).__name__}")
    if not body:
        raise _Invalid(INVALID_BODY, "MessageBody is empty; SQS requires at least 1 character")
    _check_text(body, "MessageBody")
    return len(body) if body.isascii() else len(body.encode("utf-8"))


def _attributes_size(attributes: Any) -> int:
    """Size of the attributes as SQS counts it: names, data types and values."""
    if attributes is None:
        return 0
    if not isinstance(attributes, Mapping):
        raise _Invalid(INVALID_ATTRIBUTES, "MessageAttributes must be a mapping of name to value")
    if len(attributes) > MAX_ATTRIBUTES:
        raise _Invalid(
            INVALID_ATTRIBUTES,
            f"{len(attributes)} message attributes; SQS allows at most {MAX_ATTRIBUTES}",
        )
    return sum(_attribute_size(name, value) for name, value in attributes.items())


def _attribute_size(name: Any, value: Any) -> int:
    _check_attribute_name(name)
    if not isinstance(value, Mapping):
        raise _Invalid(
            INVALID_ATTRIBUTES,
            f"attribute {name!r} must be a mapping with DataType and StringValue or BinaryValue",
        )
    data_type = value.get("DataType")
    if (
        not isinstance(data_type, str)
        or not _DATA_TYPE.fullmatch(data_type)
        or len(data_type) > 256
    ):
        raise _Invalid(
            INVALID_ATTRIBUTES,
            f"attribute {name!r} has DataType {data_type!r}; "
            "use String, Number or Binary, optionally with a custom suffix such as String.json",
        )
    extra = set(value) - {"DataType", "StringValue", "BinaryValue"}
    if extra:
        raise _Invalid(
            INVALID_ATTRIBUTES, f"attribute {name!r} has unsupported field(s) {sorted(extra)}"
        )
    size = len(name.encode("utf-8")) + len(data_type.encode("utf-8"))
    if data_type.startswith("Binary"):
        binary = value.get("BinaryValue")
        if not isinstance(binary, bytes | bytearray | memoryview) or "StringValue" in value:
            raise _Invalid(
                INVALID_ATTRIBUTES, f"Binary attribute {name!r} needs a bytes BinaryValue"
            )
        if len(binary) == 0:
            raise _Invalid(INVALID_ATTRIBUTES, f"attribute {name!r} has an empty value")
        return size + len(binary)
    text = value.get("StringValue")
    if not isinstance(text, str) or "BinaryValue" in value:
        raise _Invalid(
            INVALID_ATTRIBUTES, f"{data_type} attribute {name!r} needs a str StringValue"
        )
    if not text:
        raise _Invalid(INVALID_ATTRIBUTES, f"attribute {name!r} has an empty value")
    _check_text(text, f"attribute {name!r}")
    if data_type.startswith("Number"):
        _check_number(name, text)
    return size + len(text.encode("utf-8"))


def _check_attribute_name(name: Any) -> None:
    if (
        not isinstance(name, str)
        or not _ATTRIBUTE_NAME.fullmatch(name)
        or name.startswith(".")
        or name.endswith(".")
        or ".." in name
        or name.lower().startswith(("aws.", "amazon."))
    ):
        raise _Invalid(
            INVALID_ATTRIBUTES,
            f"attribute name {name!r} is invalid: use 1-256 of A-Z a-z 0-9 _ - ., no leading, "
            "trailing or repeated periods, and no AWS. or Amazon. prefix",
        )


def _check_number(name: str, text: str) -> None:
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise _Invalid(INVALID_ATTRIBUTES, f"Number attribute {name!r} is not a number: {text!r}")


def _check_system_attributes(attributes: Any) -> None:
    if attributes is None:
        return
    if not isinstance(attributes, Mapping):
        raise _Invalid(INVALID_ATTRIBUTES, "MessageSystemAttributes must be a mapping")
    for name, value in attributes.items():
        if name not in SYSTEM_ATTRIBUTES:
            raise _Invalid(
                INVALID_ATTRIBUTES,
                f"system attribute {name!r} is not supported; SQS accepts only AWSTraceHeader",
            )
        if (
            not isinstance(value, Mapping)
            or value.get("DataType") != "String"
            or not isinstance(value.get("StringValue"), str)
            or not value["StringValue"]
        ):
            raise _Invalid(
                INVALID_ATTRIBUTES,
                f"system attribute {name!r} needs DataType 'String' and a non-empty StringValue",
            )


def _check_delay(delay: Any, queue: QueueTraits) -> None:
    if delay is None:
        return
    if isinstance(delay, bool) or not isinstance(delay, int):
        raise _Invalid(INVALID_DELAY, f"DelaySeconds must be an int, not {type(delay).__name__}")
    if not 0 <= delay <= MAX_DELAY_SECONDS:
        raise _Invalid(
            INVALID_DELAY, f"DelaySeconds is {delay}; it must be 0 to {MAX_DELAY_SECONDS}"
        )
    if queue.fifo and delay:
        raise _Invalid(
            INVALID_DELAY,
            "FIFO queues do not accept a per-message DelaySeconds; set it on the queue",
        )


def _check_fifo_fields(fields: Mapping[str, Any], queue: QueueTraits) -> None:
    for name in ("MessageGroupId", "MessageDeduplicationId"):
        value = fields.get(name)
        if value is not None and (not isinstance(value, str) or not _FIFO_ID.fullmatch(value)):
            raise _Invalid(
                INVALID_FIFO_FIELDS,
                f"{name} must be 1-128 alphanumeric or punctuation characters, got {value!r}",
            )
    if not queue.fifo:
        if fields.get("MessageDeduplicationId") is not None:
            raise _Invalid(
                INVALID_FIFO_FIELDS,
                "MessageDeduplicationId applies only to FIFO queues; SQS refuses it on a "
                "standard queue",
            )
        return
    if "MessageGroupId" not in fields:
        raise _Invalid(INVALID_FIFO_FIELDS, "a FIFO queue requires MessageGroupId")
    if "MessageDeduplicationId" not in fields and not queue.content_based_deduplication:
        raise _Invalid(
            INVALID_FIFO_FIELDS,
            "this FIFO queue has no content-based deduplication: set MessageDeduplicationId",
        )
