"""For tests and demos: an SQS-compatible server on 127.0.0.1 (moto's server, in a thread).

moto's in-process `mock_aws` cannot serve aiobotocore clients, so a real HTTP endpoint is
needed. It listens on loopback only and on a free port unless one is given. moto comes with
the `local` extra (`pip install 'sqs-async[local]'`) and is imported only when a server starts.

Starting a server changes moto's SQS model for the whole process, where moto behaves unlike
SQS or slows with the queue's length (see `_patch_moto`): only for the moto releases in
`MOTO_RANGE`, whose members it checks first, failing with the version it found rather than
answering HTTP 500 later. What each patch fixes in moto 5.2, so that it can go once moto
fixes it upstream:

- `_read_the_clock_once_per_scan`: `Queue.messages` and the message counts read the clock
  once per message.
- `_serialize_message_list_changes`: nothing locks a queue's messages, so concurrent
  deletes are lost and concurrent receives hand out one message twice.
- `_build_queue_attributes_on_demand`: `Queue.attributes` counts the queue's messages
  three times to answer any one attribute, and SendMessage and ReceiveMessage ask for one
  per message.
- `_index_receipt_handles`: `Queue.delete_message` and `change_message_visibility` scan
  every message's receipt handles for each handle, and a delete rebuilds the message list.
- `_stop_receiving_at_a_full_batch`: `receive_message` lists every visible message to take
  ten (and deep-copies each it hands out); a long poll lists them all again at each wake-up.
- `_draw_receipt_handles_at_once`: a receipt handle is 185 calls to the random generator.
- `_remember_the_backend_of_each_host`: the server finds the backend for each request by
  listing moto's package directory and trying every service's URL patterns, under a lock.

The server itself (`LocalSqsServer.start`) binds its socket in the caller's thread, where
moto's `ThreadedMotoServer` left an unusable port to a thread that exited and a caller
waiting for it forever, and sends one `Server` header, not two (moto's and werkzeug's),
which strict HTTP parsers (aiohttp under `python -X dev`) refuse.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
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


class LocalServerError(RuntimeError):
    """The local server cannot start: moto is missing or unsupported, or the port is taken."""


class LocalSqsServer:
    """moto's server on 127.0.0.1; `endpoint_url` is set once it has started.

    `with LocalSqsServer() as server:` starts and stops it; `reset()` forgets all queues.
    After `stop()`, `start()` listens on the same port again (queues are kept: moto's state
    lives in the process).
    """

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.endpoint_url: str = ""

    def start(self) -> str:
        """Listen on 127.0.0.1 and serve in a thread; `LocalServerError` at once if it cannot."""
        try:
            from moto.moto_server.werkzeug_app import (
                DomainDispatcherApplication,
                MotoRequestHandler,
                create_backend_app,
            )
            from werkzeug.serving import make_server
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise LocalServerError(
                "the local SQS server needs moto: pip install 'sqs-async[local]'"
            ) from exc
        # One request log line per call would drown the caller's own logs.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        _patch_moto()
        # Bound here rather than by werkzeug, which prints the error and exits its thread
        # (ThreadedMotoServer then waits for that thread forever).
        try:
            listener = socket.create_server(("127.0.0.1", self._port))
        except OSError as exc:
            reason = (os.strerror(exc.errno) if exc.errno else str(exc)).lower()
            raise LocalServerError(f"cannot listen on 127.0.0.1:{self._port}: {reason}") from exc
        with listener:  # werkzeug serves a duplicate of it
            app = _one_server_header(DomainDispatcherApplication(create_backend_app))
            server = make_server(
                "127.0.0.1",
                self._port,
                app,
                threaded=True,
                request_handler=MotoRequestHandler,
                fd=listener.fileno(),
            )
        port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"local-sqs-{port}", daemon=True
        )
        self._thread.start()
        self._server = server
        self._port = port  # a restart comes back on the same port
        self.endpoint_url = f"http://127.0.0.1:{port}"
        return self.endpoint_url

    def stop(self) -> None:
        """Stop serving and close the socket (werkzeug's serve_forever closes it on return)."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

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


def _one_server_header(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """`app` without its `Server` header: werkzeug sends its own, and strict HTTP parsers
    (aiohttp's under `python -X dev`) refuse an answer with two."""

    def without_server_header(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(name, value) for name, value in headers if name.lower() != "server"]
            return start_response(status, kept, exc_info)

        return app(environ, start)

    return without_server_header


def _patch_moto(fast: bool = True) -> None:
    """Make moto's SQS model behave as SQS does under load, once per process.

    `fast=False` leaves out the patches that are only for speed (the benchmark's "before").
    """
    from moto.sqs.models import Queue

    if getattr(Queue, "_sqs_async_patched", False):
        return
    _check_moto()
    _read_the_clock_once_per_scan()
    if fast:
        _remember_the_backend_of_each_host()
        _build_queue_attributes_on_demand()
        _index_receipt_handles()
        _stop_receiving_at_a_full_batch()
        _draw_receipt_handles_at_once()
    _serialize_message_list_changes()  # last: it locks the methods the others replace
    setattr(Queue, "_sqs_async_patched", True)  # noqa: B010


def _check_moto() -> None:
    """Refuse to patch a moto whose members are not the ones the patches were written for."""
    import inspect
    from importlib.metadata import version

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.sqs import exceptions, models
    from moto.sqs.models import Message, Queue, SQSBackend

    found = version("moto")
    release = tuple(int(part) for part in found.split(".")[:2] if part.isdigit())
    low, high = MOTO_RANGE
    wanted = f"moto >={low[0]}.{low[1]},<{high[0]}.{high[1]}"
    if not low <= release < high:
        raise LocalServerError(
            f"LocalSqsServer patches moto's SQS model and supports {wanted}; found moto {found}"
        )
    members: dict[Any, list[str]] = {
        exceptions: ["InvalidParameterValue", "ReceiptHandleIsInvalid"],
        models: ["_filter_message_attributes", "generate_receipt_handle"],
        DomainDispatcherApplication: ["get_backend_for_host", "get_application"],
        Queue: [
            "messages",
            "add_message",
            "delete_message",
            "wait_for_messages",
            "attributes",
            "BASE_ATTRIBUTES",
            "FIFO_ATTRIBUTES",
            "KMS_ATTRIBUTES",
            "pending_messages",
            "pending_message_groups",
        ],
        Message: ["mark_received", "all_receipt_handles", "change_visibility", "visible"],
        SQSBackend: [
            "get_queue",
            "receive_message",
            "change_message_visibility",
            "purge_queue",
            "is_message_valid_based_on_retention_period",
        ],
    }
    instance_fields: dict[type, list[str]] = {
        Queue: [
            "_messages",
            "_messages_lock",
            "_pending_messages",
            "deleted_messages",
            "dead_letter_queue",
            "fifo_queue",
        ],
        Message: [
            "visible_at",
            "delayed_until",
            "receipt_handle",
            "_old_receipt_handles",
            "approximate_receive_count",
            "group_id",
            "sent_timestamp",
        ],
    }
    missing = [
        f"{getattr(kind, '__name__', kind)}.{name}"
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
        raise LocalServerError(
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


def _remember_the_backend_of_each_host() -> None:
    """Look up which moto backend serves a host once, not for every request.

    moto's server lists its package directory (a stat per service, some 180) and tries
    every service's URL patterns to find the backend, for each request and under one lock
    that every request takes: most of a request's time at 200 requests a second. The
    answer depends on the host alone.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    find = DomainDispatcherApplication.get_backend_for_host
    found: dict[str | None, Any] = {}

    @functools.wraps(find)
    def get_backend_for_host(dispatcher: Any, host: str | None) -> Any:
        if host not in found:
            found[host] = find(dispatcher, host)
        return found[host]

    setattr(DomainDispatcherApplication, "get_backend_for_host", get_backend_for_host)  # noqa: B010


def _draw_receipt_handles_at_once() -> None:
    """Draw a receipt handle's 185 letters at once, not by 185 calls (a tenth of a receive).

    Still 185 lowercase letters from moto's generator (which its API can seed), each byte
    mapped to a letter.
    """
    from moto.moto_api._internal import mock_random
    from moto.sqs import models

    letters = bytes(ord("a") + byte % 26 for byte in range(256))

    def generate_receipt_handle() -> str:
        return mock_random.randbytes(185).translate(letters).decode("ascii")

    setattr(models, "generate_receipt_handle", generate_receipt_handle)  # noqa: B010


def _build_queue_attributes_on_demand() -> None:
    """Make `Queue.attributes` a mapping that computes each attribute when it is read.

    moto builds every attribute, counting the queue's messages three times, for callers
    that want one: SendMessage asks for ContentBasedDeduplication once per message (three
    times on FIFO queues), ReceiveMessage for MessageRetentionPeriod three times per
    message. Each was a scan of the whole queue; reading every attribute (GetQueueAttributes
    "All") costs what it did.
    """
    from moto.sqs.models import Queue

    setattr(Queue, "attributes", property(_QueueAttributes))  # noqa: B010


class _QueueAttributes(Mapping[str, Any]):
    """moto's `Queue.attributes` (same names, order and values), read lazily."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue
        names = list(queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:
            names += queue.KMS_ATTRIBUTES
        self._names = dict.fromkeys(names)

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        if name == "RedrivePolicy" and self._queue.redrive_policy:
            return json.dumps(self._queue.redrive_policy)
        value = getattr(self._queue, _snake_case(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __contains__(self, name: object) -> bool:
        return name in self._names  # without computing it (Mapping's would)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@functools.cache
def _snake_case(name: str) -> str:
    """moto's name for an attribute (its conversion is slow enough to matter per message)."""
    from moto.core.utils import camelcase_to_underscores

    return camelcase_to_underscores(name)


def _receipt_handles(queue: Any) -> dict[str, Any]:
    """The queue's index: every receipt handle (current or earlier) of each of its messages.

    Built from the queue on first use; `_index_receipt_handles` and
    `_stop_receiving_at_a_full_batch` keep it in step with the queue's messages (always
    under the queue's lock).
    """
    handles: dict[str, Any] | None = vars(queue).get("_sqs_async_receipt_handles")
    if handles is None:
        handles = {}
        for message in queue._messages:
            _index(handles, message)
        queue._sqs_async_receipt_handles = handles
    return handles


def _index(handles: dict[str, Any], message: Any) -> None:
    handles.update((handle, message) for handle in message.all_receipt_handles if handle)


def _unindex(handles: dict[str, Any], message: Any) -> None:
    for handle in message.all_receipt_handles:
        handles.pop(handle, None)


def _index_receipt_handles() -> None:
    """Find a message by its receipt handle in a dict, not by scanning the queue.

    moto's `Queue.delete_message` scans every message's receipt handles (building a list
    per message) and then rebuilds the message list; `change_message_visibility` scans
    too: 380 messages read and deleted in 87 s from a queue of 30,000. Same answers: any
    handle a message in the queue ever had finds it, a deleted message's handles are
    accepted again by DeleteMessage and refused by ChangeMessageVisibility, others are
    refused. Messages enter the index when received or added with handles (moved to a
    dead-letter queue), and leave it when deleted, moved, or purged.
    """
    from moto.core.utils import unix_time_millis
    from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid
    from moto.sqs.models import Queue, SQSBackend

    purge_queue = SQSBackend.purge_queue
    add_message = Queue.add_message

    def add(queue: Any, message: Any) -> None:
        add_message(queue, message)
        if message.receipt_handle and queue._messages and queue._messages[-1] is message:
            _index(_receipt_handles(queue), message)  # a message moved to a dead-letter queue

    def delete_message(queue: Any, receipt_handle: str) -> None:
        if receipt_handle in queue.deleted_messages:
            return  # already deleted: moto accepts it again
        message = _receipt_handles(queue).get(receipt_handle)
        if message is None:
            raise ReceiptHandleIsInvalid()
        queue._messages.remove(message)
        queue.pending_messages.discard(message)
        queue.deleted_messages.update(message.all_receipt_handles)
        _unindex(_receipt_handles(queue), message)

    def change_message_visibility(
        backend: Any, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        queue = backend.get_queue(queue_name)
        message = _receipt_handles(queue).get(receipt_handle)
        if message is None:
            raise ReceiptHandleIsInvalid
        given_visibility_timeout = unix_time_millis() + int(visibility_timeout) * 1000
        if given_visibility_timeout - message.sent_timestamp > 43200 * 1000:
            raise InvalidParameterValue(
                f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. "
                "Reason: Total VisibilityTimeout for the message is beyond the limit "
                "[43200 seconds]"
            )
        message.change_visibility(visibility_timeout)
        if message.visible and message in queue.pending_messages:
            queue.pending_messages.remove(message)

    def purge(backend: Any, queue_name: str) -> None:
        purge_queue(backend, queue_name)
        _receipt_handles(backend.get_queue(queue_name)).clear()

    setattr(Queue, "add_message", functools.wraps(add_message)(add))  # noqa: B010
    setattr(Queue, "delete_message", delete_message)  # noqa: B010
    setattr(SQSBackend, "change_message_visibility", change_message_visibility)  # noqa: B010
    setattr(SQSBackend, "purge_queue", functools.wraps(purge_queue)(purge))  # noqa: B010


def _stop_receiving_at_a_full_batch() -> None:
    """Receive by walking the queue until the batch is full, with one clock read per walk.

    moto's `receive_message` first lists every visible message (a clock read each), then
    takes up to ten, and a long poll's `wait_for_messages` lists them all again at each
    wake-up. The walk is moto's, in the same order with the same checks: visibility and
    delay, FIFO groups with messages in flight, redrive to the dead-letter queue at
    maxReceiveCount, retention. It re-reads the groups in flight at each walk (moto at
    each call, so a long poll could hand out a message of a group another receive took).
    Each message handed out is copied shallowly, not deeply (a tenth of a receive).
    """
    from copy import copy

    from moto.core.utils import unix_time, unix_time_millis
    from moto.sqs.models import Queue, SQSBackend, _filter_message_attributes

    def available(queue: Any, now: float) -> Iterator[Any]:
        return (m for m in queue._messages if now > m.visible_at and not now < m.delayed_until)

    def take(
        backend: Any,
        queue: Any,
        queue_name: str,
        count: int,
        visibility_timeout: int,
        attribute_names: list[str],
    ) -> list[Any]:
        """One walk of moto's receive loop: the messages it hands out, marked received."""
        taken: list[Any] = []
        handles = _receipt_handles(queue)
        groups_in_flight = queue.pending_message_groups if queue.fifo_queue else set()
        to_dead_letters = []
        for message in available(queue, unix_time_millis()):
            if message in queue.pending_messages:  # its receiver let its visibility lapse
                queue.pending_messages.remove(message)
                if queue.fifo_queue:
                    groups_in_flight = queue.pending_message_groups
            if message.group_id and queue.fifo_queue and message.group_id in groups_in_flight:
                continue
            if (
                queue.dead_letter_queue is not None
                and queue.redrive_policy
                and message.approximate_receive_count >= queue.redrive_policy["maxReceiveCount"]
            ):
                to_dead_letters.append(message)
                continue
            queue.pending_messages.add(message)
            message.mark_received(visibility_timeout=visibility_timeout)
            handles[message.receipt_handle] = message
            # What the answer shows: moto deep-copies it, but the answer only reads it, and
            # the filter gives the copy a new attribute dict rather than changing the shared one.
            shown = copy(message)
            _filter_message_attributes(shown, attribute_names)
            if not backend.is_message_valid_based_on_retention_period(queue_name, message):
                break
            taken.append(shown)
            if len(taken) >= count:
                break
        for message in to_dead_letters:
            queue._messages.remove(message)
            _unindex(handles, message)
            queue.dead_letter_queue.add_message(message)
        return taken

    def receive_message(
        backend: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        queue = backend.get_queue(queue_name)
        names = message_attribute_names or []
        polling_end = unix_time() + wait_seconds_timeout
        while True:
            taken = take(backend, queue, queue_name, count, visibility_timeout, names)
            if taken or wait_seconds_timeout == 0 or unix_time() > polling_end:
                return taken
            queue.wait_for_messages(1)

    def wait_for_messages(queue: Any, timeout: int) -> None:
        with queue._messages_lock:
            queue._messages_lock.wait_for(
                lambda: any(True for _ in available(queue, unix_time_millis())), timeout=timeout
            )

    setattr(SQSBackend, "receive_message", receive_message)  # noqa: B010
    setattr(Queue, "wait_for_messages", wait_for_messages)  # noqa: B010


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
