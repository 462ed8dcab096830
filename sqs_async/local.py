"""An SQS-compatible server on 127.0.0.1 for demos and tests (moto's server, in a thread).

moto's in-process `mock_aws` cannot serve aiobotocore clients, so a real HTTP endpoint is
needed. It listens on loopback only and on a free port unless one is given. moto is a test
dependency (`pip install sqs-async[test]`), imported only when a server starts.
"""

from __future__ import annotations

import functools
import logging
import threading
import urllib.request
from types import TracebackType
from typing import Any

# Credentials and region that the local server accepts; they reach no AWS account.
LOCAL_CREDENTIALS = {
    "region_name": "us-east-1",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}


class LocalSqsServer:
    """moto's server on 127.0.0.1; `endpoint_url` is set once it has started.

    `with LocalSqsServer() as server:` starts and stops it; `reset()` forgets all queues.
    After `stop()`, `start()` listens on the same port again (queues are kept: moto's state
    lives in the process).
    """

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: Any = None
        self.endpoint_url: str = ""

    def start(self) -> str:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "the local SQS server needs moto: pip install 'sqs-async[test]'"
            ) from exc
        # One request log line per call would drown the caller's own logs.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        _read_the_clock_once_per_scan()
        _serialize_message_list_changes()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self._port = port  # a restart comes back on the same port
        self.endpoint_url = f"http://{host}:{port}"
        return self.endpoint_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def reset(self) -> None:
        """Delete every queue and message (moto's reset API)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    @property
    def client_settings(self) -> dict[str, str]:
        """Keyword settings that point a sender or client at this server."""
        return {"endpoint_url": self.endpoint_url, **LOCAL_CREDENTIALS}

    def __enter__(self) -> LocalSqsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _read_the_clock_once_per_scan() -> None:
    """Make moto's queues scale to thousands of messages, with the same answers.

    moto decides whether a message is visible or delayed by reading the clock for that message,
    and every SendMessage scans the whole queue that way three times (it builds all queue
    attributes to look up one). Sending 5,000 messages took 200 s here. These scans read the
    clock once each instead (0.9 s for 5,000), which changes nothing a client can observe: a
    scan is one instant. Patched on moto's Queue class, once, when a local server starts.
    """
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Queue

    if getattr(Queue, "_sqs_async_scans", False):
        return

    def messages(queue: Any) -> list[Any]:
        now = unix_time_millis()
        return [m for m in queue._messages if now > m.visible_at and not now < m.delayed_until]

    def not_visible(queue: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in queue._messages if not now > m.visible_at)

    def delayed(queue: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in queue._messages if now < m.delayed_until)

    scans = {
        "messages": messages,
        "approximate_number_of_messages_not_visible": not_visible,
        "approximate_number_of_messages_delayed": delayed,
    }
    for name, scan in scans.items():
        setattr(Queue, name, property(scan))
    setattr(Queue, "_sqs_async_scans", True)  # noqa: B010


def _serialize_message_list_changes() -> None:
    """Make moto's deletes safe under concurrent requests (its server answers each in a thread).

    `Queue.delete_message` rebuilds the queue's message list from a copy without a lock, so two
    deletes at once, or a delete and a send, can undo one another: a deleted message comes back,
    a sent one vanishes (123 of 5,000 deletes were lost that way with four concurrent readers).
    One lock around both changes of the list restores SQS's behaviour.
    """
    from moto.sqs.models import Queue

    if getattr(Queue, "_sqs_async_locked", False):
        return
    lock = threading.RLock()

    def locked(change: Any) -> Any:
        @functools.wraps(change)
        def serialized(queue: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return change(queue, *args, **kwargs)

        return serialized

    for name in ("add_message", "delete_message"):
        setattr(Queue, name, locked(getattr(Queue, name)))
    setattr(Queue, "_sqs_async_locked", True)  # noqa: B010
