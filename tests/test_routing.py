"""Dynamic destinations: one sender, many queues; a missing queue fails only its records.
And serializers: records that are not SQS entries."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from sqs_async import QueueField, SqsClientError, SqsProducer, SqsSender
from sqs_async.errors import INVALID_RECORD

from .conftest import bodies, make_queue
from .faults import FaultyClient

MISSING_QUEUE_CODE = "QueueDoesNotExist"


class CountingClient(FaultyClient):
    """Records the queue of every request and how often each queue name was looked up."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.requests: list[tuple[str, list[str]]] = []
        self.lookups: Counter[str] = Counter()

    async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.requests.append((kwargs["QueueUrl"], [e["MessageBody"] for e in kwargs["Entries"]]))
        return await super().send_message_batch(**kwargs)

    async def get_queue_url(self, **kwargs: Any) -> dict[str, Any]:
        self.lookups[kwargs["QueueName"]] += 1
        return await super().get_queue_url(**kwargs)


def name_of(queue_url: str) -> str:
    return queue_url.rsplit("/", 1)[-1]


async def test_records_go_to_the_queue_in_their_field(
    settings: dict[str, Any], sync_client: Any, real_client: Any
) -> None:
    urls = [make_queue(sync_client) for _ in range(2)]
    names = [name_of(url) for url in urls] + ["no-such-queue"]
    records = [{"MessageBody": f"{i}", "dest": names[i % 3]} for i in range(300)]
    client = CountingClient(real_client)
    async with SqsSender(queue_name=QueueField("dest"), client=client) as sender:
        first = await sender.send(records)
        second = await sender.send(records[:30])

    for result in (first, second):
        failed = {f.index for f in result.failed}
        assert failed == {i for i in range(len(failed) * 3) if i % 3 == 2}
        assert {f.code for f in result.failed} == {MISSING_QUEUE_CODE}
        assert all(f.record is records[f.index] for f in result.failed)
        assert result.delivered_count == len(failed) * 2
    for n, url in enumerate(urls):
        expected = [str(i) for i in range(300) if i % 3 == n] + [
            str(i) for i in range(30) if i % 3 == n
        ]
        assert sorted(bodies(sync_client, url)) == sorted(expected)
    # Each existing queue was looked up once, across both sends; the missing one once per send.
    assert client.lookups == {names[0]: 1, names[1]: 1, "no-such-queue": 2}
    # Batches never mix queues (and no request went to the missing queue).
    for queue_url, sent in client.requests:
        assert {names[int(body) % 3] for body in sent} == {name_of(queue_url)}


async def test_a_function_of_the_record_routes_by_url(
    settings: dict[str, Any], sync_client: Any
) -> None:
    good = make_queue(sync_client)
    missing = good.rsplit("/", 1)[0] + "/missing-queue"
    records = [{"n": i, "to": good if i % 2 else missing} for i in range(40)]
    async with SqsSender(
        queue_url=lambda record: record["to"],
        serializer=lambda record: json.dumps({"n": record["n"]}),
        **settings,
    ) as sender:
        result = await sender.send(records)

    assert sorted(f.index for f in result.failed) == list(range(0, 40, 2))
    assert {f.code for f in result.failed} == {MISSING_QUEUE_CODE}
    assert sorted(json.loads(b)["n"] for b in bodies(sync_client, good)) == list(range(1, 40, 2))


async def test_records_that_cannot_be_routed_or_serialized_fail_alone(
    settings: dict[str, Any], sync_client: Any
) -> None:
    queue_url = make_queue(sync_client)
    name = name_of(queue_url)

    def serialize(record: dict[str, Any]) -> str:
        return json.dumps(record["payload"])  # a set is not JSON: fails for that record

    records: list[Any] = [
        {"q": name, "payload": [1]},
        {"payload": [2]},  # no queue
        {"q": 7, "payload": [3]},  # not a queue name
        {"q": name, "payload": {4}},
        "not a mapping",
        {"q": name, "payload": "ok"},
    ]
    async with SqsSender(queue_name=QueueField("q"), serializer=serialize, **settings) as sender:
        result = await sender.send(records)

    assert sorted(f.index for f in result.failed) == [1, 2, 3, 4]
    assert {f.code for f in result.failed} == {INVALID_RECORD}
    messages = {f.index: f.message for f in result.failed}
    assert "field 'q'" in messages[1] and "serializer failed" in messages[3]
    assert sorted(bodies(sync_client, queue_url)) == ['"ok"', "[1]"]


async def test_a_single_missing_queue_still_fails_the_send(settings: dict[str, Any]) -> None:
    """Without routing, a missing queue is a configuration error, as before."""
    with pytest.raises(SqsClientError):
        async with SqsSender(queue_name="no-such-queue", **settings) as sender:
            await sender.send(["x"])


async def test_the_producer_refuses_routing(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="one queue"):
        SqsProducer(queue_name=QueueField("q"), **settings)


async def test_the_producer_serializes(settings: dict[str, Any], sync_client: Any) -> None:
    queue_url = make_queue(sync_client)
    async with SqsProducer(queue_url=queue_url, serializer=json.dumps, **settings) as producer:
        outcome = await producer.send({"a": 1})
    assert outcome.record == {"a": 1}
    assert bodies(sync_client, queue_url) == ['{"a": 1}']
