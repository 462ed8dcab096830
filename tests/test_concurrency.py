"""Concurrency is bounded by max_in_flight and reaches it; input is consumed lazily."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from sqs_async import SqsSender


class SlowFakeClient:
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
        return {
            "Successful": [
                {"Id": e["Id"], "MessageId": f"id-{e['MessageBody']}"} for e in kwargs["Entries"]
            ]
        }

    async def get_queue_url(self, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("not used")

    async def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]:
        return {"Attributes": {"MaximumMessageSize": "1048576"}}


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
    # When call n starts, at most the batches in flight plus the one being packed were read.
    for n, pulled in enumerate(client.pulled_at_call, start=1):
        assert pulled <= 10 * (n + max_in_flight) + 10
