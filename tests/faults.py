"""A fault-injecting wrapper around the real aiobotocore client, for faults moto cannot make;
and `loopback_http`, a stub HTTP endpoint for answers no real server gives on demand.

Entries are told apart by their body. `entry_fault(body, attempt)` may return an error code
to fail that entry on that attempt (attempt counts from 1 per body); `request_fault(call)`
may return an exception to raise instead of sending (call counts from 1), or "hang" to never
answer.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botocore.exceptions import ClientError

from sqs_async.wire import SqsClient

EntryFault = Callable[[str, int], "tuple[str, bool] | None"]
RequestFault = Callable[[int], "BaseException | str | None"]


def client_error(code: str, status: int = 400, operation: str = "SendMessageBatch") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


class FaultyClient:
    """Forwards to a real client, failing what the test asks it to."""

    def __init__(
        self,
        inner: SqsClient,
        *,
        entry_fault: EntryFault | None = None,
        request_fault: RequestFault | None = None,
        reverse_results: bool = False,
        delay: float = 0.0,
    ) -> None:
        self.inner = inner
        self.entry_fault = entry_fault
        self.request_fault = request_fault
        self.reverse_results = reverse_results
        self.delay = delay
        self.calls: list[list[str]] = []
        self.tries: Counter[str] = Counter()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.in_flight_at_start: list[int] = []  # requests in flight as each one started

    async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        entries = kwargs["Entries"]
        self.calls.append([entry["MessageBody"] for entry in entries])
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self.in_flight_at_start.append(self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            fault = self.request_fault(len(self.calls)) if self.request_fault else None
            if fault == "hang":
                await asyncio.sleep(3600)
            if isinstance(fault, BaseException):
                raise fault
            return await self._send(kwargs["QueueUrl"], entries)
        finally:
            self.in_flight -= 1

    async def _send(self, queue_url: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
        failed, passed = [], []
        for entry in entries:
            body = entry["MessageBody"]
            self.tries[body] += 1
            fault = self.entry_fault(body, self.tries[body]) if self.entry_fault else None
            if fault is None:
                passed.append(entry)
            else:
                code, sender_fault = fault
                failed.append(
                    {"Id": entry["Id"], "SenderFault": sender_fault, "Code": code, "Message": code}
                )
        response: dict[str, Any] = {"Successful": [], "Failed": failed}
        if passed:
            real = await self.inner.send_message_batch(QueueUrl=queue_url, Entries=passed)
            response["Successful"] = real.get("Successful", [])
            response["Failed"] = failed + real.get("Failed", [])
        if self.reverse_results:
            response["Successful"].reverse()
            response["Failed"].reverse()
        return response

    async def get_queue_url(self, **kwargs: Any) -> dict[str, Any]:
        return await self.inner.get_queue_url(**kwargs)

    async def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]:
        return await self.inner.get_queue_attributes(**kwargs)


class StubClient:
    """A client without a server, for tests about the engine itself: answers the calls made
    when opening; subclasses define `send_message_batch` (often with `accept_all`)."""

    async def get_queue_url(self, **kwargs: Any) -> dict[str, Any]:
        return {"QueueUrl": "https://sqs.test/1/q"}

    async def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]:
        return {"Attributes": {"MaximumMessageSize": "1048576"}}


def accept_all(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A SendMessageBatch answer accepting every entry, with MessageId 'id-<body>'."""
    return {"Successful": [{"Id": e["Id"], "MessageId": f"id-{e['MessageBody']}"} for e in entries]}


class Forwarding:
    """Forwards every call to the real client; subclasses change the calls they name."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def no_sleep(seconds: float) -> None:
    """Stands in for the engine's sleep between retries: one turn of the loop, no waiting."""
    await asyncio.sleep(0)


async def settle(condition: Callable[[], bool], turns: int = 100_000) -> None:
    """Let the loop run until `condition()` holds: stubs answer without I/O, so turns of the
    loop (never wall-clock time) are what it takes; fail if it never does."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"condition not met after {turns} turns of the loop: {condition}")


@contextmanager
def loopback_http(
    handler: type[BaseHTTPRequestHandler],
    server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer,
) -> Iterator[str]:
    """An HTTP endpoint on 127.0.0.1 (a free port) answering with `handler` in a thread of
    its own, for as long as the block runs; gives its URL."""
    server = server_class(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
