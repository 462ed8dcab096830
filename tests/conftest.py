"""Fixtures: a real SQS-compatible server (moto's) on 127.0.0.1, fresh queues, read-back.

Beam and gRPC are imported only by the fixtures and helpers of Beam tests, so that the engine's
tests run without them (`test_packaging` checks).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from sqs_async.testing import LOCAL_CREDENTIALS, LocalSqsServer
from sqs_async.wire import on_wire

if TYPE_CHECKING:
    from apache_beam.options.pipeline_options import PipelineOptions

_queue_numbers = itertools.count()

# The DirectRunner's batch engine, named directly: DirectRunner itself first tries the Prism
# runner, which downloads a binary from GitHub (no network here, nor should tests need one).
LOCAL_RUNNER = "--runner=FnApiRunner"


@pytest.fixture(scope="session")
def sqs_server() -> Iterator[LocalSqsServer]:
    with LocalSqsServer() as server:
        yield server


@pytest.fixture
def server(sqs_server: LocalSqsServer) -> Iterator[LocalSqsServer]:
    """The session's server, emptied after each test."""
    yield sqs_server
    sqs_server.reset()


@pytest.fixture
def settings(server: LocalSqsServer) -> dict[str, Any]:
    """Keyword settings that point an SqsSender at the local server."""
    return dict(server.client_settings)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A user with no AWS set-up but the local server's credentials: no region, no ~/.aws."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def sync_client(server: LocalSqsServer) -> Any:
    return boto3.client("sqs", endpoint_url=server.endpoint_url, **LOCAL_CREDENTIALS)


@pytest.fixture
def queue_url(sync_client: Any) -> str:
    return make_queue(sync_client)


def make_queue(sync_client: Any, **attributes: str) -> str:
    name = f"test-{next(_queue_numbers)}"
    if attributes.get("FifoQueue") == "true":
        name += ".fifo"
    return str(sync_client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def drain(sync_client: Any, queue_url: str) -> list[dict[str, Any]]:
    """Receive and delete every visible message, each once (a 600 s visibility timeout)."""
    messages: list[dict[str, Any]] = []
    for _ in range(100_000):  # bounded: a queue in a test never holds that many
        response = sync_client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=600,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        batch = response.get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
        sync_client.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )
    raise AssertionError("queue did not run dry")


def bodies(sync_client: Any, queue_url: str) -> list[str]:
    return [message["Body"] for message in drain(sync_client, queue_url)]


@pytest.fixture
async def real_client(server: LocalSqsServer, wire: str) -> Any:
    """An open aiobotocore SQS client on the local server, for wrapping with faults; its hot
    calls on the `wire` path, as the engine's own client would have them."""
    from aiobotocore.session import get_session

    async with get_session().create_client("sqs", **server.client_settings) as client:
        yield on_wire(client, wire)


@pytest.fixture
def wire() -> str:
    """The wire path of `real_client` and `settings`: the default, "lean"; modules that must
    hold on both paths override it with both."""
    return "lean"


class RecordingSleep:
    """Stands in for asyncio.sleep between retries: records the waits, returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def stored_bodies(queue_url: str) -> list[tuple[str, str]]:
    """(body, MessageId) of every message the local server holds for `queue_url`.

    Read from moto's store directly (the server runs in this process): it sees every message
    at once, whatever its visibility, and reads nothing a test did not send.
    """
    from moto.sqs.models import sqs_backends

    account, name = queue_url.rsplit("/", 2)[-2:]
    queue = sqs_backends[account]["us-east-1"].queues[name]
    return [(m.body, m.id) for m in queue._messages]


@pytest.fixture
def loopback_grpc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beam's local runner binds its gRPC servers to every interface; keep them on loopback."""
    import grpc

    real_server = grpc.server

    def loopback_server(*args: Any, **kwargs: Any) -> Any:
        server = real_server(*args, **kwargs)
        bind = server.add_insecure_port
        server.add_insecure_port = lambda address: bind(address.replace("[::]", "127.0.0.1"))
        return server

    monkeypatch.setattr(grpc, "server", loopback_server)


async def until(condition: Any, *, timeout: float, interval: float = 0.05) -> None:  # noqa: ASYNC109
    """Wait for `condition()` to hold, polling; fail after `timeout` seconds (generous:
    the deadline only ends a test that would otherwise hang, it never decides a pass)."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {condition}")
        await asyncio.sleep(interval)


def options(server: LocalSqsServer, *extra: str) -> PipelineOptions:
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions(
        [
            f"--endpoint_url={server.endpoint_url}",
            "--region_name=us-east-1",
            "--aws_access_key_id=testing",
            "--aws_secret_access_key=testing",
            LOCAL_RUNNER,
            *extra,
        ]
    )


def queue_counts(sync_client: Any, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages of the queue."""
    attributes = sync_client.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def wait_until_visible(sync_client: Any, queue_url: str, count: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while queue_counts(sync_client, queue_url) != (count, 0):
        assert time.monotonic() < deadline, queue_counts(sync_client, queue_url)
        time.sleep(0.5)
