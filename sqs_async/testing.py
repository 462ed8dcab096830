"""For tests and demos: an SQS-compatible server on 127.0.0.1 (moto's server, in a thread).

moto's in-process `mock_aws` cannot serve aiobotocore clients, so a real HTTP endpoint is
needed. It listens on loopback only and on a free port unless one is given. moto comes with
the `local` extra (`pip install 'sqs-async[local]'`) and is imported only when a server starts.

Starting a server changes moto's SQS model for the whole process, where moto behaves unlike
SQS (see `_patch_moto`): only for the moto releases in `MOTO_RANGE`, whose members it checks
first, failing with the version it found rather than answering HTTP 500 later.
"""

from __future__ import annotations

import functools
import logging
import re
import urllib.request
import warnings
from types import TracebackType
from typing import Any

# Credentials and region that the local server accepts; they reach no AWS account.
LOCAL_CREDENTIALS = {
    "region_name": "us-east-1",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}
# The moto releases whose SQS model the patches below were written against (and pyproject pins).
MOTO_RANGE = ((5, 2), (5, 3))


def moved(old_name: str) -> type[LocalSqsServer]:
    """`LocalSqsServer` for an import from where it used to be, with a DeprecationWarning."""
    warnings.warn(
        f"{old_name} is deprecated: import LocalSqsServer from sqs_async.testing",
        DeprecationWarning,
        stacklevel=3,
    )
    return LocalSqsServer


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
                "the local SQS server needs moto: pip install 'sqs-async[local]'"
            ) from exc
        # One request log line per call would drown the caller's own logs.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        _patch_moto()
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


def _patch_moto() -> None:
    """Make moto's SQS model behave as SQS does under load, once per process."""
    from moto.sqs.models import Queue

    if getattr(Queue, "_sqs_async_patched", False):
        return
    _check_moto()
    _read_the_clock_once_per_scan()
    _serialize_message_list_changes()
    setattr(Queue, "_sqs_async_patched", True)  # noqa: B010


def _check_moto() -> None:
    """Refuse to patch a moto whose members are not the ones the patches were written for."""
    import inspect
    from importlib.metadata import version

    from moto.sqs.models import Message, Queue, SQSBackend

    found = version("moto")
    release = tuple(int(part) for part in found.split(".")[:2] if part.isdigit())
    low, high = MOTO_RANGE
    wanted = f"moto >={low[0]}.{low[1]},<{high[0]}.{high[1]}"
    if not low <= release < high:
        raise RuntimeError(
            f"LocalSqsServer patches moto's SQS model and supports {wanted}; found moto {found}"
        )
    members = {
        Queue: ["messages", "add_message", "delete_message", "wait_for_messages"],
        SQSBackend: ["get_queue", "receive_message", "change_message_visibility", "purge_queue"],
    }
    instance_fields: dict[type, list[str]] = {
        Queue: ["_messages", "_messages_lock"],
        Message: ["visible_at", "delayed_until"],
    }
    missing = [
        f"{kind.__name__}.{name}"
        for kind, names in members.items()
        for name in names
        if not hasattr(kind, name)
    ]
    for kind, fields in instance_fields.items():
        source = inspect.getsource(kind.__init__)  # type: ignore[misc]
        missing += [
            f"{kind.__name__}.{name}"
            for name in fields
            if not re.search(rf"self\.{name}\b", source)
        ]
    if missing:
        raise RuntimeError(
            f"LocalSqsServer cannot patch moto {found}: it lacks {', '.join(missing)} "
            f"(supported: {wanted})"
        )


def _read_the_clock_once_per_scan() -> None:
    """Make moto's queues scale to thousands of messages, with the same answers.

    moto decides whether a message is visible or delayed by reading the clock for that message,
    and every SendMessage scans the whole queue that way three times (it builds all queue
    attributes to look up one). Sending 5,000 messages took 200 s here. These scans read the
    clock once each instead (0.9 s for 5,000), which changes nothing a client can observe: a
    scan is one instant.
    """
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Queue

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


def _serialize_message_list_changes() -> None:
    """Serialize every change of a queue's messages, as SQS does (moto's server answers each
    request in a thread of its own, and changes the list without a lock):

    - `Queue.delete_message` rebuilds the list from a copy, so two deletes at once, or a
      delete and a send, undo one another (123 of 5,000 deletes were lost with four readers);
    - `SQSBackend.receive_message` checks that a message is visible, then marks it received,
      so two polls at once get the same message (seen 1-4 ms apart);
    - visibility changes and purges race with both.

    Each runs under the queue's own `_messages_lock` (a `Condition` over an `RLock`): a long
    poll waits on that condition, which releases the lock while it waits, so polls do not
    hold up other requests.
    """
    from moto.sqs.models import Queue, SQSBackend

    def under_queue_lock(change: Any) -> Any:
        @functools.wraps(change)
        def serialized(queue: Any, *args: Any, **kwargs: Any) -> Any:
            with queue._messages_lock:
                return change(queue, *args, **kwargs)

        return serialized

    def under_named_queue_lock(change: Any) -> Any:
        @functools.wraps(change)
        def serialized(backend: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
            with backend.get_queue(queue_name)._messages_lock:
                return change(backend, queue_name, *args, **kwargs)

        return serialized

    for name in ("add_message", "delete_message"):
        setattr(Queue, name, under_queue_lock(getattr(Queue, name)))
    for name in ("receive_message", "change_message_visibility", "purge_queue"):
        setattr(SQSBackend, name, under_named_queue_lock(getattr(SQSBackend, name)))
