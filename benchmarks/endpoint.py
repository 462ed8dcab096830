"""A fast SQS endpoint for benchmarks: the JSON protocol calls the clients make, with knobs for
latency, failing entries and throttling, and a record of every body it accepts.

moto's server is correct but spends ~20 ms per batch and slows as a queue fills, so it cannot
measure a client. This one does no more than the clients need, on 127.0.0.1 only:

* `GetQueueUrl`, `GetQueueAttributes`, `SendMessageBatch`, `PurgeQueue`, `CreateQueue`, and
  for readers `ReceiveMessage`, `DeleteMessageBatch`, `ChangeMessageVisibilityBatch` (one
  queue holding every accepted message; a receive on an empty queue waits its
  `WaitTimeSeconds`; visibility timeouts do not expire);
* `latency_ms` (+ up to `jitter` x that, at random) before each answer;
* `fail_rate`: the share of messages that fail once with `SenderFault=false` (the first time
  their id is seen), `throttle_rate`: the share of requests answered `ThrottlingException`,
  `max_concurrent`: SendMessageBatch requests beyond this many at once are throttled (load-
  dependent throttling, as SQS and KMS do; 0 means no limit);
* a body is identified by its text up to the first ':' (the harness numbers its messages), so
  the harness can prove that nothing was lost or accepted twice;
* a queue whose name ends in `.fifo` says so in its attributes (in high throughput mode, so
  the sender does not pace itself), and the order of acceptance is kept: `GET
  /_control/stats?order=1` returns the accepted ids in that order.

Control (JSON over HTTP): `POST /_control/reset` with the knobs (clears the record),
`POST /_control/knobs` (changes knobs, keeps the record), `GET /_control/stats`.
Run: `python -m benchmarks.endpoint` prints `PORT <n>` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import random
import ssl
import time
import uuid
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from aiohttp import web

JSON = "application/x-amz-json-1.0"


@dataclass
class Knobs:
    latency_ms: float = 0.0
    jitter: float = 0.0
    fail_rate: float = 0.0
    throttle_rate: float = 0.0
    max_concurrent: int = 0
    seed: int = 1


@dataclass
class State:
    knobs: Knobs = field(default_factory=Knobs)
    accepted: Counter[str] = field(default_factory=Counter)
    message_ids: dict[str, list[str]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    available: deque[tuple[str, str]] = field(default_factory=deque)  # (body, MessageId)
    held: dict[str, tuple[str, str]] = field(default_factory=dict)  # by receipt handle
    deleted: Counter[str] = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)
    requests: int = 0
    in_flight: int = 0
    throttled: int = 0
    entry_failures: int = 0
    first: float | None = None
    last: float | None = None
    accepted_at: list[float] = field(default_factory=list)  # first acceptance of each message
    rng: random.Random = field(default_factory=random.Random)

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
            "available": len(self.available),
            "held": len(self.held),
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


def _message_id(body: str) -> str:
    end = body.find(":")
    return body if end < 0 else body[:end]


class Endpoint:
    def __init__(self) -> None:
        self.state = State()
        self.port = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/_control/reset", self.reset)
        app.router.add_post("/_control/knobs", self.change_knobs)
        app.router.add_get("/_control/stats", self.stats)
        app.router.add_post("/{tail:.*}", self.sqs)
        return app

    async def reset(self, request: web.Request) -> web.Response:
        knobs = Knobs(**(await request.json()))
        self.state = State(knobs=knobs, rng=random.Random(knobs.seed))
        return web.json_response({"ok": True})

    async def change_knobs(self, request: web.Request) -> web.Response:
        self.state.knobs = Knobs(**(await request.json()))
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
                        "ApproximateNumberOfMessages": str(len(state.accepted)),
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
        if not state.available:
            await asyncio.sleep(float(payload.get("WaitTimeSeconds") or 0))
        messages = []
        for _ in range(min(int(payload.get("MaxNumberOfMessages") or 1), len(state.available))):
            body, message_id = state.available.popleft()
            receipt = uuid.uuid4().hex
            state.held[receipt] = (body, message_id)
            messages.append(
                {
                    "MessageId": message_id,
                    "ReceiptHandle": receipt,
                    "Body": body,
                    "MD5OfBody": hashlib.md5(body.encode("utf-8")).hexdigest(),
                    "Attributes": {"SentTimestamp": str(int(time.time() * 1000))},
                }
            )
        return _answer({"Messages": messages} if messages else {})

    def on_receipts(self, payload: dict[str, Any], *, delete: bool) -> web.Response:
        """Delete the entries' messages, or (a visibility change) release them at timeout 0."""
        state = self.state
        successful, failed = [], []
        for entry in payload["Entries"]:
            held = state.held.get(entry["ReceiptHandle"])
            if held is None:
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
            if delete:
                del state.held[entry["ReceiptHandle"]]
                state.deleted[_message_id(held[0])] += 1
            elif int(entry.get("VisibilityTimeout", 1)) == 0:
                del state.held[entry["ReceiptHandle"]]
                state.available.append(held)
        return _answer({"Successful": successful, "Failed": failed})

    def send_message_batch(self, payload: dict[str, Any], overloaded: bool) -> web.Response:
        state = self.state
        state.requests += 1
        throttle_rate = state.knobs.throttle_rate
        if overloaded or (throttle_rate and state.rng.random() < throttle_rate):
            state.throttled += 1
            return _error("ThrottlingException", "Rate exceeded", 400)
        successful, failed = [], []
        for entry in payload["Entries"]:
            body = entry["MessageBody"]
            message = _message_id(body)
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
            state.available.append((body, message_id))
            state.message_ids.setdefault(message, []).append(message_id)
            successful.append(
                {
                    "Id": entry["Id"],
                    "MessageId": message_id,
                    "MD5OfMessageBody": hashlib.md5(body.encode("utf-8")).hexdigest(),
                }
            )
        now = time.monotonic()
        if successful:
            state.first = now if state.first is None else state.first
            state.last = now
        return _answer({"Successful": successful, "Failed": failed})


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
