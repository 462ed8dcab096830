"""The receive side's parts, each on its own with a stub client (no server, no Beam): polling
(`_polling`), the visibility keeper (`_keeper`), batch calls on receipt handles (`_acks`) and
the payload stage's receive hooks (`_stages`, through `SqsReceiver`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from sqs_async import (
    AckResult,
    PayloadStage,
    ReceivedMessage,
    ReceiverConfig,
    ReceiverStats,
    RetryPolicy,
    SqsClientError,
    SqsReceiver,
)
from sqs_async.defaults import SPARE_CONNECTIONS
from sqs_async.receive._acks import ReceiptCalls
from sqs_async.receive._keeper import Keeper
from sqs_async.receive._polling import Polling
from sqs_async.receive._throttling import ThrottledTime

from .faults import StubClient, client_error, no_sleep, settle

URL = "https://sqs.test/1/q"


def raw(n: int) -> dict[str, Any]:
    """Message number `n` as a ReceiveMessage answer lists it."""
    return {"MessageId": f"id-{n}", "Body": f"m{n}", "ReceiptHandle": f"rh-{n}"}


def message(n: int) -> ReceivedMessage:
    return ReceivedMessage.from_response(raw(n))


# Polling


class OpenPolls(StubClient):
    """`receive_message` stays open (as a long poll on the server) until the test answers it;
    a call cancelled while open is counted."""

    def __init__(self) -> None:
        self.calls: list[asyncio.Future[dict[str, Any]]] = []
        self.asked: list[tuple[int, int]] = []  # (MaxNumberOfMessages, WaitTimeSeconds)
        self.cancelled = 0

    async def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.calls.append(answer)
        self.asked.append((kwargs["MaxNumberOfMessages"], kwargs["WaitTimeSeconds"]))
        try:
            return await answer
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    def answer(self, call: int, *numbers: int) -> None:
        self.calls[call].set_result({"Messages": [raw(n) for n in numbers]})

    def open_calls(self) -> list[int]:
        return [n for n, call in enumerate(self.calls) if not call.done()]


def polling_for(client: OpenPolls, **settings: Any) -> tuple[Polling, Keeper, ReceiverStats]:
    config = ReceiverConfig(queue_url=URL, **settings)
    stats = ReceiverStats()

    async def extend(messages: list[ReceivedMessage]) -> AckResult:
        return AckResult(done=messages)

    async def discard(messages: list[ReceivedMessage]) -> None:
        pytest.fail(f"nothing is discarded without a stage that discards: {messages!r}")

    keeper = Keeper(
        visibility_timeout=config.visibility_timeout,
        max_hold=None,
        extend=extend,
        stats=stats,
        clock=time.monotonic,
    )
    polling = Polling(
        config,
        keeper=keeper,
        stats=stats,
        throttled_time=ThrottledTime(stats, time.monotonic),
        fail=lambda error: pytest.fail(f"the polls failed: {error!r}"),
        discard=discard,
        sleep=no_sleep,
        clock=time.monotonic,
    )
    polling.bind(client, URL, config.payload_stage)
    return polling, keeper, stats


async def turns(count: int = 20) -> None:
    """Let the loop run a while, for what must not happen."""
    for _ in range(count):
        await asyncio.sleep(0)


def test_a_message_with_null_fields_reads_as_empty_text_not_none() -> None:
    received = ReceivedMessage.from_response(
        {"ReceiptHandle": "rh", "MessageId": None, "Body": None, "Attributes": None}
    )
    assert (received.message_id, received.body, received.md5_of_body) == ("", "", "")
    assert received.attributes == {} and received.message_attributes == {}


async def test_empty_once_every_poll_open_at_an_empty_answer_came_back_empty() -> None:
    client = OpenPolls()
    polling, _, stats = polling_for(client, concurrent_receives=2)
    polling.want(None, until_empty=True)  # a reader waits for the queue to be found empty
    polling.start()
    await settle(lambda: len(client.calls) == 2)
    assert client.asked == [(10, 20), (10, 20)]  # the full wait: only that finds it empty

    client.answer(0)  # empty, but poll 1 is open on SQS: it may bring what 0 missed
    await turns()
    assert stats.found_empty == 0 and not polling.empty.since_start
    assert len(client.calls) == 2  # poll 0 waits for its turn: short polls go one at a time

    client.answer(1, 1)  # it did: the evidence is void, and messages are coming
    await settle(lambda: len(client.calls) == 4)
    assert client.asked[2:] == [(10, 20), (10, 20)]
    client.answer(2)  # empty while call 3 is open: not yet
    await turns()
    assert stats.found_empty == 0 and not polling.empty.found.is_set()

    client.answer(3)  # every poll open at the empty answer came back empty
    await settle(lambda: len(client.calls) == 5)
    assert stats.found_empty == 1 and stats.empty_receives == 3
    assert polling.empty.found.is_set() and polling.empty.since_start
    # Found empty: one poll at a time, a short one, so that stopping takes about a second.
    await turns()
    assert client.open_calls() == [4] and client.asked[4] == (10, 1)
    client.answer(4)  # nothing came since the full wait: the queue is found empty again
    await settle(lambda: len(client.calls) == 6)
    assert stats.found_empty == 2 and client.asked[5] == (10, 1)

    stopping = asyncio.create_task(polling.stop())
    await turns()
    assert not stopping.done()  # the short poll on SQS finishes; the other is cancelled
    client.answer(5)
    await stopping
    assert client.cancelled == 0 and len(client.calls) == 6
    polling.start()  # polling again: what was found before no longer counts
    assert not polling.empty.since_start
    await settle(lambda: len(client.calls) == 7)
    await turns()
    assert client.open_calls() == [6] and client.asked[6] == (10, 1)  # still quiet: short
    stopping = asyncio.create_task(polling.stop())
    await turns()
    client.answer(6)
    await stopping


async def test_polls_ask_for_no_more_than_the_reader_takes() -> None:
    client = OpenPolls()
    polling, _, stats = polling_for(client, concurrent_receives=3)
    polling.want(25)
    polling.start()
    await settle(lambda: len(client.calls) == 1)
    await turns()
    assert client.asked == [(10, 1)]  # just started: one short poll, nothing says more

    client.answer(0, *range(10))  # messages are coming: full waits, for the 15 left
    await settle(lambda: len(client.calls) == 3)
    await turns()
    assert sorted(client.asked[1:]) == [(5, 20), (10, 20)] and len(client.calls) == 3

    short = 1 if client.asked[1][0] == 10 else 2
    client.answer(short, *range(10, 14))  # 4 of 10: the other 6 are asked for again, and
    await settle(lambda: len(client.calls) == 4)  # the queue may be running dry: short
    assert client.asked[3] == (6, 1)
    assert [polling.take() is not None for _ in range(15)] == [True] * 14 + [False]
    await turns()
    assert len(client.calls) == 4  # taking what came does not make room for more

    client.answer(3 - short, *range(14, 19))
    client.answer(3, *range(19, 25))
    await settle(lambda: stats.received == 25)
    await turns()
    assert len(client.calls) == 4 and client.open_calls() == []
    await asyncio.wait_for(polling.stop(), timeout=5)  # at once: nothing open on SQS
    assert client.cancelled == 0


async def test_stopping_leaves_a_poll_on_the_server_to_finish_and_holds_what_it_brings() -> None:
    client = OpenPolls()
    polling, keeper, _ = polling_for(client, concurrent_receives=1)
    polling.start()
    await settle(lambda: len(client.calls) == 1)

    stopping = asyncio.create_task(polling.stop())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not stopping.done()  # waiting for the poll on the server, not cancelling it
    assert client.cancelled == 0

    client.answer(0, 1, 2)  # what it brings is held, not handed out, not buffered
    await stopping
    assert client.cancelled == 0 and len(client.calls) == 1  # and no new poll opened
    assert not polling.running
    assert [held.message.body for held in keeper.take_not_handed_out()] == ["m1", "m2"]


async def test_stopping_cancels_a_poll_that_waits_for_room_in_the_buffer() -> None:
    client = OpenPolls()
    polling, keeper, _ = polling_for(client, concurrent_receives=1, prefetch=1)
    polling.start()
    await settle(lambda: len(client.calls) == 1)
    client.answer(0, 1, 2)  # m1 fills the buffer; the poll waits with m2
    await settle(lambda: polling.buffer.full())

    await asyncio.wait_for(polling.stop(), timeout=5)  # at once: nothing open on SQS
    assert len(client.calls) == 1 and len(keeper) == 2
    polling.clear_buffer()
    assert [held.message.body for held in keeper.take_not_handed_out()] == ["m1", "m2"]


# The keeper


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def keeper_for(
    clock: Clock,
    answer: Callable[[list[ReceivedMessage]], AckResult] | None = None,
    *,
    max_hold: float | None = None,
) -> tuple[Keeper, list[list[str]], ReceiverStats]:
    extended: list[list[str]] = []
    stats = ReceiverStats()

    async def extend(messages: list[ReceivedMessage]) -> AckResult:
        extended.append([m.body for m in messages])
        return answer(messages) if answer else AckResult(done=list(messages))

    keeper = Keeper(
        visibility_timeout=30, max_hold=max_hold, extend=extend, stats=stats, clock=clock
    )
    return keeper, extended, stats


async def test_the_keeper_extends_what_has_less_than_half_its_timeout_left() -> None:
    clock = Clock()
    keeper, extended, stats = keeper_for(clock)
    keeper.hold([message(1)], received_at=0, visible_until=30)
    clock.now = 10
    keeper.hold([message(2)], received_at=10, visible_until=40)

    clock.now = 16  # m1 has 14 s left, m2 24 s
    await keeper.extend_due()
    assert extended == [["m1"]] and stats.extensions == 1

    clock.now = 26  # m1 was extended to 46 (20 s left); m2 has 14 s left
    await keeper.extend_due()
    assert extended == [["m1"], ["m2"]] and stats.extensions == 2
    clock.now = 27
    await keeper.extend_due()  # nothing due: no call
    assert len(extended) == 2 and len(keeper) == 2


async def test_the_keeper_gives_up_a_message_held_past_max_hold() -> None:
    clock = Clock()
    keeper, extended, _ = keeper_for(clock, max_hold=60)
    keeper.hold([message(1)], received_at=0, visible_until=30)
    keeper.hold([message(2)], received_at=40, visible_until=70)
    clock.now = 60
    await keeper.extend_due()
    assert extended == [["m2"]]  # m1 is neither extended nor held (nor released on close)
    assert [m.body for m in keeper.messages()] == ["m2"]


async def test_the_keeper_drops_what_sqs_says_is_no_longer_ours() -> None:
    def answer(messages: list[ReceivedMessage]) -> AckResult:
        first, second = messages
        return AckResult(
            failed=[
                (first, "ReceiptHandleIsInvalid", "gone"),
                (second, "InternalError", "try again"),
            ]
        )

    clock = Clock()
    keeper, _, stats = keeper_for(clock, answer)
    keeper.hold([message(1), message(2)], received_at=0, visible_until=30)
    clock.now = 20
    await keeper.extend_due()
    assert stats.extension_failures == 2 and stats.extensions == 0
    assert [m.body for m in keeper.messages()] == ["m2"]  # a transient failure: still ours


async def test_the_keeper_stops_when_the_queue_refuses_for_good() -> None:
    refused = SqsClientError("gone", "QueueDoesNotExist")
    clock = Clock()
    keeper, _, _ = keeper_for(clock, lambda messages: AckResult(refused=refused))
    keeper.hold([message(1)], received_at=0, visible_until=30)
    clock.now = 20
    with pytest.raises(SqsClientError):
        await keeper.extend_due()


# Batch calls on receipt handles


class Handles(StubClient):
    """Answers DeleteMessageBatch and ChangeMessageVisibilityBatch, counting calls in flight.
    `gate`, when given, holds every call until set; `fault(handle, attempt)` may fail an
    entry with (code, sender_fault); `error` is raised instead of answering."""

    def __init__(
        self,
        *,
        gate: asyncio.Event | None = None,
        fault: Callable[[str, int], tuple[str, bool] | None] | None = None,
        error: BaseException | None = None,
    ) -> None:
        self.gate = gate
        self.fault = fault
        self.error = error
        self.calls: list[tuple[str, list[dict[str, Any]]]] = []
        self.tries: Counter[str] = Counter()
        self.in_flight = 0
        self.peak = 0

    async def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        return await self._answer("delete", kwargs["Entries"])

    async def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]:
        return await self._answer("visibility", kwargs["Entries"])

    async def _answer(self, operation: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append((operation, entries))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.error is not None:
                raise self.error
            response: dict[str, Any] = {"Successful": [], "Failed": []}
            for entry in entries:
                handle = entry["ReceiptHandle"]
                self.tries[handle] += 1
                fault = self.fault(handle, self.tries[handle]) if self.fault else None
                if fault is None:
                    response["Successful"].append({"Id": entry["Id"]})
                else:
                    code, sender_fault = fault
                    response["Failed"].append(
                        {"Id": entry["Id"], "Code": code, "SenderFault": sender_fault}
                    )
            return response
        finally:
            self.in_flight -= 1

    def handles(self, operation: str) -> list[str]:
        return [
            e["ReceiptHandle"] for op, entries in self.calls if op == operation for e in entries
        ]


def calls_on(client: Handles, max_trials: int = 3) -> ReceiptCalls:
    stats = ReceiverStats()
    calls = ReceiptCalls(
        retry=RetryPolicy(max_trials=max_trials),
        visibility_timeout=30,
        throttled_time=ThrottledTime(stats, time.monotonic),
        sleep=no_sleep,
    )
    calls.bind(client, URL)
    return calls


async def test_acks_go_in_batches_of_ten() -> None:
    client = Handles()
    messages = [message(n) for n in range(25)]
    result = await calls_on(client).delete(messages)
    assert [len(entries) for _, entries in client.calls] == [10, 10, 5]
    assert [e["Id"] for e in client.calls[0][1]] == [str(n) for n in range(10)]
    assert client.handles("delete") == [m.receipt_handle for m in messages]
    assert result.done == messages and not result.failed and result.refused is None


async def test_batch_calls_on_receipt_handles_are_bounded_together() -> None:
    gate = asyncio.Event()
    client = Handles(gate=gate)
    calls = calls_on(client)
    deletes = asyncio.create_task(calls.delete([message(n) for n in range(100)]))
    releases = asyncio.create_task(calls.release([message(n) for n in range(100, 130)]))
    await settle(lambda: len(client.calls) == SPARE_CONNECTIONS)
    for _ in range(20):
        await asyncio.sleep(0)
    assert client.in_flight == SPARE_CONNECTIONS  # ten deletes and three releases wait
    gate.set()
    deleted, released = await deletes, await releases
    assert len(deleted.done) == 100 and len(released.done) == 30
    assert client.peak == SPARE_CONNECTIONS and len(client.calls) == 13
    assert client.handles("visibility") == [f"rh-{n}" for n in range(100, 130)]


async def test_an_entry_that_failed_transiently_is_retried_alone() -> None:
    def fault(handle: str, attempt: int) -> tuple[str, bool] | None:
        return ("InternalError", False) if handle == "rh-3" and attempt == 1 else None

    client = Handles(fault=fault)
    result = await calls_on(client).extend([message(n) for n in range(5)])
    assert sorted(m.body for m in result.done) == [f"m{n}" for n in range(5)]
    assert not result.failed
    assert [[e["ReceiptHandle"] for e in entries] for _, entries in client.calls] == [
        [f"rh-{n}" for n in range(5)],
        ["rh-3"],
    ]
    assert all(e["VisibilityTimeout"] == 30 for _, entries in client.calls for e in entries)


async def test_an_entry_that_keeps_failing_fails_with_its_last_error() -> None:
    client = Handles(fault=lambda handle, attempt: ("InternalError", False))
    result = await calls_on(client, max_trials=2).delete([message(1)])
    assert [(m.body, code) for m, code, _ in result.failed] == [("m1", "InternalError")]
    assert len(client.calls) == 2


async def test_a_whole_call_the_queue_refuses_is_reported_as_refused() -> None:
    error = client_error("AWS.SimpleQueueService.NonExistentQueue", 400, "DeleteMessageBatch")
    client = Handles(error=error)
    result = await calls_on(client).delete([message(n) for n in range(12)])
    assert len(client.calls) == 2  # one per batch: not retried
    assert not result.done and len(result.failed) == 12
    assert {code for _, code, _ in result.failed} == {"AWS.SimpleQueueService.NonExistentQueue"}
    assert isinstance(result.refused, SqsClientError)


# The payload stage's receive hooks


class Scripted(Handles):
    """A queue in a stub: the first ReceiveMessage answers with `messages`, later ones stay
    open (as long polls) until `idle` is set, then answer empty."""

    def __init__(self, numbers: list[int], **settings: Any) -> None:
        super().__init__(**settings)
        self.answers = [[raw(n) for n in numbers]]
        self.idle = asyncio.Event()

    async def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        if self.answers:
            return {"Messages": self.answers.pop(0)}
        await self.idle.wait()
        return {}


class Unwrap(PayloadStage):
    """Hands out upper-cased bodies under a receipt handle of its own (which the engine puts
    back), fails on `m1`, and records the deletes it is told of (failing on `m3`'s)."""

    def __init__(self) -> None:
        self.deleted_bodies: list[str] = []

    async def incoming(self, message: ReceivedMessage) -> ReceivedMessage:
        await asyncio.sleep(0)
        if message.body == "m1":
            raise ValueError("no such payload")
        return replace(message, body=message.body.upper(), receipt_handle="mine")

    async def deleted(self, message: ReceivedMessage) -> None:
        self.deleted_bodies.append(message.body)
        if message.body == "M3":
            raise OSError("could not delete the payload")


async def test_a_message_the_incoming_stage_fails_on_is_not_handed_out_nor_held(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Scripted([0, 1, 2])
    receiver = SqsReceiver(
        queue_url=URL, client=client, payload_stage=Unwrap(), concurrent_receives=1, sleep=no_sleep
    )
    async with receiver:
        await settle(lambda: receiver.stats.stage_failures == 1 and receiver.held == 2)
        got = await receiver.receive(max_messages=10, wait=5)
        client.idle.set()
    assert [(m.body, m.receipt_handle) for m in got] == [("M0", "rh-0"), ("M2", "rh-2")]
    assert receiver.stats.received == 3
    # Closing released the two handed out; m1 was neither extended nor released.
    assert client.handles("visibility") == ["rh-0", "rh-2"]
    [record] = [r for r in caplog.records if "payload stage" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "id-1" in record.getMessage() and "ValueError: no such payload" in record.getMessage()


async def test_the_deleted_stage_runs_once_per_confirmed_delete() -> None:
    def fault(handle: str, attempt: int) -> tuple[str, bool] | None:
        if handle == "rh-2":
            return ("ReceiptHandleIsInvalid", True)  # not deleted: no call of the stage
        if handle == "rh-0" and attempt == 1:
            return ("InternalError", False)  # deleted on the second attempt: one call
        return None

    stage = Unwrap()
    client = Scripted([0, 2, 3, 4], fault=fault)
    async with SqsReceiver(
        queue_url=URL, client=client, payload_stage=stage, concurrent_receives=1, sleep=no_sleep
    ) as receiver:
        await settle(lambda: receiver.held == 4)
        got = await receiver.receive(max_messages=10, wait=5)
        result = await receiver.ack(got)
        client.idle.set()
    assert sorted(stage.deleted_bodies) == ["M0", "M3", "M4"]  # the handed-out messages
    assert sorted(m.body for m in result.done) == ["M0", "M3", "M4"]  # M3's stage failure:
    assert [(m.body, code) for m, code, _ in result.failed] == [("M2", "ReceiptHandleIsInvalid")]
    assert receiver.stats.ack_stage_failures == 1 and receiver.stats.deleted == 3


async def test_stop_polling_and_take_hands_over_what_stop_receiving_releases() -> None:
    client = Scripted([0, 1])
    async with SqsReceiver(queue_url=URL, client=client, concurrent_receives=1) as receiver:
        await settle(lambda: receiver.held == 2)
        client.idle.set()
        taken = await receiver.stop_polling_and_take()
        assert [m.body for m in taken] == ["m0", "m1"] and not client.calls  # none released
        await receiver.release(taken)

        client.answers.append([raw(2)])
        client.idle.clear()
        receiver.start_receiving()
        await settle(lambda: receiver.held == 1)
        client.idle.set()
        await receiver.stop_receiving()
        assert client.handles("visibility") == ["rh-0", "rh-1", "rh-2"]
        assert receiver.held == 0


class Gated(PayloadStage):
    """Hands messages out as they are once `go` is set."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.started = 0

    async def incoming(self, message: ReceivedMessage) -> ReceivedMessage:
        self.started += 1
        await self.go.wait()
        return message


async def test_stopping_lets_the_stage_finish_and_hands_over_what_it_gave() -> None:
    stage = Gated()
    client = Scripted([0, 1])
    async with SqsReceiver(
        queue_url=URL, client=client, payload_stage=stage, concurrent_receives=1
    ) as receiver:
        await settle(lambda: stage.started == 2)
        client.idle.set()
        stopping = asyncio.create_task(receiver.stop_polling_and_take())
        for _ in range(20):
            await asyncio.sleep(0)
        assert not stopping.done()  # the poll in the stage is not cancelled
        stage.go.set()
        assert [m.body for m in await stopping] == ["m0", "m1"]
        assert not client.calls  # nothing released
        await receiver.ack(await stopping)


async def test_messages_a_stuck_stage_never_finished_are_released_not_handed_over() -> None:
    stage = Gated()  # never let go
    client = Scripted([0, 1])
    async with SqsReceiver(
        queue_url=URL,
        client=client,
        payload_stage=stage,
        concurrent_receives=1,
        wait_time_seconds=0,  # stopping waits wait_time_seconds + the request timeout
        connect_timeout=0.01,
        read_timeout=0.01,
    ) as receiver:
        await settle(lambda: stage.started == 2)
        assert await receiver.stop_polling_and_take() == []
        assert client.handles("visibility") == ["rh-0", "rh-1"] and receiver.held == 0
        assert receiver.stats.stage_failures == 0


class Large(Unwrap):
    """A stage whose messages are large: the receiver keeps at most 2 ready, asks for 2."""

    buffer_limit = 2


async def test_a_stage_with_large_messages_bounds_the_buffer_and_each_call() -> None:
    asked = []
    for stage in (Large(), Unwrap()):
        client = OpenPolls()
        polling, _, _ = polling_for(client, payload_stage=stage, prefetch=100)
        polling.start()
        await settle(lambda client=client: len(client.calls) == 1)
        asked.append((polling.buffer.maxsize, client.asked[0][0]))
        stopping = asyncio.ensure_future(polling.stop())
        await turns()
        client.answer(0)  # the poll open on the server ends; no other starts
        await asyncio.wait_for(stopping, timeout=5)
    assert asked == [(2, 2), (100, 10)]  # (messages ready at most, asked for in one call)


async def test_a_bounded_call_that_comes_back_full_keeps_the_next_wait_short() -> None:
    """Answers as large as a large-message stage's bound say nothing of more waiting: the
    next poll waits 1 s, so stopping never waits out a long poll (10 of 10 would)."""
    nexts = []
    for stage, numbers in ((Large(), (2, 3)), (Unwrap(), tuple(n for n in range(11) if n != 1))):
        client = OpenPolls()
        polling, _, _ = polling_for(client, payload_stage=stage, prefetch=100)
        polling.start()
        await settle(lambda client=client: len(client.calls) == 1)
        client.answer(0, *numbers)
        await settle(lambda client=client: len(client.calls) == 2)
        nexts.append(client.asked[1])
        stopping = asyncio.ensure_future(polling.stop())
        await turns()
        client.answer(1)
        await asyncio.wait_for(stopping, timeout=5)
    assert nexts == [(2, 1), (10, 20)]
