"""Rules real SQS enforces that moto does not, and input mistakes, held by the engine."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import pytest

from sqs_async import QueueField, SqsClientError, SqsReceiver, SqsSender, stable_hash
from sqs_async.testing import LocalSqsServer

from .conftest import bodies, make_queue, until
from .faults import StubClient


class RecordingClient:
    """Forwards to the real client, recording the entries sent to each queue and counting
    every call by operation."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.entries: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.calls: dict[str, int] = defaultdict(int)

    def __getattr__(self, operation: str) -> Any:
        call = getattr(self.inner, operation)

        async def recorded(**kwargs: Any) -> Any:
            self.calls[operation] += 1
            if operation == "send_message_batch":
                self.entries[kwargs["QueueUrl"]] += kwargs["Entries"]
            return await call(**kwargs)

        return recorded


@pytest.mark.parametrize("lone", ["abc", b"abc", {"MessageBody": "abc"}])
async def test_a_lone_message_where_an_iterable_belongs_is_a_type_error(lone: Any) -> None:
    class Never(StubClient):
        async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            raise AssertionError("no request may be made")

    async with SqsSender(queue_url="https://sqs.test/1/q", client=Never()) as sender:
        with pytest.raises(TypeError, match=r"iterable of messages.*\[message\]"):
            await sender.send(lone)


async def test_deduplication_ids_go_to_fifo_queues_only(
    server: LocalSqsServer, settings: dict[str, Any], sync_client: Any
) -> None:
    standard = make_queue(sync_client)
    fifo = make_queue(sync_client, FifoQueue="true")
    records = [
        {"MessageBody": f"m{i}", "MessageGroupId": "g", "queue": q}
        for i in range(6)
        for q in (standard, fifo)
    ]
    recorder: list[RecordingClient] = []

    def record(client: Any) -> RecordingClient:
        recorder.append(RecordingClient(client))
        return recorder[0]

    async with SqsSender(
        queue_url=QueueField("queue"),
        message_deduplication_id=stable_hash,
        client_wrapper=record,
        **settings,
    ) as sender:
        first = await sender.send(records)
        again = await sender.send(records)  # a runner retrying a bundle
    assert not first.failed and not again.failed
    sent = recorder[0].entries
    # SQS refuses MessageDeduplicationId on a standard queue: the helper left it out there.
    assert all("MessageDeduplicationId" not in entry for entry in sent[standard])
    assert all("MessageDeduplicationId" in entry for entry in sent[fifo])
    assert sorted(bodies(sync_client, standard)) == sorted([f"m{i}" for i in range(6)] * 2)
    assert bodies(sync_client, fifo) == [f"m{i}" for i in range(6)]  # once each, in order


async def test_an_entry_with_a_deduplication_id_fails_on_a_standard_queue_before_any_call(
    server: LocalSqsServer, settings: dict[str, Any], queue_url: str, sync_client: Any
) -> None:
    recorder: list[RecordingClient] = []

    def record(client: Any) -> RecordingClient:
        recorder.append(RecordingClient(client))
        return recorder[0]

    bad = {"MessageBody": "x", "MessageDeduplicationId": "d1"}
    async with SqsSender(queue_url=queue_url, client_wrapper=record, **settings) as sender:
        result = await sender.send([bad])
        assert recorder[0].calls["send_message_batch"] == 0
        mixed = await sender.send([bad, "fine"])
    [failed] = result.failed
    assert failed.code == "InvalidFifoFields" and failed.sender_fault and failed.attempts == 0
    assert "only to FIFO queues" in failed.message
    assert [f.record for f in mixed.failed] == [bad] and mixed.delivered_count == 1
    assert bodies(sync_client, queue_url) == ["fine"]


async def test_get_queue_url_without_a_url_is_a_client_error() -> None:
    class NoUrl(StubClient):
        async def get_queue_url(self, **kwargs: Any) -> dict[str, Any]:
            return {"ResponseMetadata": {"HTTPStatusCode": 200}}

    with pytest.raises(SqsClientError, match="without a QueueUrl") as raised:
        async with SqsSender(queue_name="q", client=NoUrl()):
            pass
    assert raised.value.code == "MissingQueueUrl"


async def test_closing_a_receiver_strands_no_message_in_an_abandoned_poll(
    server: LocalSqsServer, settings: dict[str, Any], queue_url: str, sync_client: Any
) -> None:
    # moto's server, like SQS, keeps a long poll running after the client has gone and hands
    # it the next messages to arrive. A receiver that closed by cancelling its polls left
    # them there: these five messages stayed invisible for the 30 s visibility timeout.
    polling = asyncio.Event()

    class Watched(RecordingClient):
        async def receive_message(self, **kwargs: Any) -> Any:
            polling.set()
            return await self.inner.receive_message(**kwargs)

    receiver = SqsReceiver(
        queue_url=queue_url,
        wait_time_seconds=2,
        concurrent_receives=2,
        client_wrapper=Watched,
        **settings,
    )
    async with receiver:
        await asyncio.wait_for(polling.wait(), timeout=30)
    for i in range(5):
        sync_client.send_message(QueueUrl=queue_url, MessageBody=f"after-close-{i}")
    seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 2.0  # "within a second or two": they must be visible now
    while len(seen) < 5 and time.monotonic() < deadline:
        reply = sync_client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        seen.update({m["Body"]: m for m in reply.get("Messages", [])})
    assert sorted(seen) == [f"after-close-{i}" for i in range(5)]
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in seen.values()} == {"1"}


async def test_the_visibility_keeper_stops_once_the_queue_is_deleted(
    server: LocalSqsServer, settings: dict[str, Any], queue_url: str, sync_client: Any
) -> None:
    sync_client.send_message(QueueUrl=queue_url, MessageBody="held")
    recorders: list[RecordingClient] = []

    def record(client: Any) -> RecordingClient:
        recorders.append(RecordingClient(client))
        return recorders[0]

    receiver = SqsReceiver(
        queue_url=queue_url,
        visibility_timeout=3,  # the keeper looks every 0.5 s
        wait_time_seconds=0,
        concurrent_receives=1,
        client_wrapper=record,
        **settings,
    )
    async with receiver:
        [held] = await receiver.receive(wait=30)
        sync_client.delete_queue(QueueUrl=queue_url)
        # The keeper must try an extension, be refused and stop: the reader is told once.
        await until(lambda: receiver._tasks[0].done(), timeout=60)
        calls = recorders[0].calls["change_message_visibility_batch"]
        assert calls >= 1
        with pytest.raises(SqsClientError) as raised:
            await receiver.receive(wait=1)
        assert raised.value.code == "QueueDoesNotExist"
        assert "does not exist" in str(raised.value) or "QueueDoesNotExist" in str(raised.value)
    assert recorders[0].calls["change_message_visibility_batch"] <= calls + 1  # close's release
    assert held.body == "held"


async def test_until_empty_waits_for_the_polls_open_when_one_came_back_empty(
    server: LocalSqsServer, settings: dict[str, Any], queue_url: str, sync_client: Any
) -> None:
    # Two polls open at once: the first answers "empty" (as when another reader holds the
    # visible messages), the second brings them 0.5 s later. The queue was not empty.
    for i in range(5):
        sync_client.send_message(QueueUrl=queue_url, MessageBody=f"m{i}")
    calls = 0
    second_open = asyncio.Event()

    class EmptyFirst(RecordingClient):
        async def receive_message(self, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 1:
                await asyncio.wait_for(second_open.wait(), timeout=60)  # both polls open
                return {"Messages": []}
            second_open.set()
            await asyncio.sleep(0.5)  # the fault: this poll answers late
            return await self.inner.receive_message(**kwargs)

    async with SqsReceiver(
        queue_url=queue_url,
        wait_time_seconds=1,
        concurrent_receives=2,
        client_wrapper=EmptyFirst,
        **settings,
    ) as receiver:
        read = [m async for m in receiver.messages(until_empty=True)]
        await receiver.ack(read)
    assert sorted(m.body for m in read) == [f"m{i}" for i in range(5)]
