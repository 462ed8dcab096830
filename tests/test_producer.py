"""SqsProducer: one message at a time in, batches out, every future resolved."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from benchmarks.contenders import CREDENTIALS
from benchmarks.harness import EndpointProcess, Scenario
from sqs_async import Delivered, Failed, ProducerFull, SqsClientError, SqsProducer
from sqs_async.errors import CLOSED_BEFORE_CONFIRMATION

from .conftest import stored_bodies
from .faults import FaultyClient, StubClient, accept_all, client_error

URL = "https://sqs.test/1/q"


class ControlledClient(StubClient):
    """Accepts every entry; records each request; can be stalled until released."""

    def __init__(self) -> None:
        self.requests: list[list[str]] = []
        self.sent_at: list[float] = []
        self.open = asyncio.Event()
        self.open.set()

    async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.requests.append([e["MessageBody"] for e in kwargs["Entries"]])
        self.sent_at.append(asyncio.get_running_loop().time())
        await self.open.wait()
        return accept_all(kwargs["Entries"])


async def put_from_tasks(producer: SqsProducer, tasks: int, each: int) -> dict[str, Any]:
    """`tasks` concurrent tasks each put `each` numbered bodies; returns body -> outcome."""
    outcomes: dict[str, Any] = {}

    async def worker(task: int) -> None:
        for i in range(each):
            body = f"{task * each + i:06d}:from task {task}"
            future = await producer.put(body)
            future.add_done_callback(lambda f, b=body: outcomes.__setitem__(b, f.result()))

    async with asyncio.TaskGroup() as group:
        for task in range(tasks):
            group.create_task(worker(task))
    await producer.flush()
    return outcomes


async def test_10000_messages_from_50_tasks_arrive_exactly_once() -> None:
    # The benchmark endpoint (an SQS JSON-protocol server on 127.0.0.1, in its own process):
    # moto spends time proportional to the queue's length on every message it accepts, which
    # makes 10,000 messages take many minutes there.
    with EndpointProcess() as endpoint:
        endpoint.reset(Scenario(latency_ms=1, body_bytes=0, max_in_flight=16))
        async with SqsProducer(
            queue_name="producer", endpoint_url=endpoint.url, max_in_flight=16, **CREDENTIALS
        ) as producer:
            outcomes = await put_from_tasks(producer, tasks=50, each=200)
        stats = await asyncio.to_thread(endpoint.stats, True)

    assert len(outcomes) == 10_000
    assert stats["unique"] == 10_000 and stats["duplicates"] == 0
    for body, outcome in outcomes.items():
        assert isinstance(outcome, Delivered) and outcome.record == body
        assert stats["message_ids"][body.split(":")[0]] == [outcome.message_id]


async def test_1000_messages_from_50_tasks_on_the_local_sqs_server(
    settings: dict[str, Any], queue_url: str
) -> None:
    async with SqsProducer(queue_url=queue_url, max_in_flight=16, **settings) as producer:
        outcomes = await put_from_tasks(producer, tasks=50, each=20)
    stored = stored_bodies(queue_url)
    assert len(outcomes) == 1000
    assert Counter(body for body, _ in stored) == Counter(set(outcomes))  # each exactly once
    message_ids = dict(stored)
    assert all(o.message_id == message_ids[body] for body, o in outcomes.items())


async def test_a_single_put_goes_out_after_the_linger_time() -> None:
    client = ControlledClient()
    async with SqsProducer(queue_url=URL, client=client, linger=0.05) as producer:
        loop = asyncio.get_running_loop()
        put_at = loop.time()
        future = await producer.put("alone")
        outcome = await asyncio.wait_for(future, timeout=5)  # no flush: the linger sends it
    assert isinstance(outcome, Delivered) and outcome.message_id == "id-alone"
    assert client.requests == [["alone"]]
    assert client.sent_at[0] - put_at >= 0.05


async def test_a_burst_is_sent_in_full_batches() -> None:
    client = ControlledClient()
    async with SqsProducer(queue_url=URL, client=client, linger=10) as producer:
        futures = [await producer.put(f"m{i}") for i in range(25)]
        await asyncio.wait_for(asyncio.gather(*futures[:20]), timeout=5)  # full batches: no wait
        assert [len(r) for r in client.requests] == [10, 10]
    assert [len(r) for r in client.requests] == [10, 10, 5]  # the rest at close
    assert all(isinstance(f.result(), Delivered) for f in futures)


async def test_backpressure_at_max_buffered() -> None:
    client = ControlledClient()
    client.open.clear()  # stalled: nothing resolves
    async with SqsProducer(queue_url=URL, client=client, max_buffered=30, linger=0) as producer:
        futures = [await producer.put(f"m{i}") for i in range(30)]
        assert producer.pending == 30
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(producer.put("one too many"), timeout=0.2)
        with pytest.raises(ProducerFull):
            producer.put_nowait("one too many")
        assert producer.pending == 30
        client.open.set()
        await asyncio.wait_for(asyncio.gather(*futures), timeout=5)
        assert producer.pending == 0
        late = await asyncio.wait_for(producer.put("now there is room"), timeout=5)
    assert isinstance(late.result(), Delivered)


async def test_close_sends_what_is_buffered() -> None:
    client = ControlledClient()
    async with SqsProducer(queue_url=URL, client=client, linger=60) as producer:
        futures = [await producer.put(f"m{i}") for i in range(3)]
    assert [f.result().message_id for f in futures] == ["id-m0", "id-m1", "id-m2"]


async def test_close_timeout_resolves_what_could_not_be_confirmed() -> None:
    client = ControlledClient()
    client.open.clear()
    producer = SqsProducer(queue_url=URL, client=client, close_timeout=0.2)
    await producer.open()
    futures = [await producer.put(f"m{i}") for i in range(12)]
    await producer.close()
    outcomes = [f.result() for f in futures]
    assert all(isinstance(o, Failed) and o.code == CLOSED_BEFORE_CONFIRMATION for o in outcomes)
    assert [o.record for o in outcomes] == [f"m{i}" for i in range(12)]
    with pytest.raises(RuntimeError, match="not open"):
        await producer.put("after close")


async def test_a_failing_queue_fails_every_pending_future(real_client: Any, queue_url: str) -> None:
    faulty = FaultyClient(real_client, request_fault=lambda _: client_error("AccessDenied", 403))
    async with SqsProducer(queue_url=queue_url, client=faulty, linger=0) as producer:
        futures = [await producer.put(f"m{i}") for i in range(25)]
        done, _ = await asyncio.wait(futures, timeout=5)
        assert len(done) == 25
        assert all(isinstance(f.exception(), SqsClientError) for f in futures)
        with pytest.raises(SqsClientError):
            await producer.put("later")


async def test_a_cancelled_caller_does_not_lose_other_messages() -> None:
    client = ControlledClient()
    client.open.clear()
    async with SqsProducer(queue_url=URL, client=client, linger=0) as producer:
        futures = [await producer.put(f"m{i}") for i in range(5)]
        waiter = asyncio.create_task(asyncio.wait_for(futures[2], timeout=10))
        await asyncio.sleep(0)
        waiter.cancel()
        client.open.set()
        outcomes = await asyncio.gather(*[f for i, f in enumerate(futures) if i != 2])
    assert [o.record for o in outcomes] == ["m0", "m1", "m3", "m4"]
    assert sum(len(r) for r in client.requests) == 5  # the cancelled one was still sent


async def test_invalid_message_resolves_at_once() -> None:
    async with SqsProducer(queue_url=URL, client=ControlledClient()) as producer:
        future = await producer.put({"MessageBody": ""})
        assert future.done()
        outcome = future.result()
    assert isinstance(outcome, Failed) and outcome.code == "InvalidMessageBody"
    assert outcome.attempts == 0
