"""Payload stages through the engine's entry points: SqsSender, SqsProducer, SqsReceiver.

A toy stage (gzip+base64 of the body, `tests/stages.py`) goes out through each way in, is read
back raw from the queue (what SQS holds is the stage's output), and comes back decoded through
the receiver, whose stage is told of each delete. The Beam transforms: `test_beam_stages.py`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from sqs_async import (
    Delivered,
    Failed,
    PayloadStage,
    SenderConfig,
    SqsProducer,
    SqsReceiver,
    SqsSender,
)
from sqs_async.errors import MESSAGE_TOO_LONG

from .conftest import bodies, drain, make_queue, until
from .stages import GZIP, MARK, Gzip, Refuses, compress, decompress

RECORDS = ["plain text", "ünïcödé ✓", json.dumps({"n": 7, "tags": ["a", "b"]}), "x" * 5000]


def read_raw(sync_client: Any, queue_url: str) -> dict[str, dict[str, Any]]:
    """Body as stored -> its message attributes, for every message in the queue."""
    return {m["Body"]: m.get("MessageAttributes", {}) for m in drain(sync_client, queue_url)}


async def test_sender_sends_what_the_stage_makes(
    settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    stage = Gzip()
    records: list[Any] = [
        *RECORDS,
        {
            "MessageBody": "with attributes",
            "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "k"}},
        },
    ]
    async with SqsSender(queue_url=queue_url, payload_stage=stage, **settings) as sender:
        result = await sender.send(records)
    assert [d.record for d in result.delivered] == records and not result.failed
    raw = read_raw(sync_client, queue_url)
    assert sorted(decompress(body) for body in raw) == sorted([*RECORDS, "with attributes"])
    assert all(
        attributes[MARK]["StringValue"] == GZIP["StringValue"] for attributes in raw.values()
    )
    assert raw[compress("with attributes")]["kind"]["StringValue"] == "k"
    assert stage.queues and all(q.max_message_bytes > 0 and not q.fifo for q in stage.queues)


async def test_what_the_stage_makes_is_validated_and_measured(
    settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    class Inflate(PayloadStage):
        async def outgoing(self, entry: dict[str, Any], queue: Any) -> dict[str, Any]:
            return {**entry, "MessageBody": entry["MessageBody"] * 1000}

    async with SqsSender(
        queue_url=queue_url, payload_stage=Inflate(), max_message_bytes=10_000, **settings
    ) as sender:
        result = await sender.send(["short", "a bit longer than ten"])
    assert [d.record for d in result.delivered] == ["short"]
    [failed] = result.failed
    assert (failed.record, failed.code, failed.attempts) == (
        "a bit longer than ten",
        MESSAGE_TOO_LONG,
        0,
    )
    assert bodies(sync_client, queue_url) == ["short" * 1000]


async def test_a_stage_failure_fails_its_record_alone(
    settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    async with SqsSender(queue_url=queue_url, payload_stage=Refuses(), **settings) as sender:
        result = await sender.send(["good 1", "bad 2", "good 3"])
    assert sorted(d.record for d in result.delivered) == ["good 1", "good 3"]
    [failed] = result.failed
    assert (failed.record, failed.index, failed.code, failed.message, failed.sender_fault) == (
        "bad 2",
        1,
        "ToyRefusal",
        "no bad records",
        True,
    )
    assert sorted(bodies(sync_client, queue_url)) == ["good 1", "good 3"]


async def test_fifo_order_holds_when_stage_calls_end_out_of_order(
    settings: dict[str, Any], sync_client: Any
) -> None:
    queue_url = make_queue(sync_client, FifoQueue="true", ContentBasedDeduplication="true")
    records = [
        {"MessageBody": f"{g}-{i:03d}", "MessageGroupId": f"g{g}"}
        for i in range(60)
        for g in range(3)
    ]
    async with SqsSender(
        queue_url=queue_url, payload_stage=Gzip(jitter=0.01), **settings
    ) as sender:
        result = await sender.send(records)
    assert len(result.delivered) == len(records) and not result.failed
    received = [decompress(body) for body in bodies(sync_client, queue_url)]
    for group in range(3):
        mine = [body for body in received if body.startswith(f"{group}-")]
        assert mine == [f"{group}-{i:03d}" for i in range(60)]


async def test_producer_sends_what_the_stage_makes(
    settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    async with SqsProducer(
        SenderConfig(queue_url=queue_url, payload_stage=Gzip(jitter=0.005), **settings)
    ) as producer:
        futures = [await producer.put(record) for record in RECORDS]
        futures.append(producer.put_nowait("bad news"))
        outcomes = await asyncio.gather(*futures)
    assert all(isinstance(outcome, Delivered) for outcome in outcomes)
    assert [outcome.record for outcome in outcomes] == [*RECORDS, "bad news"]
    assert sorted(decompress(body) for body in read_raw(sync_client, queue_url)) == sorted(
        [*RECORDS, "bad news"]
    )


async def test_producer_fails_a_record_the_stage_refuses(
    settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    async with SqsProducer(queue_url=queue_url, payload_stage=Refuses(), **settings) as producer:
        outcomes = await asyncio.gather(
            producer.put_nowait("good"), producer.put_nowait("bad"), producer.put_nowait("fine")
        )
    assert [type(outcome) for outcome in outcomes] == [Delivered, Failed, Delivered]
    assert isinstance(outcomes[1], Failed) and outcomes[1].code == "ToyRefusal"
    assert sorted(bodies(sync_client, queue_url)) == ["fine", "good"]


async def test_receiver_hands_out_what_the_stage_makes_and_reports_deletes(
    settings: dict[str, Any], sync_client: Any, queue_url: str, tmp_path: Path
) -> None:
    async with SqsSender(queue_url=queue_url, payload_stage=Gzip(), **settings) as sender:
        await sender.send(RECORDS)
    log = tmp_path / "deleted.txt"
    async with SqsReceiver(
        queue_url=queue_url, payload_stage=Gzip(deleted_log=log), wait_time_seconds=1, **settings
    ) as receiver:
        received = [m async for m in receiver.messages(until_empty=True)]
        assert sorted(m.body for m in received) == sorted(RECORDS)
        assert all(MARK not in m.message_attributes for m in received)
        result = await receiver.ack(received)
    assert len(result.done) == len(RECORDS) and not result.failed
    assert sorted(log.read_text(encoding="utf-8").splitlines()) == sorted(RECORDS)
    assert drain(sync_client, queue_url) == []


async def test_a_message_the_stage_fails_is_not_handed_out_and_comes_back(
    settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    for body in ("good", "bad one", "also good"):
        sync_client.send_message(QueueUrl=queue_url, MessageBody=body)
    async with SqsReceiver(
        queue_url=queue_url,
        payload_stage=Refuses(),
        wait_time_seconds=1,
        visibility_timeout=3,
        **settings,
    ) as receiver:
        received = [m async for m in receiver.messages(until_empty=True)]
        assert sorted(m.body for m in received) == ["also good", "good"]
        assert receiver.stats.stage_failures == 1
        await receiver.ack(received)
    # Neither released nor deleted: SQS gives it out again once its visibility timeout ends.
    back: list[str] = []

    def came_back() -> bool:
        response = sync_client.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
        back.extend(m["Body"] for m in response.get("Messages", []))
        return bool(back)

    await until(came_back, timeout=60, interval=0.5)
    assert back == ["bad one"]


@pytest.mark.parametrize("entry_point", ["sender", "receiver"])
def test_a_stage_must_be_a_payload_stage(entry_point: str, queue_url: str) -> None:
    kind = SqsSender if entry_point == "sender" else SqsReceiver
    with pytest.raises(TypeError, match=r"payload_stage must be a sqs_async\.PayloadStage"):
        kind(queue_url=queue_url, payload_stage=object())  # type: ignore[arg-type]


def test_a_stage_method_must_be_async(queue_url: str) -> None:
    class Blocking(PayloadStage):
        def outgoing(self, entry: dict[str, Any], queue: Any) -> dict[str, Any]:  # type: ignore[override]
            return entry

    with pytest.raises(TypeError, match=r"payload_stage\.outgoing must be an async def"):
        SqsSender(queue_url=queue_url, payload_stage=Blocking())
