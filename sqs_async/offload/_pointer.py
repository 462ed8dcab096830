"""AWS's extended-client format: the pointer body, the reserved size attribute and the marked
receipt handle, as AWS's Java and Python extended clients write and read them.

    body       ["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":B,"s3Key":K}]
    attribute  ExtendedPayloadSize (Number): the payload's size in UTF-8 bytes
               (SQSLargePayloadSize, the Java library's default, with `legacy_attribute`)
    handle     -..s3BucketName..-B-..s3BucketName..--..s3Key..-K-..s3Key..-ORIGINAL

Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
LEGACY_POINTER_CLASS = "com.amazon.sqs.javamessaging.MessageS3Pointer"
SIZE_ATTRIBUTE = "ExtendedPayloadSize"
LEGACY_SIZE_ATTRIBUTE = "SQSLargePayloadSize"
SIZE_ATTRIBUTES = (SIZE_ATTRIBUTE, LEGACY_SIZE_ATTRIBUTE)
BUCKET_MARKER = "-..s3BucketName..-"
KEY_MARKER = "-..s3Key..-"

# Longer bodies are never pointers (a bucket name is at most 63 characters, a key 1,024 UTF-8
# bytes): a large ordinary body is not parsed.
_MAX_POINTER_LENGTH = 8192


@dataclass(frozen=True, slots=True)
class S3Pointer:
    """Where a payload is stored."""

    bucket: str
    key: str

    @property
    def body(self) -> str:
        """The pointer message's body, compact as the Java library writes it."""
        document = [POINTER_CLASS, {"s3BucketName": self.bucket, "s3Key": self.key}]
        return orjson.dumps(document).decode()

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @classmethod
    def from_location(cls, location: str) -> S3Pointer:
        bucket, _, key = location.removeprefix("s3://").partition("/")
        return cls(bucket, key)


def read_pointer(body: str) -> S3Pointer | None:
    """The pointer `body` holds, in either class name and either JSON spacing; None for any
    other text, JSON or not (a user may send such text as an ordinary body)."""
    if len(body) > _MAX_POINTER_LENGTH or not body.startswith("["):
        return None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if (
        not isinstance(document, list)
        or len(document) != 2
        or document[0] not in (POINTER_CLASS, LEGACY_POINTER_CLASS)
        or not isinstance(document[1], dict)
    ):
        return None
    bucket, key = document[1].get("s3BucketName"), document[1].get("s3Key")
    if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
        return None
    return S3Pointer(bucket, key)


def size_attribute(attributes: Mapping[str, Any]) -> str | None:
    """The name of the reserved size attribute among `attributes`, if one is there."""
    for name in SIZE_ATTRIBUTES:
        if name in attributes:
            return name
    return None


def original_receipt_handle(handle: str) -> str:
    """The SQS receipt handle inside one that AWS's extended clients marked with the
    payload's place; any other handle as it is. As the Java library does it: everything after
    the second key marker (never a split on "-": SQS's own handles contain "-")."""
    first = handle.find(KEY_MARKER)
    if first < 0:
        return handle
    second = handle.find(KEY_MARKER, first + len(KEY_MARKER))
    if second < 0:
        return handle
    return handle[second + len(KEY_MARKER) :]


def marked_receipt_handle(handle: str, pointer: S3Pointer) -> str:
    """`handle` marked with `pointer`, as AWS's extended clients hand handles out."""
    return (
        f"{BUCKET_MARKER}{pointer.bucket}{BUCKET_MARKER}{KEY_MARKER}{pointer.key}{KEY_MARKER}"
        f"{handle}"
    )


def stored_location(attributes: Mapping[str, Any], body: str) -> str | None:
    """Where the body of a message received as it is (no `S3Offload` on the receiver) is
    stored, `s3://bucket/key`, when the message is an extended-client pointer; else None."""
    if size_attribute(attributes) is None:
        return None
    pointer = read_pointer(body)
    return None if pointer is None else pointer.location
