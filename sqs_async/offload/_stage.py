"""`S3Offload`: the payload stage that moves large bodies through S3 (see the package doc)."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from .. import defaults
from ..checks import check_number
from ..config import ConnectionConfig
from ..errors import SqsAsyncError
from ..receive import ReceivedMessage
from ..retry import RetryPolicy, default_sleep
from ..send._validation import attributes_size
from ..stages import Discard, PayloadStage
from ..wire import QueueTraits
from ._pointer import (
    LEGACY_SIZE_ATTRIBUTE,
    SIZE_ATTRIBUTE,
    SIZE_ATTRIBUTES,
    S3Pointer,
    read_pointer,
    size_attribute,
)
from ._s3 import S3Transfers, open_s3_client

log = logging.getLogger("sqs_async")

# As the Java library allows: up to 988 characters from these, not starting with "." or "/",
# without "..".
_KEY_PREFIX = re.compile(r"(?![./])(?!.*\.\.)[a-zA-Z0-9./_-]{0,988}")
# What botocore lets through as a bucket name (S3 itself is stricter for new buckets).
_BUCKET = re.compile(r"[a-zA-Z0-9.\-_]{1,255}")
MISSING_PAYLOAD = ("leave", "delete")


class OffloadRefused(SqsAsyncError):
    """A record that cannot go through S3 as it is (its own fault): too many attributes for
    the reserved one, or the reserved name already in use."""


@dataclass(frozen=True, kw_only=True)
class S3Offload(PayloadStage):
    """Large payloads through S3, in AWS's extended-client format (`sqs_async.offload`).

    Send: a message whose size as SQS counts it (body and attributes, UTF-8) is over
    `threshold` bytes (None: the queue's MaximumMessageSize, so nothing SQS would take moves
    to S3), or every message with `always`, has its body stored in `bucket` under
    `key_prefix` + a UUID (server-side encrypted with `kms_key_id` when given), and is sent as
    a pointer with the attribute ExtendedPayloadSize (`legacy_attribute`: SQSLargePayloadSize,
    the Java library's default).
    Receive: a pointer (either class name, either attribute) is fetched before the message is
    handed out, with its original body, without the reserved attribute, and with
    `payload_location` set. When the object cannot be found, `missing_payload="leave"` leaves
    the message to come back after its visibility timeout (and to reach the queue's
    dead-letter queue through its redrive policy); "delete" deletes the message (as Java's
    `ignorePayloadNotFound`).
    Delete: with `cleanup`, the object is deleted after the message is, when it is in
    `bucket` (a pointer anyone may send cannot make a reader delete elsewhere; off by default:
    with SNS fan-out several queues' messages point at one object; an S3 lifecycle rule is
    the safe way to expire payloads).
    S3: the engine's connection settings (region, credentials, `verify`), at `endpoint_url`
    when given (else the connection's endpoint); at most `concurrent_transfers` calls at once,
    fewer while S3 throttles; retried with the engine's `RetryPolicy`.
    """

    bucket: str
    threshold: int | None = None
    always: bool = False
    key_prefix: str = ""
    legacy_attribute: bool = False
    kms_key_id: str | None = None
    cleanup: bool = False
    missing_payload: str = "leave"
    endpoint_url: str | None = None
    concurrent_transfers: int = defaults.MAX_IN_FLIGHT

    def __post_init__(self) -> None:
        if not isinstance(self.bucket, str) or not _BUCKET.fullmatch(self.bucket):
            raise ValueError(
                "bucket must name an S3 bucket (letters, digits, '.', '-' and '_'), got "
                f"{self.bucket!r}"
            )
        if not isinstance(self.key_prefix, str) or not _KEY_PREFIX.fullmatch(self.key_prefix):
            raise ValueError(
                "key_prefix must be at most 988 characters from a-z, A-Z, 0-9, '.', '/', '_' "
                f"and '-', not start with '.' or '/', nor hold '..'; got {self.key_prefix!r}"
            )
        if self.threshold is not None:
            check_number(
                "threshold", self.threshold, low=0, high=defaults.MAX_MESSAGE_BYTES, integer=True
            )
        if self.missing_payload not in MISSING_PAYLOAD:
            raise ValueError(
                f'missing_payload must be "leave" or "delete", got {self.missing_payload!r}'
            )
        check_number("concurrent_transfers", self.concurrent_transfers, low=1, integer=True)
        if self.endpoint_url is not None:
            url = urlsplit(str(self.endpoint_url))
            if url.scheme not in ("http", "https") or not url.netloc:
                raise ValueError(
                    f"endpoint_url must be a whole URL, such as http://127.0.0.1:9324, got "
                    f"{self.endpoint_url!r}"
                )

    @asynccontextmanager
    async def session(self, connection: ConnectionConfig) -> AsyncIterator[PayloadStage]:
        async with AsyncExitStack() as stack:
            client = await open_s3_client(
                connection,
                stack,
                endpoint_url=self.endpoint_url,
                pool_size=self.concurrent_transfers,
            )
            retry = getattr(connection, "retry", None)
            transfers = S3Transfers(
                client,
                retry=retry if isinstance(retry, RetryPolicy) else RetryPolicy(),
                sleep=default_sleep,
                concurrent_transfers=self.concurrent_transfers,
                kms_key_id=self.kms_key_id,
                request_timeout=connection.request_timeout,
            )
            session = OffloadSession(self, transfers)
            try:
                yield session
            finally:
                if session.counts != OffloadCounts():
                    log.info("S3 offload of bucket %s: %s", self.bucket, session.counts)


@dataclass
class OffloadCounts:
    """What one session did (logged at info when it closes, if it did anything)."""

    stored: int = 0
    fetched: int = 0
    missing: int = 0
    cleaned_up: int = 0  # objects deleted after their message was
    orphans_deleted: int = 0  # objects stored for a message that then failed for good
    delete_failures: int = 0
    kept_elsewhere: int = 0  # objects cleanup left because they were in another bucket


@dataclass
class OffloadSession(PayloadStage):
    """`S3Offload` while an engine is open: its settings, and the S3 calls."""

    settings: S3Offload
    transfers: S3Transfers
    counts: OffloadCounts = field(default_factory=OffloadCounts)

    attribute_names = SIZE_ATTRIBUTES

    def __post_init__(self) -> None:
        self.buffer_limit = self.settings.concurrent_transfers  # bodies fetched: few at once

    async def outgoing(self, entry: dict[str, Any], queue: QueueTraits) -> dict[str, Any]:
        settings = self.settings
        body = entry.get("MessageBody")
        others = attributes_size(entry)
        if not isinstance(body, str) or not body or others is None:
            return entry  # validation says why it cannot go
        # The body's UTF-8 size; its characters are S3's to store, not SQS's to check.
        payload: bytes | None = None
        if body.isascii():
            size = len(body)
        else:
            try:
                payload = body.encode("utf-8")
            except UnicodeEncodeError:
                return entry  # a lone surrogate: validation says where
            size = len(payload)
        threshold = queue.max_message_bytes if settings.threshold is None else settings.threshold
        if size + others <= threshold and not settings.always:
            return entry
        attributes = dict(entry.get("MessageAttributes") or {})
        taken = size_attribute(attributes)
        if taken is not None:
            raise OffloadRefused(
                f"attribute {taken!r} is reserved for the payload's size in S3", "InvalidRecord"
            )
        if len(attributes) >= defaults.MAX_ATTRIBUTES:
            raise OffloadRefused(
                f"a message stored in S3 may carry at most {defaults.MAX_ATTRIBUTES - 1} "
                f"attributes (one is reserved), this one has {len(attributes)}",
                "InvalidAttributes",
            )
        if payload is None:
            payload = body.encode("ascii")
        pointer = S3Pointer(settings.bucket, settings.key_prefix + str(uuid.uuid4()))
        await self.transfers.put(pointer, payload)
        self.counts.stored += 1
        name = LEGACY_SIZE_ATTRIBUTE if settings.legacy_attribute else SIZE_ATTRIBUTE
        attributes[name] = {"DataType": "Number", "StringValue": str(len(payload))}
        return {**entry, "MessageBody": pointer.body, "MessageAttributes": attributes}

    async def undelivered(self, entry: dict[str, Any]) -> None:
        pointer = read_pointer(entry.get("MessageBody", ""))
        if pointer is None or pointer.bucket != self.settings.bucket:
            return
        await self._delete(pointer, "orphans_deleted", "stored for a message not delivered")

    async def incoming(self, message: ReceivedMessage) -> ReceivedMessage:
        name = size_attribute(message.message_attributes)
        if name is None:
            return message
        pointer = read_pointer(message.body)
        if pointer is None:
            return message  # the attribute, but not our body: an ordinary message
        try:
            payload = await self.transfers.get(pointer)
        except SqsAsyncError as exc:
            if exc.code == "NoSuchKey":  # as Java's ignorePayloadNotFound: not a wrong bucket
                self.counts.missing += 1
                if self.settings.missing_payload == "delete":
                    raise Discard(str(exc)) from exc
            raise
        self.counts.fetched += 1
        attributes = {k: v for k, v in message.message_attributes.items() if k != name}
        return replace(
            message,
            body=payload.decode("utf-8"),
            message_attributes=attributes,
            payload_location=pointer.location,
        )

    async def deleted(self, message: ReceivedMessage) -> None:
        if not self.settings.cleanup or message.payload_location is None:
            return
        pointer = S3Pointer.from_location(message.payload_location)
        if pointer.bucket != self.settings.bucket:
            if not self.counts.kept_elsewhere:
                log.warning(
                    "not deleting %s: cleanup deletes only in bucket %s (the pointer named "
                    "another; check the bucket given)",
                    message.payload_location,
                    self.settings.bucket,
                )
            self.counts.kept_elsewhere += 1
            return
        await self._delete(pointer, "cleaned_up", "after its message was deleted")

    async def _delete(self, pointer: S3Pointer, counter: str, why: str) -> None:
        try:
            await self.transfers.delete(pointer)
        except SqsAsyncError as exc:
            self.counts.delete_failures += 1
            log.warning("could not delete the payload %s (%s): %s", pointer.location, why, exc)
            return
        setattr(self.counts, counter, getattr(self.counts, counter) + 1)
