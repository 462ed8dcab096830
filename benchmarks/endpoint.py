"""A fast SQS endpoint for benchmarks: the JSON protocol calls the clients make, with knobs for
latency, failing entries and throttling, and a record of every body it accepts.

moto's server is correct but spends ~20 ms per batch and slows as a queue fills, so it cannot
measure a client. This one does no more than the clients need, on 127.0.0.1 only:

* `GetQueueUrl`, `GetQueueAttributes`, `SendMessageBatch`, `PurgeQueue`, `CreateQueue`, and
  for readers `ReceiveMessage`, `DeleteMessageBatch`, `ChangeMessageVisibilityBatch` (each
  queue, by the name its URL ends with, holds what was sent to it; a receive on an empty
  queue waits its `WaitTimeSeconds`; visibility timeouts do not expire). The record of
  accepted bodies is one for all queues; `POST /_control/load` puts numbered messages in a
  queue without recording them as accepted (the read scenarios' source), and each message's
  first delete is timed, so a read has a steady rate as a send does;
* `latency_ms` (+ up to `jitter` x that, at random) before each answer;
* `fail_rate`: the share of messages that fail once with `SenderFault=false` (the first time
  their id is seen), `throttle_rate`: the share of requests answered `ThrottlingException`,
  `max_concurrent`: SendMessageBatch requests beyond this many at once are throttled (load-
  dependent throttling, as SQS and KMS do; 0 means no limit);
* a body is identified by its text up to the first ':' (the harness numbers its messages), so
  the harness can prove that nothing was lost or accepted twice;
* a queue whose name ends in `.fifo` says so in its attributes (in high throughput mode, so
  the sender does not pace itself), and the order of acceptance is kept: `GET
  /_control/stats?order=1` returns the accepted ids in that order;
* S3, path-style, for large-payload offload (`/BUCKET/KEY`): `PutObject`, `GetObject`,
  `HeadObject`, `DeleteObject`, `CreateBucket` (every bucket exists). A body comes plain or
  `aws-chunked` (botocore's trailer checksum, over HTTPS); a CRC32 checksum, in a header or the
  trailer, is checked as S3 checks it (`BadDigest`) and returned on `GetObject`. The ETag is
  not an MD5 (botocore does not check it; an MD5 of each body would make the endpoint the
  limit). Each object is recorded by the id of the body it holds (its text up to the first
  ':', as messages are) and its size; its bytes are kept only with the knob `keep_objects`
  (`GetObject` needs them). A message whose body is an extended-client pointer counts as the
  message its object holds: one whose object is not there (yet) counts as `dangling` and is
  not accepted, one whose size attribute disagrees with the object as `size_mismatches`. The
  latency knobs apply to S3 calls too.

Control (JSON over HTTP): `POST /_control/reset` with the knobs (clears the record),
`POST /_control/knobs` (changes knobs, keeps the record), `GET /_control/stats`.
Run: `python -m benchmarks.endpoint` prints `PORT <n>` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import random
import ssl
import time
import uuid
import zlib
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from aiohttp import web

JSON = "application/x-amz-json-1.0"
MAX_OBJECT_BYTES = 1 << 30
POINTER_CLASSES = (
    "software.amazon.payloadoffloading.PayloadS3Pointer",
    "com.amazon.sqs.javamessaging.MessageS3Pointer",
)
SIZE_ATTRIBUTES = ("ExtendedPayloadSize", "SQSLargePayloadSize")


@dataclass
class Knobs:
    latency_ms: float = 0.0
    jitter: float = 0.0
    fail_rate: float = 0.0
    throttle_rate: float = 0.0
    max_concurrent: int = 0
    seed: int = 1
    keep_objects: bool = False  # keep S3 objects' bytes (for GetObject), not only their record


@dataclass
class StoredObject:
    """An S3 object: the id of the body it holds, its size, its CRC32 (base64, as S3 gives
    it) and, with `keep_objects`, its bytes."""

    message: str
    size: int
    crc32: str
    data: bytes | None = None

    @property
    def etag(self) -> str:
        """Not an MD5, as S3's is for a plain upload: botocore does not check it, and an MD5 of
        every body would make the endpoint the limit."""
        return f'"{self.crc32.rstrip("=")}-{self.size}"'


# A queued message: body, MessageId, MessageAttributes, MD5 of the body (computed once).
Held = tuple[str, str, dict[str, Any], str]


@dataclass
class State:
    knobs: Knobs = field(default_factory=Knobs)
    accepted: Counter[str] = field(default_factory=Counter)
    message_ids: dict[str, list[str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    # Messages waiting to be received, by queue name; held ones by receipt handle (with
    # their queue's name, where a release puts them back).
    available: dict[str, deque[Held]] = field(default_factory=dict)
    held: dict[str, tuple[str, Held]] = field(default_factory=dict)
    deleted: Counter[str] = field(default_factory=Counter)
    deleted_at: list[float] = field(default_factory=list)  # first delete of each message
    first_receive: float | None = None  # the first answer that carried messages
    seen: set[str] = field(default_factory=set)
    requests: int = 0
    in_flight: int = 0
    throttled: int = 0
    entry_failures: int = 0
    first: float | None = None
    last: float | None = None
    accepted_at: list[float] = field(default_factory=list)  # first acceptance of each message
    rng: random.Random = field(default_factory=random.Random)
    objects: dict[tuple[str, str], StoredObject] = field(default_factory=dict)  # by bucket, key
    stored: Counter[str] = field(default_factory=Counter)  # objects put, by message id
    stored_at: list[float] = field(default_factory=list)  # when each object was stored
    stored_bytes: int = 0
    objects_deleted: int = 0
    s3_requests: int = 0
    bad_digests: int = 0
    dangling: int = 0  # pointer messages whose object was not there
    size_mismatches: int = 0  # pointer messages whose size attribute disagreed with the object

    def stats(self, with_message_ids: bool = False, with_order: bool = False) -> dict[str, Any]:
        extra: dict[str, Any] = {"message_ids": self.message_ids} if with_message_ids else {}
        if with_order:
            extra["order"] = self.order
        return {
            **extra,
            "unique": len(self.accepted),
            "accepted": sum(self.accepted.values()),
            "duplicates": sum(n - 1 for n in self.accepted.values() if n > 1),
            "requests": self.requests,
            "throttled": self.throttled,
            "entry_failures": self.entry_failures,
            "first": self.first,
            "last": self.last,
            "steady_rate": _steady_rate(self.accepted_at),
            "ids": sorted(self.accepted),
            "deleted_unique": len(self.deleted),
            "deleted": sum(self.deleted.values()),
            "steady_delete_rate": _steady_rate(self.deleted_at),
            "first_receive": self.first_receive,
            "first_delete": self.deleted_at[0] if self.deleted_at else None,
            "last_delete": self.deleted_at[-1] if self.deleted_at else None,
            "available": sum(len(queue) for queue in self.available.values()),
            "available_by_queue": {name: len(queue) for name, queue in self.available.items()},
            "held": len(self.held),
            "objects": len(self.objects),
            "objects_stored": sum(self.stored.values()),
            "steady_store_rate": _steady_rate(self.stored_at),
            "first_store": self.stored_at[0] if self.stored_at else None,
            "objects_unique": len(self.stored),
            "objects_duplicated": sum(n - 1 for n in self.stored.values() if n > 1),
            "object_ids": sorted(self.stored),
            "stored_bytes": self.stored_bytes,
            "objects_deleted": self.objects_deleted,
            "s3_requests": self.s3_requests,
            "bad_digests": self.bad_digests,
            "dangling": self.dangling,
            "size_mismatches": self.size_mismatches,
        }


def _steady_rate(accepted_at: list[float]) -> float | None:
    """Messages per second between the 10th and the 90th percentile of first acceptances:
    the rate once started and before the end (a run's last retries trickle in after their
    backoff, its first requests wait for the client to start)."""
    count = len(accepted_at)
    low, high = count // 10, (9 * count) // 10
    if high - low < 10 or accepted_at[high] <= accepted_at[low]:
        return None
    return (high - low) / (accepted_at[high] - accepted_at[low])


_ID_PREFIX = str(uuid.uuid4())[:23]  # this process's; a counter makes each id unique
_ID_NUMBERS = itertools.count()


def _sqs_message_id() -> str:
    """A MessageId shaped like SQS's (a UUID), at a fraction of `uuid4`'s CPU: the endpoint
    must not be what limits a fast client."""
    return f"{_ID_PREFIX}-{next(_ID_NUMBERS):012x}"


_RECEIPTS = itertools.count()


def _receipt_handle() -> str:
    """A receipt handle unique in this process, cheaper than a UUID per message."""
    return f"{_ID_PREFIX}-r{next(_RECEIPTS):x}"


def _queue_name(payload: dict[str, Any]) -> str:
    """The queue a request is for: the last part of its QueueUrl."""
    return str(payload.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1]


def _message_id(body: str) -> str:
    end = body.find(":")
    return body if end < 0 else body[:end]


class Endpoint:
    def __init__(self) -> None:
        self.state = State()
        self.port = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_OBJECT_BYTES)
        app.router.add_post("/_control/reset", self.reset)
        app.router.add_post("/_control/knobs", self.change_knobs)
        app.router.add_post("/_control/load", self.load)
        app.router.add_get("/_control/stats", self.stats)
        app.router.add_post("/{tail:.*}", self.sqs)
        app.router.add_put("/{bucket}", self.create_bucket)
        app.router.add_put("/{bucket}/{key:.+}", self.put_object)
        app.router.add_get("/{bucket}/{key:.+}", self.get_object)  # and HEAD
        app.router.add_delete("/{bucket}/{key:.+}", self.delete_object)
        return app

    async def reset(self, request: web.Request) -> web.Response:
        knobs = Knobs(**(await request.json()))
        self.state = State(knobs=knobs, rng=random.Random(knobs.seed))
        return web.json_response({"ok": True})

    async def change_knobs(self, request: web.Request) -> web.Response:
        self.state.knobs = Knobs(**(await request.json()))
        return web.json_response({"ok": True})

    async def load(self, request: web.Request) -> web.Response:
        """Put `count` numbered messages of `body_bytes` in queue `queue` (bodies as the
        harness numbers them), not recorded as accepted: the source of a read scenario."""
        order = await request.json()
        queue = self.state.available.setdefault(order["queue"], deque())
        size = int(order["body_bytes"])
        for number in range(int(order["count"])):
            head = f"{number:09d}:"
            text = head + "x" * max(1, size - len(head))
            md5 = hashlib.md5(text.encode("utf-8")).hexdigest()
            queue.append((text, _sqs_message_id(), {}, md5))
        return web.json_response({"ok": True})

    async def stats(self, request: web.Request) -> web.Response:
        with_ids = request.query.get("message_ids") == "1"
        with_order = request.query.get("order") == "1"
        return web.json_response(self.state.stats(with_ids, with_order))

    async def sqs(self, request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        payload = orjson.loads(await request.read() or b"{}")
        state = self.state
        knobs = state.knobs
        if target == "SendMessageBatch":
            state.in_flight += 1
            try:
                await self.wait(knobs, state)
                overloaded = 0 < knobs.max_concurrent < state.in_flight
                return self.send_message_batch(payload, overloaded)
            finally:
                state.in_flight -= 1
        await self.wait(knobs, state)
        if target == "GetQueueUrl":
            name = payload["QueueName"]
            return _answer({"QueueUrl": f"http://127.0.0.1:{self.port}/000000000000/{name}"})
        if target == "GetQueueAttributes":
            fifo = str(payload.get("QueueUrl", "")).endswith(".fifo")
            return _answer(
                {
                    "Attributes": {
                        "MaximumMessageSize": "1048576",
                        "FifoQueue": str(fifo).lower(),
                        "ContentBasedDeduplication": str(fifo).lower(),
                        "FifoThroughputLimit": "perMessageGroupId" if fifo else "perQueue",
                        "ApproximateNumberOfMessages": str(
                            len(state.available.get(_queue_name(payload), ()))
                        ),
                    }
                }
            )
        if target == "CreateQueue":
            name = payload["QueueName"]
            return _answer({"QueueUrl": f"http://127.0.0.1:{self.port}/000000000000/{name}"})
        if target == "ReceiveMessage":
            return await self.receive_message(payload)
        if target == "DeleteMessageBatch":
            return self.on_receipts(payload, delete=True)
        if target == "ChangeMessageVisibilityBatch":
            return self.on_receipts(payload, delete=False)
        if target == "PurgeQueue":
            return _answer({})
        return _error("InvalidAction", f"{target} is not served here", 400)

    @staticmethod
    async def wait(knobs: Knobs, state: State) -> None:
        if knobs.latency_ms:
            await asyncio.sleep(knobs.latency_ms * (1 + knobs.jitter * state.rng.random()) / 1000)

    async def receive_message(self, payload: dict[str, Any]) -> web.Response:
        state = self.state
        name = _queue_name(payload)
        available = state.available.setdefault(name, deque())
        if not available:
            await asyncio.sleep(float(payload.get("WaitTimeSeconds") or 0))
            available = state.available.setdefault(name, deque())  # a reset may replace it
        messages = []
        wanted = set(payload.get("MessageAttributeNames") or ())
        for _ in range(min(int(payload.get("MaxNumberOfMessages") or 1), len(available))):
            body, message_id, attributes, md5 = held = available.popleft()
            receipt = _receipt_handle()
            state.held[receipt] = (name, held)
            message: dict[str, Any] = {
                "MessageId": message_id,
                "ReceiptHandle": receipt,
                "Body": body,
                "MD5OfBody": md5,
                "Attributes": {"SentTimestamp": str(int(time.time() * 1000))},
            }
            chosen = {
                name: value for name, value in attributes.items() if wanted & {name, "All", ".*"}
            }
            if chosen:
                message["MessageAttributes"] = chosen
            messages.append(message)
        if messages and state.first_receive is None:
            state.first_receive = time.monotonic()
        return _answer({"Messages": messages} if messages else {})

    def on_receipts(self, payload: dict[str, Any], *, delete: bool) -> web.Response:
        """Delete the entries' messages, or (a visibility change) release them at timeout 0."""
        state = self.state
        successful, failed = [], []
        for entry in payload["Entries"]:
            where = state.held.get(entry["ReceiptHandle"])
            if where is None:
                failed.append(
                    {
                        "Id": entry["Id"],
                        "SenderFault": True,
                        "Code": "ReceiptHandleIsInvalid",
                        "Message": "unknown receipt handle",
                    }
                )
                continue
            successful.append({"Id": entry["Id"]})
            name, held = where
            if delete:
                del state.held[entry["ReceiptHandle"]]
                message = _message_id(held[0])
                state.deleted[message] += 1
                if state.deleted[message] == 1:
                    state.deleted_at.append(time.monotonic())
            elif int(entry.get("VisibilityTimeout", 1)) == 0:
                del state.held[entry["ReceiptHandle"]]
                state.available.setdefault(name, deque()).append(held)
        return _answer({"Successful": successful, "Failed": failed})

    def send_message_batch(self, payload: dict[str, Any], overloaded: bool) -> web.Response:
        state = self.state
        state.requests += 1
        throttle_rate = state.knobs.throttle_rate
        if overloaded or (throttle_rate and state.rng.random() < throttle_rate):
            state.throttled += 1
            return _error("ThrottlingException", "Rate exceeded", 400)
        successful, failed = [], []
        queue = state.available.setdefault(_queue_name(payload), deque())
        for entry in payload["Entries"]:
            body = entry["MessageBody"]
            message = _message_id(body)
            attributes = entry.get("MessageAttributes") or {}
            pointer = _pointer(body) if attributes else None
            if pointer is not None:
                stored = state.objects.get(pointer)
                if stored is None:  # sent before its payload was stored: counted, not accepted
                    state.dangling += 1
                    successful.append({"Id": entry["Id"], "MessageId": _sqs_message_id()})
                    continue
                size: dict[str, Any] = next(
                    (attributes[n] for n in SIZE_ATTRIBUTES if n in attributes), {}
                )
                if size.get("StringValue") != str(stored.size):
                    state.size_mismatches += 1
                message = stored.message
            first_time = message not in state.seen
            state.seen.add(message)
            if first_time and state.knobs.fail_rate and state.rng.random() < state.knobs.fail_rate:
                state.entry_failures += 1
                failed.append(
                    {
                        "Id": entry["Id"],
                        "SenderFault": False,
                        "Code": "InternalError",
                        "Message": "injected failure",
                    }
                )
                continue
            state.accepted[message] += 1
            if state.accepted[message] == 1:
                state.accepted_at.append(time.monotonic())
            state.order.append(message)
            message_id = _sqs_message_id()
            md5 = hashlib.md5(body.encode("utf-8")).hexdigest()
            queue.append((body, message_id, attributes, md5))
            state.message_ids.setdefault(message, []).append(message_id)
            successful.append({"Id": entry["Id"], "MessageId": message_id, "MD5OfMessageBody": md5})
        now = time.monotonic()
        if successful:
            state.first = now if state.first is None else state.first
            state.last = now
        return _answer({"Successful": successful, "Failed": failed})

    # S3, path-style

    async def create_bucket(self, request: web.Request) -> web.Response:
        await self.wait(self.state.knobs, self.state)
        return web.Response(headers={"Location": "/" + request.match_info["bucket"]})

    async def put_object(self, request: web.Request) -> web.Response:
        state = self.state
        state.s3_requests += 1
        headers = request.headers
        intake = _Intake(keep=state.knobs.keep_objects)
        trailers: dict[str, str] = {}
        if "aws-chunked" in headers.get("Content-Encoding", ""):
            chunks, trailers = _aws_chunks(await request.read())
            for piece in chunks:
                intake.add(piece)
        else:
            async for chunk in request.content.iter_any():
                intake.add(chunk)
        checksum = base64.b64encode(intake.crc32.to_bytes(4, "big")).decode()
        sent = headers.get("x-amz-checksum-crc32") or trailers.get("x-amz-checksum-crc32")
        if sent is not None and sent != checksum:
            state.bad_digests += 1
            reason = "The CRC32 you specified did not match the calculated checksum."
            return _s3_error("BadDigest", reason, 400)
        await self.wait(state.knobs, state)
        stored = intake.stored(checksum)
        state.objects[request.match_info["bucket"], request.match_info["key"]] = stored
        state.stored[stored.message] += 1
        state.stored_at.append(time.monotonic())
        state.stored_bytes += stored.size
        answer = {"ETag": stored.etag}
        if sent is not None:
            answer["x-amz-checksum-crc32"] = checksum
        return web.Response(headers=answer)

    async def get_object(self, request: web.Request) -> web.Response:
        state = self.state
        state.s3_requests += 1
        await self.wait(state.knobs, state)
        stored = state.objects.get((request.match_info["bucket"], request.match_info["key"]))
        if stored is None:
            return _s3_error("NoSuchKey", "The specified key does not exist.", 404)
        if stored.data is None:
            return _s3_error("InvalidObjectState", "kept without its bytes (keep_objects)", 403)
        headers = {
            "ETag": stored.etag,
            "Content-Type": "binary/octet-stream",
            "Last-Modified": "Thu, 01 Jan 2026 00:00:00 GMT",
        }
        if request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED":
            headers["x-amz-checksum-crc32"] = stored.crc32
        return web.Response(body=stored.data, headers=headers)

    async def delete_object(self, request: web.Request) -> web.Response:
        state = self.state
        state.s3_requests += 1
        await self.wait(state.knobs, state)
        if state.objects.pop((request.match_info["bucket"], request.match_info["key"]), None):
            state.objects_deleted += 1
        return web.Response(status=204)


class _Intake:
    """An object's body as it arrives: its CRC32, size, first bytes (the id of the body it
    holds) and, when kept, its bytes."""

    def __init__(self, *, keep: bool) -> None:
        self.crc32 = 0
        self.size = 0
        self.head = b""
        self.parts: list[bytes] | None = [] if keep else None

    def add(self, chunk: bytes | memoryview) -> None:
        self.crc32 = zlib.crc32(chunk, self.crc32)
        self.size += len(chunk)
        if len(self.head) < 64:
            self.head += bytes(chunk[:64])
        if self.parts is not None:
            self.parts.append(bytes(chunk))

    def stored(self, checksum: str) -> StoredObject:
        message = _message_id(self.head.decode("utf-8", "replace"))
        data = None if self.parts is None else b"".join(self.parts)
        return StoredObject(message, self.size, checksum, data)


def _aws_chunks(data: bytes) -> tuple[list[memoryview], dict[str, str]]:
    """The chunks and the trailers of an `aws-chunked` body, as botocore writes it with an
    unsigned trailing checksum: each chunk its size in hex, CRLF, its bytes, CRLF; then a
    chunk of size 0, the trailers (`name:value` CRLF each) and an empty line. A chunk
    extension after ';' (signed chunks carry one) is skipped."""
    view = memoryview(data)
    chunks, position = [], 0
    while True:
        end = data.index(b"\r\n", position)
        size = int(data[position:end].split(b";", 1)[0], 16)
        position = end + 2
        if size == 0:
            break
        chunks.append(view[position : position + size])
        position += size + 2
    trailers = {}
    for line in data[position:].split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if colon:
            trailers[name.decode().strip().lower()] = value.decode().strip()
    return chunks, trailers


def _pointer(body: str) -> tuple[str, str] | None:
    """(bucket, key) of an extended-client pointer body, else None."""
    if not body.startswith("[") or len(body) > 8192:
        return None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if (
        isinstance(document, list)
        and len(document) == 2
        and document[0] in POINTER_CLASSES
        and isinstance(document[1], dict)
    ):
        return str(document[1].get("s3BucketName")), str(document[1].get("s3Key"))
    return None


def _s3_error(code: str, message: str, status: int) -> web.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{uuid.uuid4().hex}</RequestId></Error>"
    )
    return web.Response(text=body, status=status, content_type="application/xml")


def _answer(body: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type=JSON)


def _error(code: str, message: str, status: int) -> web.Response:
    response = web.Response(
        body=json.dumps({"__type": code, "message": message}).encode(),
        status=status,
        content_type=JSON,
    )
    response.headers["x-amzn-query-error"] = f"{code};Sender"
    return response


async def serve(port: int, cert: str | None = None, key: str | None = None) -> None:
    endpoint = Endpoint()
    runner = web.AppRunner(endpoint.app(), access_log=None)
    await runner.setup()
    tls = None
    if cert is not None:  # HTTPS, as real SQS: TLS costs CPU per request, reuse matters
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls)
    await site.start()
    endpoint.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"PORT {endpoint.port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--key", help="the certificate's private key (PEM)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.cert, args.key))


if __name__ == "__main__":
    main()

__all__ = ["Endpoint", "Knobs", "asdict"]
