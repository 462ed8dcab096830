"""Messages sent through the engine arrive on a real queue, intact and exactly once."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest

from sqs_async import SqsSender

from .conftest import drain, make_queue
from .faults import FaultyClient


def mixed_messages(count: int, seed: int = 7) -> list[Any]:
    """Plain bodies, seed-style records and records with attributes, of mixed sizes."""
    rng = random.Random(seed)
    messages: list[Any] = []
    for i in range(count):
        body = f"{i:05d}:" + "é☃😀x"[i % 4] * rng.choice([1, 10, 1000, 20_000, 120_000])
        if i % 3 == 0:
            messages.append(body)
        elif i % 3 == 1:
            messages.append({"Id": str(i % 5), "MessageBody": body})  # duplicate caller Ids
        else:
            messages.append(
                {
                    "Id": "not a valid wire id!",
                    "MessageBody": body,
                    "MessageAttributes": {
                        "n": {"DataType": "Number", "StringValue": str(i)},
                        "s": {"DataType": "String", "StringValue": f"s-{i}"},
                        "b": {"DataType": "Binary", "BinaryValue": i.to_bytes(4, "big")},
                    },
                }
            )
    return messages


def body_of(record: Any) -> str:
    return record if isinstance(record, str) else record["MessageBody"]


async def test_round_trip_of_1000_mixed_messages(
    settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    messages = mixed_messages(1000)
    async with SqsSender(queue_url=queue_url, max_in_flight=8, **settings) as sender:
        result = await sender.send(iter(messages))

    assert result.failed == []
    assert sorted(d.index for d in result.delivered) == list(range(1000))
    assert all(d.record is messages[d.index] for d in result.delivered)
    assert len({d.message_id for d in result.delivered}) == 1000
    # Requests were packed by count and bytes: fewer than one per message, none too large.
    assert 100 <= result.requests < 1000

    received = drain(sync_client, queue_url)
    assert len(received) == 1000
    by_body = {m["Body"]: m for m in received}
    assert len(by_body) == 1000, "a message arrived twice"
    for delivered in result.delivered:
        message = by_body[body_of(delivered.record)]
        assert message["MessageId"] == delivered.message_id
        record = delivered.record
        if isinstance(record, dict) and "MessageAttributes" in record:
            got = {
                name: {
                    k: v
                    for k, v in value.items()
                    if k in ("DataType", "StringValue", "BinaryValue")
                }
                for name, value in message["MessageAttributes"].items()
            }
            assert got == record["MessageAttributes"]


async def test_queue_name_is_resolved_once(
    settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    name = queue_url.rsplit("/", 1)[1]
    async with SqsSender(queue_name=name, **settings) as sender:
        assert sender.queue_url == queue_url
        first = await sender.send(["a", "b"])
        second = await sender.send(["c"])
    assert len(first.delivered) == 2 and len(second.delivered) == 1
    assert sorted(m["Body"] for m in drain(sync_client, queue_url)) == ["a", "b", "c"]


async def test_async_iterable_input(
    settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    async def produce() -> Any:
        for i in range(25):
            yield f"m{i}"

    async with SqsSender(queue_url=queue_url, **settings) as sender:
        result = await sender.send(produce())
    assert sorted(d.index for d in result.delivered) == list(range(25))
    assert sorted(m["Body"] for m in drain(sync_client, queue_url)) == sorted(
        f"m{i}" for i in range(25)
    )


async def test_empty_input_makes_no_request(settings: dict[str, Any], queue_url: str) -> None:
    async with SqsSender(queue_url=queue_url, **settings) as sender:
        result = await sender.send([])
    assert (result.total, result.requests) == (0, 0)


async def test_summary_is_logged_without_bodies(
    settings: dict[str, Any], queue_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sqs_async")
    secret_body = "top-secret-body"
    async with SqsSender(queue_url=queue_url, **settings) as sender:
        await sender.send([secret_body, "", "x"])
    info = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert "total 3, succeeded 2, failed 1" in info
    everything = " ".join(r.getMessage() for r in caplog.records)
    assert secret_body not in everything
    assert settings["aws_secret_access_key"] not in everything


def attribute(data_type: str, value: str | bytes) -> dict[str, Any]:
    key = "BinaryValue" if isinstance(value, bytes) else "StringValue"
    return {"DataType": data_type, key: value}


class EntryRecorder(FaultyClient):
    """Keeps every entry sent, as it went on the wire."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.entries: list[dict[str, Any]] = []

    async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.entries.extend(kwargs["Entries"])
        return await super().send_message_batch(**kwargs)


async def test_every_attribute_kind_reads_back_equal(sync_client: Any, real_client: Any) -> None:
    """Ten attributes (the limit) of every type, custom types included, and the AWSTraceHeader
    system attribute; the message is exactly as large as the queue allows, attributes
    counted as SQS counts them (names, types and values, in UTF-8 bytes)."""
    queue_url = make_queue(sync_client, MaximumMessageSize="1024")
    attributes = {
        "s": attribute("String", "ünïcode ☃"),
        "n": attribute("Number", "-12.5e3"),
        "b": attribute("Binary", bytes(range(256))),
        "json": attribute("String.json", '{"a": [1, 2]}'),
        "int": attribute("Number.int", "42"),
        "gz": attribute("Binary.gz", b"\x1f\x8b\x00"),
        "a.b-c_d": attribute("String", "dots"),
        "empty-ish": attribute("String", " "),
        "big": attribute("Number", "1" * 30),
        "last": attribute("String", "10th"),
    }
    used = sum(
        len(name.encode())
        + len(a["DataType"])
        + len(a.get("StringValue", "").encode())
        + len(a.get("BinaryValue", b""))
        for name, a in attributes.items()
    )
    trace = {"AWSTraceHeader": attribute("String", "Root=1-5759e988-bd862e3fe1be46a994272793")}
    exact = {"MessageBody": "x" * (1024 - used), "MessageAttributes": attributes}
    too_long = {**exact, "MessageBody": "x" * (1025 - used)}
    recorder = EntryRecorder(real_client)
    async with SqsSender(queue_url=queue_url, client=recorder) as sender:
        result = await sender.send([{**exact, "MessageSystemAttributes": trace}, too_long])

    assert [f.code for f in result.failed] == ["MessageTooLong"]
    assert result.failed[0].index == 1
    received = sync_client.receive_message(
        QueueUrl=queue_url, MessageAttributeNames=["All"], AttributeNames=["All"]
    )["Messages"]
    assert len(received) == 1
    got = {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in received[0]["MessageAttributes"].items()
    }
    assert got == attributes
    # moto's SendMessageBatch drops system attributes, so this one is checked on the wire.
    assert [e["MessageSystemAttributes"] for e in recorder.entries] == [trace]
