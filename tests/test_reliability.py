"""Reliability under real faults: throttling, a server that goes away, deadlines, duplicates."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import pytest
from botocore.exceptions import ReadTimeoutError

from benchmarks.contenders import CREDENTIALS
from benchmarks.harness import EndpointProcess, Scenario
from sqs_async import RetryPolicy, SqsSender
from sqs_async.errors import DEADLINE_EXCEEDED
from sqs_async.testing import LocalSqsServer

from .conftest import make_queue, stored_bodies
from .faults import FaultyClient, StubClient

# Runs Beam pipelines, subprocesses or the benchmark endpoint (`make test-quick` skips it).
pytestmark = pytest.mark.integration


@pytest.fixture(params=["lean", "botocore"])
def wire(request: pytest.FixtureRequest) -> str:
    """The tests here hold on both wire paths (`sqs_async.wire`): each runs on each."""
    return str(request.param)


QUICK_RETRIES = RetryPolicy(max_trials=40, initial_backoff=0.01, max_backoff=0.1, jitter=0.01)


def numbered(count: int, start: int = 0) -> list[str]:
    return [f"{i:06d}:body" for i in range(start, start + count)]


async def test_throttling_lowers_concurrency_and_it_recovers(wire: str) -> None:
    """The endpoint throttles requests beyond 4 at once; a fixed 32 in flight hammers it."""
    scenario = Scenario(latency_ms=20, body_bytes=0, max_in_flight=32, jitter=0)
    results = {}
    with EndpointProcess() as endpoint:
        for adaptive in (False, True):
            endpoint.reset(scenario, max_concurrent=4)
            watched: list[FaultyClient] = []

            def watch(client: Any, watched: list[FaultyClient] = watched) -> FaultyClient:
                watched.append(FaultyClient(client))
                return watched[-1]

            async with SqsSender(
                queue_name="q",
                endpoint_url=endpoint.url,
                max_in_flight=32,
                adaptive_concurrency=adaptive,
                retry=QUICK_RETRIES,
                client_wrapper=watch,
                wire=wire,
                **CREDENTIALS,
            ) as sender:
                results[adaptive] = await sender.send(numbered(2000))
                if adaptive:
                    # Seen from outside: the last requests of the throttled run started with
                    # fewer than 32 in flight.
                    assert max(watched[0].in_flight_at_start[-20:]) < 32
                    # Throttling stops: concurrency climbs back to max_in_flight.
                    endpoint.change_knobs(latency_ms=20)
                    watched[0].in_flight_at_start.clear()
                    recovered = await sender.send(numbered(8000, start=2000))
                    assert max(watched[0].in_flight_at_start) == 32
                    assert recovered.throttled == 0 and recovered.delivered_count == 8000
            stats = await asyncio.to_thread(endpoint.stats)
            assert stats["duplicates"] == 0
    fixed, adaptive = results[False], results[True]
    assert adaptive.delivered_count == 2000
    # A fixed sender hammering the endpoint may exhaust its attempts: failed, never lost.
    assert fixed.total == 2000 and {f.code for f in fixed.failed} <= {"ThrottlingException"}
    assert adaptive.throttled * 4 < fixed.throttled, (adaptive.throttled, fixed.throttled)
    assert adaptive.throttled_seconds > 0 and fixed.throttled_seconds == 0


async def until_stored(queue_url: str, count: int, within: float = 60) -> None:
    """Poll the server's store until it holds `count` messages (bounded in time)."""
    async with asyncio.timeout(within):
        for _ in iter(int, 1):  # forever, until the timeout
            if len(stored_bodies(queue_url)) >= count:
                return
            await asyncio.sleep(0.01)


async def restart_later(server: LocalSqsServer, queue_url: str, after: int, down: float) -> None:
    """Stop the server once `after` messages are stored; start it again `down` s later."""
    await until_stored(queue_url, after)
    await asyncio.to_thread(server.stop)
    await asyncio.sleep(down)
    await asyncio.to_thread(server.start)


def on_server(queue_url: str, server: LocalSqsServer) -> str:
    """The same queue, addressed through another server of this process (moto's state is
    shared by every server in a process)."""
    return queue_url.replace(queue_url.split("/")[2], server.endpoint_url.split("/")[2])


async def test_a_server_restart_mid_send_loses_nothing(sync_client: Any, wire: str) -> None:
    queue_url = make_queue(sync_client)
    with LocalSqsServer() as own:
        async with SqsSender(
            queue_url=on_server(queue_url, own),
            max_in_flight=4,
            retry=QUICK_RETRIES,
            connect_timeout=1,
            read_timeout=2,
            wire=wire,
            **own.client_settings,
        ) as sender:
            send = asyncio.create_task(sender.send(numbered(300)))
            await restart_later(own, queue_url, after=40, down=0.5)
            result = await asyncio.wait_for(send, timeout=120)
    assert result.failed == []
    assert sorted(d.index for d in result.delivered) == list(range(300))
    stored = Counter(body for body, _ in stored_bodies(queue_url))
    assert set(stored) == set(numbered(300))
    assert sum(stored.values()) - 300 <= result.possible_duplicates


async def test_a_server_that_stays_down_fails_the_rest_without_hanging(
    sync_client: Any, wire: str
) -> None:
    queue_url = make_queue(sync_client)
    server = LocalSqsServer()
    server.start()
    async with SqsSender(
        queue_url=on_server(queue_url, server),
        max_in_flight=2,
        connect_timeout=1,
        read_timeout=2,
        retry=RetryPolicy(max_trials=2, initial_backoff=0.01, jitter=0),
        wire=wire,
        **server.client_settings,
    ) as sender:
        send = asyncio.create_task(sender.send(numbered(300)))
        await until_stored(queue_url, 20)
        await asyncio.to_thread(server.stop)
        result = await asyncio.wait_for(send, timeout=60)
    assert result.total == 300
    assert result.delivered_count >= 20 and result.failed
    assert {f.code for f in result.failed} <= {
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "TimeoutError",
    }
    assert all(f.attempts == 2 and not f.sender_fault for f in result.failed)
    delivered = {d.record for d in result.delivered}
    assert {b for b, _ in stored_bodies(queue_url)} >= delivered


class AcceptedThenTimedOut(FaultyClient):
    """Forwards the first request, then reports a read timeout as if the answer were lost."""

    first_request: ClassVar[list[str]] = []

    async def _send(self, queue_url: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
        first = len(self.calls) == 1
        if first:
            AcceptedThenTimedOut.first_request = [e["MessageBody"] for e in entries]
        response = await super()._send(queue_url, entries)
        if first:
            raise ReadTimeoutError(endpoint_url=queue_url)
        return response


async def test_retry_after_a_lost_answer_is_counted_as_a_possible_duplicate(
    real_client: Any, queue_url: str
) -> None:
    async with SqsSender(
        queue_url=queue_url, client=AcceptedThenTimedOut(real_client), retry=QUICK_RETRIES
    ) as sender:
        result = await sender.send(numbered(15))
    assert result.failed == [] and result.delivered_count == 15
    first_request = AcceptedThenTimedOut.first_request
    assert result.possible_duplicates == len(first_request)
    stored = Counter(body for body, _ in stored_bodies(queue_url))
    assert stored == Counter({b: 2 if b in first_request else 1 for b in numbered(15)})


class SlowAccepting(StubClient):
    """Accepts everything after `delay` seconds; entries starting with 'flaky' always fail."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        await asyncio.sleep(self.delay)
        ok, bad = [], []
        for e in kwargs["Entries"]:
            if e["MessageBody"].startswith("flaky"):
                bad.append(
                    {
                        "Id": e["Id"],
                        "SenderFault": False,
                        "Code": "InternalError",
                        "Message": "try later",
                    }
                )
            else:
                ok.append({"Id": e["Id"], "MessageId": "m"})
        return {"Successful": ok, "Failed": bad}


async def test_deadline_fails_what_is_left_and_returns() -> None:
    policy = RetryPolicy(max_trials=100, initial_backoff=0.05, max_backoff=0.05, jitter=0)
    async with SqsSender(
        queue_url="https://sqs.test/1/q",
        client=SlowAccepting(0.05),
        max_in_flight=1,
        retry=policy,
    ) as sender:
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await sender.send(["flaky-0", *numbered(300)], deadline=0.5)
        elapsed = loop.time() - started
    assert result.total == 301
    assert result.delivered_count > 0
    expired = [f for f in result.failed if f.code == DEADLINE_EXCEEDED]
    assert len(expired) == len(result.failed) > 0
    flaky = next(f for f in result.failed if f.record == "flaky-0")
    assert flaky.attempts > 1 and "InternalError" not in flaky.code
    assert "last" in flaky.message
    assert elapsed < 0.5 + 0.05 + 2  # the deadline plus one request, with room for a slow CI


@pytest.mark.parametrize("max_in_flight", [1, 4])
async def test_deadline_zero_sends_nothing(max_in_flight: int) -> None:
    async with SqsSender(
        queue_url="https://sqs.test/1/q", client=SlowAccepting(0), max_in_flight=max_in_flight
    ) as sender:
        result = await sender.send(numbered(25), deadline=0)
    assert result.delivered_count == 0
    assert [f.code for f in result.failed] == [DEADLINE_EXCEEDED] * 25


@pytest.mark.slow
def test_soak_200000_messages_through_beam_with_transient_faults() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--messages", "200000", "--fail-rate", "0.05"],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    soak = json.loads(completed.stdout.strip().splitlines()[-1])
    assert soak["faults_injected"] > 5000
    assert soak["delivered"] == 199_800 and soak["failed_output_records"] == 200
    assert soak["lost"] == 0 and soak["duplicates"] == 0
    quarters = soak["rss_mb_at_quarters"]
    assert max(quarters) - min(quarters) < 25, quarters  # flat while it runs
