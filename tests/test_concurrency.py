"""Concurrency is bounded by max_in_flight and reaches it; input is consumed lazily."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from sqs_async import SqsSender

from .faults import StubClient, accept_all


class SlowFakeClient(StubClient):
    """Accepts every entry after a delay, counting requests in flight (no server needed)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.in_flight = 0
        self.peak = 0
        self.calls = 0
        self.pulled_at_call: list[int] = []
        self.pulled = 0

    async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        self.pulled_at_call.append(self.pulled)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        return accept_all(kwargs["Entries"])


@pytest.mark.parametrize("max_in_flight", [1, 4, 16])
async def test_in_flight_requests_reach_but_never_exceed_the_limit(max_in_flight: int) -> None:
    client = SlowFakeClient(delay=0.01)
    async with SqsSender(
        queue_url="https://sqs.test/1/q", client=client, max_in_flight=max_in_flight
    ) as sender:
        result = await sender.send(f"m{i}" for i in range(10 * max_in_flight * 3))
    assert client.peak == max_in_flight
    assert len(result.delivered) == 10 * max_in_flight * 3
    assert {d.message_id for d in result.delivered} == {
        f"id-m{i}" for i in range(10 * max_in_flight * 3)
    }


async def test_input_is_consumed_lazily() -> None:
    client = SlowFakeClient(delay=0.005)
    max_in_flight = 4

    def messages() -> Iterator[str]:
        for i in range(2000):
            client.pulled += 1
            yield f"m{i}"

    async with SqsSender(
        queue_url="https://sqs.test/1/q", client=client, max_in_flight=max_in_flight
    ) as sender:
        result = await sender.send(messages())

    assert len(result.delivered) == 2000
    # When call n starts, at most the batches alive (2 x max_in_flight: in flight or backing
    # off) plus the one being packed were read.
    for n, pulled in enumerate(client.pulled_at_call, start=1):
        assert pulled <= 10 * (n + 2 * max_in_flight) + 10


async def test_a_batch_backing_off_does_not_hold_a_request_slot() -> None:
    """With max_in_flight=1, a batch waiting to retry lets the next batch's request go."""

    class FailsFirstEntryOnce(SlowFakeClient):
        another_request_went = asyncio.Event()

        async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            entries = kwargs["Entries"]
            if self.calls == 1:
                self.another_request_went.set()
            if self.calls == 0:
                self.calls += 1
                return {
                    "Successful": [{"Id": e["Id"], "MessageId": "x"} for e in entries[1:]],
                    "Failed": [
                        {
                            "Id": entries[0]["Id"],
                            "SenderFault": False,
                            "Code": "InternalError",
                            "Message": "try again",
                        }
                    ],
                }
            return await super().send_message_batch(**kwargs)

    client = FailsFirstEntryOnce(delay=0)

    async def backoff_until_another_request_went(seconds: float) -> None:
        async with asyncio.timeout(5):  # a held slot would stall the other batch: fail loudly
            await client.another_request_went.wait()

    async with SqsSender(
        queue_url="https://sqs.test/1/q",
        client=client,
        max_in_flight=1,
        sleep=backoff_until_another_request_went,
    ) as sender:
        result = await sender.send(f"m{i}" for i in range(20))
    assert result.delivered_count == 20 and result.failed == []
    assert client.calls == 3  # first batch, second batch, then the first batch's retry


async def test_keep_delivered_false_counts_without_keeping() -> None:
    client = SlowFakeClient(delay=0)
    async with SqsSender(queue_url="https://sqs.test/1/q", client=client) as sender:
        result = await sender.send((f"m{i}" for i in range(500)), keep_delivered=False)
    assert result.delivered == [] and result.delivered_count == 500 and result.total == 500


async def test_a_slow_async_input_does_not_hold_back_what_it_already_gave() -> None:
    """An async input that yields its next message only once the first is delivered: the
    first goes after a short linger, not when ten have come or the input ends (a hang)."""

    class Answering(SlowFakeClient):
        answered = asyncio.Event()

        async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            answer = await super().send_message_batch(**kwargs)
            self.answered.set()
            return answer

    client = Answering(delay=0)

    async def messages() -> AsyncIterator[str]:
        for i in range(3):
            yield f"m{i}"
            await client.answered.wait()  # the message just given must be sent first
            client.answered.clear()

    async with SqsSender(queue_url="https://sqs.test/1/q", client=client) as sender:
        async with asyncio.timeout(30):  # ends a hang; never decides a pass
            result = await sender.send(messages())
    assert result.delivered_count == 3 and client.calls == 3
