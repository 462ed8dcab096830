"""The send flow's parts, each on its own, with stub clients (no server, no Beam): the
accumulator, the dispatcher, the entry builder, the engine's admission (payload stage
included) and the ledgers."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from sqs_async import (
    Delivered,
    Failed,
    PayloadStage,
    SendResult,
    SqsClientError,
    SqsProducer,
    SqsSender,
)
from sqs_async.config import SenderConfig
from sqs_async.errors import (
    INVALID_BODY,
    INVALID_RECORD,
    MESSAGE_TOO_LONG,
    PRECEDING_MESSAGE_FAILED,
    SqsAsyncError,
)
from sqs_async.retry import RetryPolicy
from sqs_async.send._accumulator import Accumulator, FifoAccumulator, Pending
from sqs_async.send._dispatcher import Dispatcher
from sqs_async.send._engine import Engine
from sqs_async.send._entries import EntryBuilder, QueueField
from sqs_async.send._ledger import Ledger, ProducerLedger, SendLedger
from sqs_async.send._validation import OutgoingMessage, Rejection, prepare
from sqs_async.stages import overrides
from sqs_async.wire import QueueTraits

from .faults import StubClient, accept_all, client_error, no_sleep, settle

URL = "https://sqs.test/1/q"
FIFO_URL = "https://sqs.test/1/q.fifo"
TRAITS = QueueTraits(max_message_bytes=1_048_576)
FIFO_TRAITS = QueueTraits(max_message_bytes=1_048_576, fifo=True, content_based_deduplication=True)


class Recorder(Ledger):
    """A ledger that keeps every part and refusal it is given."""

    def __init__(self, *, halts_groups: bool = False, deadline_at: float | None = None) -> None:
        super().__init__(deadline_at)
        self.halts_groups = halts_groups
        self.parts: list[SendResult] = []
        self.refusals: list[tuple[SqsAsyncError, str, list[Pending]]] = []

    def absorb(self, part: SendResult) -> None:
        self.parts.append(part)

    def refuse(self, error: SqsAsyncError, queue_url: str, lost: list[Pending]) -> None:
        self.refusals.append((error, queue_url, lost))

    @property
    def outcomes(self) -> list[Delivered | Failed]:
        return [outcome for part in self.parts for outcome in (*part.delivered, *part.failed)]

    def ended(self) -> Counter[int]:
        return Counter(outcome.index for outcome in self.outcomes)


def pending(
    ledger: Ledger, index: int, body: str | None = None, group: str | None = None
) -> Pending:
    fields: dict[str, Any] = {"MessageBody": body or f"m{index}"}
    if group is not None:
        fields["MessageGroupId"] = group
    message = prepare(fields, index, FIFO_TRAITS if group else TRAITS)
    assert isinstance(message, OutgoingMessage)
    return Pending(message, ledger)


def indexes(batch: list[Pending] | None) -> list[int]:
    assert batch is not None
    return [p.message.index for p in batch]


# The accumulator: packing, hold and let go, requeue, remove.


def test_a_held_accumulator_sends_only_full_batches_until_let_go() -> None:
    ready = []
    accumulator = Accumulator(
        URL, TRAITS, max_request_bytes=1_048_576, ready=lambda: ready.append(1)
    )
    ledger = Recorder()
    accumulator.hold()
    for index in range(25):
        accumulator.add(pending(ledger, index))
    assert len(ready) == 2  # once per full batch
    assert indexes(accumulator.take()) == list(range(10))
    assert indexes(accumulator.take()) == list(range(10, 20))
    assert accumulator.take() is None  # the partly filled batch waits for its feeder
    accumulator.let_go()
    assert len(ready) == 3
    assert indexes(accumulator.take()) == list(range(20, 25))
    assert accumulator.take() is None


def test_an_accumulator_nobody_holds_lets_each_message_go() -> None:
    ready = []
    accumulator = Accumulator(
        URL, TRAITS, max_request_bytes=1_048_576, ready=lambda: ready.append(1)
    )
    accumulator.add(pending(Recorder(), 0))
    assert ready == [1]
    assert indexes(accumulator.take()) == [0]


def test_batches_are_packed_by_bytes_too() -> None:
    accumulator = Accumulator(URL, TRAITS, max_request_bytes=100, ready=lambda: None)
    accumulator.hold()
    ledger = Recorder()
    for index in range(5):
        accumulator.add(pending(ledger, index, body=f"{index}" * 40))  # 40 bytes each
    assert indexes(accumulator.take()) == [0, 1]
    assert indexes(accumulator.take()) == [2, 3]
    assert accumulator.take() is None
    accumulator.let_go()
    assert indexes(accumulator.take()) == [4]


def test_requeued_messages_leave_with_fresh_ones_without_a_signal_of_their_own() -> None:
    ready = []
    accumulator = Accumulator(
        URL, TRAITS, max_request_bytes=1_048_576, ready=lambda: ready.append(1)
    )
    ledger = Recorder()
    retried = [pending(ledger, index) for index in range(3)]
    accumulator.hold()
    accumulator.requeue(retried)
    assert ready == []  # the dispatcher pumps after a backoff itself
    for index in range(3, 10):
        accumulator.add(pending(ledger, index))
    assert ready == [1]
    assert indexes(accumulator.take()) == list(range(10))


def test_remove_takes_a_ledgers_messages_out_of_full_and_partial_batches() -> None:
    accumulator = Accumulator(URL, TRAITS, max_request_bytes=1_048_576, ready=lambda: None)
    mine, theirs = Recorder(), Recorder()
    accumulator.hold()
    for index in range(15):
        accumulator.add(pending(mine if index % 2 else theirs, index))
    gone = accumulator.remove(mine.owns)
    assert sorted(indexes(gone)) == [1, 3, 5, 7, 9, 11, 13]
    accumulator.let_go()
    assert indexes(accumulator.take()) == [0, 2, 4, 6, 8]
    assert indexes(accumulator.take()) == [10, 12, 14]


def test_a_fifo_accumulator_sends_one_message_per_group_and_moves_on_when_settled() -> None:
    ready = []
    accumulator = FifoAccumulator(
        FIFO_URL,
        FIFO_TRAITS,
        max_request_bytes=1_048_576,
        ready=lambda: ready.append(1),
        per_group=1,
    )
    ledger = Recorder()
    messages = [pending(ledger, index, group=group) for index, group in enumerate("aabab")]
    accumulator.hold()
    for message in messages:
        accumulator.add(message)
    assert ready == [] and accumulator.take() is None  # two groups: no full batch
    accumulator.let_go()
    first = accumulator.take()
    assert indexes(first) == [0, 2]
    assert accumulator.take() is None  # both groups have a message on its way
    assert first is not None
    assert accumulator.settle(first, set(first), []) == ([], 0)
    assert sorted(indexes(accumulator.take())) == [1, 4]  # each group's next


def test_a_fifo_failure_halts_its_group_and_a_retry_keeps_its_place() -> None:
    accumulator = FifoAccumulator(
        FIFO_URL, FIFO_TRAITS, max_request_bytes=1_048_576, ready=lambda: None, per_group=1
    )
    ledger = Recorder(halts_groups=True)
    messages = [pending(ledger, index, group=group) for index, group in enumerate("aabb")]
    for message in messages:
        accumulator.add(message)
    request = accumulator.take()
    assert indexes(request) == [0, 2]
    assert request is not None
    messages[0].code = "InvalidParameterValue"
    halted, _ = accumulator.settle(request, set(), [messages[0]])  # 2 is to be retried
    assert [(p.message.index, f.code) for p, f in halted] == [(1, PRECEDING_MESSAGE_FAILED)]
    assert ledger.halted == {(FIFO_URL, "a"): "message #0 failed (InvalidParameterValue)"}
    accumulator.requeue([messages[2]])
    assert indexes(accumulator.take()) == [2]  # back at the head of group b, before 3


def test_a_fifo_accumulator_gives_up_a_ledgers_waiting_messages() -> None:
    accumulator = FifoAccumulator(
        FIFO_URL, FIFO_TRAITS, max_request_bytes=1_048_576, ready=lambda: None, per_group=1
    )
    mine, theirs = Recorder(), Recorder()
    accumulator.hold()
    for index, group in enumerate("abcabc"):
        accumulator.add(pending(mine if group == "b" else theirs, index, group=group))
    assert indexes(accumulator.remove(mine.owns)) == [1, 4]
    accumulator.let_go()
    assert indexes(accumulator.take()) == [0, 2]


# The dispatcher: bounded concurrency, retries of only what failed, refusal.


class GatedClient(StubClient):
    """Accepts every entry once the gate opens; counts calls in flight; `answer` may fail
    what it likes."""

    def __init__(self, answer: Callable[[list[dict[str, Any]]], dict[str, Any]] = accept_all):
        self.gate = asyncio.Event()
        self.gate.set()
        self.answer = answer
        self.in_flight = 0
        self.peak = 0
        self.calls: list[list[str]] = []

    async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        entries = kwargs["Entries"]
        self.calls.append([entry["MessageBody"] for entry in entries])
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self.gate.wait()
        finally:
            self.in_flight -= 1
        return self.answer(entries)


def dispatcher_for(client: Any, *, max_in_flight: int = 4, max_trials: int = 3) -> Dispatcher:
    return Dispatcher(
        client=client,
        policy=RetryPolicy(max_trials=max_trials),
        max_in_flight=max_in_flight,
        max_request_bytes=1_048_576,
        request_timeout=30,
        sleep=no_sleep,
    )


async def test_the_dispatcher_keeps_at_most_max_in_flight_requests_and_reaches_it() -> None:
    client = GatedClient()
    client.gate.clear()
    dispatcher = dispatcher_for(client, max_in_flight=3)
    accumulator = dispatcher.accumulator(URL, TRAITS)
    ledger = Recorder()
    accumulator.hold()
    for index in range(100):
        accumulator.add(pending(ledger, index))
    accumulator.let_go()
    await settle(lambda: client.in_flight == 3)
    assert len(client.calls) == 3  # the other batches wait for a slot
    client.gate.set()
    await settle(lambda: len(ledger.ended()) == 100)
    assert client.peak == 3 and len(client.calls) == 10
    assert set(ledger.ended().values()) == {1}
    assert all(isinstance(o, Delivered) for o in ledger.outcomes)
    await dispatcher.close()


def fails_once(body: str, code: str, *, sender_fault: bool = False) -> Any:
    seen: set[str] = set()

    def answer(entries: list[dict[str, Any]]) -> dict[str, Any]:
        failing = [e for e in entries if e["MessageBody"] == body and body not in seen]
        seen.update(e["MessageBody"] for e in failing)
        response = accept_all([e for e in entries if e not in failing])
        response["Failed"] = [
            {"Id": e["Id"], "SenderFault": sender_fault, "Code": code, "Message": "no"}
            for e in failing
        ]
        return response

    return answer


async def test_a_partial_failure_is_retried_and_only_what_failed_is_sent_again() -> None:
    client = GatedClient(fails_once("m3", "InternalError"))
    dispatcher = dispatcher_for(client)
    accumulator = dispatcher.accumulator(URL, TRAITS)
    ledger = Recorder()
    accumulator.hold()
    for index in range(10):
        accumulator.add(pending(ledger, index))
    accumulator.let_go()
    await settle(lambda: len(ledger.ended()) == 10)
    assert client.calls == [[f"m{i}" for i in range(10)], ["m3"]]
    retried = [o for o in ledger.outcomes if o.index == 3]
    assert isinstance(retried[0], Delivered) and retried[0].attempts == 2
    assert sum(part.retried for part in ledger.parts) == 1
    assert sum(part.requests for part in ledger.parts) == 2
    await dispatcher.close()


async def test_a_sender_fault_fails_once_without_a_retry() -> None:
    client = GatedClient(fails_once("m1", "InvalidParameterValue", sender_fault=True))
    dispatcher = dispatcher_for(client)
    accumulator = dispatcher.accumulator(URL, TRAITS)
    ledger = Recorder()
    for index in range(2):
        accumulator.add(pending(ledger, index))
    await settle(lambda: len(ledger.ended()) == 2)
    failed = [o for o in ledger.outcomes if isinstance(o, Failed)]
    assert [(f.index, f.code, f.sender_fault, f.attempts) for f in failed] == [
        (1, "InvalidParameterValue", True, 1)
    ]
    assert len(client.calls) == 2  # one request per message (nobody held the accumulator)
    await dispatcher.close()


async def test_a_fatal_error_goes_to_the_ledgers_refusal_with_every_lost_message() -> None:
    class Refusing(GatedClient):
        async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            await super().send_message_batch(**kwargs)
            raise client_error("AccessDenied", 403)

    client = Refusing()
    client.gate.clear()
    dispatcher = dispatcher_for(client, max_in_flight=1)
    accumulator = dispatcher.accumulator(URL, TRAITS)
    ledger = Recorder()
    accumulator.hold()
    for index in range(15):
        accumulator.add(pending(ledger, index))
    await settle(lambda: client.in_flight == 1)
    client.gate.set()
    await settle(lambda: bool(ledger.refusals))
    [(error, queue_url, lost)] = ledger.refusals
    assert isinstance(error, SqsClientError) and error.code == "AccessDenied"
    assert queue_url == URL
    assert sorted(p.message.index for p in lost) == list(range(15))  # sent and waiting
    assert ledger.outcomes == []  # no outcome: the ledger decides (see Ledger.refuse)
    assert len(client.calls) == 1
    await dispatcher.close()


# The entry builder: record functions.


def test_a_serializer_makes_the_body_and_the_record_stays_the_callers() -> None:
    builder = EntryBuilder(serializer=json.dumps)
    assert builder.build({"a": 1}, fifo=False) == '{"a": 1}'


def test_group_ids_fill_only_what_the_entry_lacks() -> None:
    builder = EntryBuilder(message_group_id=lambda record: f"g-{record['k']}")
    assert builder.build({"MessageBody": "x", "k": 1}, fifo=False)["MessageGroupId"] == "g-1"
    given = {"MessageBody": "x", "k": 1, "MessageGroupId": "mine"}
    assert builder.build(given, fifo=True)["MessageGroupId"] == "mine"
    assert EntryBuilder(message_group_id="all").build("body", fifo=True) == {
        "MessageBody": "body",
        "MessageGroupId": "all",
    }


def test_deduplication_ids_are_for_fifo_queues_only() -> None:
    builder = EntryBuilder(message_deduplication_id=lambda record: "d")
    assert builder.build("body", fifo=False) == "body"
    assert builder.build("body", fifo=True) == {
        "MessageBody": "body",
        "MessageDeduplicationId": "d",
    }


def test_a_failing_record_function_rejects_that_record() -> None:
    def explode(record: Any) -> str:
        raise KeyError("no such field")

    rejection = EntryBuilder(serializer=explode).build({"a": 1}, fifo=False)
    assert isinstance(rejection, Rejection) and rejection.code == INVALID_RECORD
    assert rejection.reason.startswith("serializer failed on this record: KeyError")


def test_a_queue_field_is_not_sent() -> None:
    builder = EntryBuilder(queue_field=QueueField("to").name)
    assert builder.build({"MessageBody": "x", "to": "q"}, fifo=False) == {"MessageBody": "x"}


# The engine's admission: validation, the payload stage, FIFO halts.


class Pointer(PayloadStage):
    """Replaces a body with a short pointer, as large-payload offload does; records what it
    was given."""

    def __init__(self) -> None:
        self.given: list[tuple[dict[str, Any], QueueTraits]] = []

    async def outgoing(self, entry: dict[str, Any], queue: QueueTraits) -> dict[str, Any]:
        self.given.append((entry, queue))
        return {**entry, "MessageBody": f"pointer-{len(entry['MessageBody'])}"}


class CodedError(Exception):
    code = "PayloadStoreDown"
    retryable = True


class Failing(PayloadStage):
    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def outgoing(self, entry: dict[str, Any], queue: QueueTraits) -> dict[str, Any]:
        raise self.error


async def open_engine(**settings: Any) -> Engine:
    class Client(StubClient):
        async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            return accept_all(kwargs["Entries"])

    engine = Engine(
        SenderConfig(queue_url=URL, **settings),
        client=Client(),
        client_wrapper=None,
        sleep=no_sleep,
    )
    await engine.open()
    return engine


async def test_admission_rejects_an_invalid_record_with_its_record_and_index() -> None:
    engine = await open_engine()
    accumulator = engine.dispatcher.accumulator(URL, TRAITS)
    record = {"MessageBody": ""}
    failed = engine.admit(record, 7, Recorder(), accumulator)
    assert isinstance(failed, Failed)
    assert (failed.record, failed.index, failed.code, failed.attempts) == (
        record,
        7,
        INVALID_BODY,
        0,
    )
    assert failed.sender_fault
    admitted = engine.admit("fine", 8, Recorder(), accumulator)
    assert isinstance(admitted, Pending) and admitted.fields == {"MessageBody": "fine"}
    await engine.close()


async def test_without_an_outgoing_override_there_is_no_stage() -> None:
    class Incoming(PayloadStage):
        async def incoming(self, message: Any) -> Any:
            return message

    engine = await open_engine(payload_stage=Incoming())
    assert engine.stage is None and not overrides(Incoming(), "outgoing")
    await engine.close()


async def test_the_stage_runs_after_the_record_functions_and_before_validation() -> None:
    stage = Pointer()
    async with SqsSender(
        queue_url=URL,
        client=GatedClient(),
        max_message_bytes=1024,
        serializer=lambda record: json.dumps(record),
        payload_stage=stage,
    ) as sender:
        big = {"text": "x" * 5000}
        result = await sender.send([big, {"text": "small"}])
    assert [d.record for d in result.delivered] == [big, {"text": "small"}]  # the caller's
    assert [entry for entry, _ in stage.given] == [
        {"MessageBody": json.dumps(big)},
        {"MessageBody": '{"text": "small"}'},
    ]
    assert stage.given[0][1].max_message_bytes == 1024
    pointers = [f"pointer-{len(json.dumps(record))}" for record in (big, {"text": "small"})]
    assert result.bytes_delivered == sum(len(pointer) for pointer in pointers)
    async with SqsSender(queue_url=URL, client=GatedClient(), max_message_bytes=1024) as plain:
        too_big = await plain.send([{"MessageBody": "x" * 5000}])
    assert [f.code for f in too_big.failed] == [MESSAGE_TOO_LONG]


@pytest.mark.parametrize(
    ("error", "code", "sender_fault"),
    [
        (CodedError("the store is down"), "PayloadStoreDown", False),
        (ValueError("bad payload"), "ValueError", True),
    ],
)
async def test_a_stage_failure_fails_that_record_alone(
    error: Exception, code: str, sender_fault: bool
) -> None:
    class FailsOne(PayloadStage):
        async def outgoing(self, entry: dict[str, Any], queue: QueueTraits) -> dict[str, Any]:
            if entry["MessageBody"] == "bad":
                raise error
            return entry

    async with SqsSender(queue_url=URL, client=GatedClient(), payload_stage=FailsOne()) as sender:
        result = await sender.send(["a", "bad", "c"])
    assert [d.record for d in result.delivered] == ["a", "c"]
    [failed] = result.failed
    assert (failed.record, failed.index, failed.code, failed.message) == (
        "bad",
        1,
        code,
        str(error),
    )
    assert (failed.sender_fault, failed.attempts) == (sender_fault, 0)


class Gated(PayloadStage):
    """Each call waits for its body's gate; counts calls in flight."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.in_flight = 0
        self.peak = 0

    def gate(self, body: str) -> asyncio.Event:
        return self.gates.setdefault(body, asyncio.Event())

    async def outgoing(self, entry: dict[str, Any], queue: QueueTraits) -> dict[str, Any]:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await self.gate(entry["MessageBody"]).wait()
        finally:
            self.in_flight -= 1
        return entry


async def test_stage_calls_run_concurrently_bounded_and_records_keep_their_order() -> None:
    stage = Gated()
    client = GatedClient()
    bodies = [f"m{i}" for i in range(12)]
    async with SqsSender(
        queue_url=FIFO_URL,
        client=client,
        max_in_flight=4,
        message_group_id="one-group",
        message_deduplication_id=lambda record: record,
        payload_stage=stage,
    ) as sender:
        sending = asyncio.create_task(sender.send(bodies))
        await settle(lambda: stage.in_flight == 4)
        for body in reversed(bodies):  # calls end in the reverse order
            stage.gate(body).set()
            await asyncio.sleep(0)
        result = await sending
    assert stage.peak == 4
    assert [d.record for d in result.delivered] == bodies
    assert [body for call in client.calls for body in call] == bodies  # one group, in order


async def test_a_send_deadline_fails_what_is_still_in_the_stage() -> None:
    stage = Gated()  # no gate ever opens
    async with SqsSender(queue_url=URL, client=GatedClient(), payload_stage=stage) as sender:
        result = await sender.send(["a", "b"], deadline=0.05)
    assert sorted((f.index, f.code) for f in result.failed) == [
        (0, "DeadlineExceeded"),
        (1, "DeadlineExceeded"),
    ]


async def test_a_fifo_group_halts_after_a_rejected_record_in_a_send() -> None:
    engine = await open_engine()
    accumulator = engine.dispatcher.accumulator(FIFO_URL, FIFO_TRAITS)
    ledger = SendLedger(SendResult(), True, None, dynamic=False, clock=lambda: 0.0)
    bad = engine.admit({"MessageBody": "", "MessageGroupId": "g"}, 0, ledger, accumulator)
    assert isinstance(bad, Failed) and bad.code == INVALID_BODY
    later = engine.admit({"MessageBody": "ok", "MessageGroupId": "g"}, 1, ledger, accumulator)
    assert isinstance(later, Failed) and later.code == PRECEDING_MESSAGE_FAILED
    other = engine.admit({"MessageBody": "ok", "MessageGroupId": "h"}, 2, ledger, accumulator)
    assert isinstance(other, Pending)
    await engine.close()


async def test_the_producer_stages_in_put_order_and_flush_waits_for_the_stage() -> None:
    stage = Gated()
    client = GatedClient()
    async with SqsProducer(
        queue_url=URL, client=client, linger=60, max_in_flight=2, payload_stage=stage
    ) as producer:
        futures = [producer.put_nowait(f"m{i}") for i in range(5)]  # synchronous, as ever
        assert producer.pending == 5
        await settle(lambda: stage.in_flight == 2)
        flushing = asyncio.create_task(producer.flush())
        for i in reversed(range(5)):
            stage.gate(f"m{i}").set()
            await asyncio.sleep(0)
        await flushing  # not the 60 s linger: a flush lets go of what the stage hands on
        assert all(f.done() for f in futures)
    assert [f.result().record for f in futures] == [f"m{i}" for i in range(5)]
    assert [body for call in client.calls for body in call] == [f"m{i}" for i in range(5)]
    assert stage.peak == 2


async def test_the_producer_close_waits_for_the_stage_and_a_stage_failure_is_the_outcome() -> None:
    stage = Gated()
    client = GatedClient()
    producer = SqsProducer(queue_url=URL, client=client, linger=60, payload_stage=stage)
    await producer.open()
    kept = producer.put_nowait("kept")
    closing = asyncio.create_task(producer.close())
    await asyncio.sleep(0)
    assert not closing.done()
    stage.gate("kept").set()
    await closing
    assert isinstance(kept.result(), Delivered)

    failing = SqsProducer(queue_url=URL, client=client, payload_stage=Failing(CodedError("x")))
    async with failing:
        outcome = await failing.send("m")
    assert isinstance(outcome, Failed) and outcome.code == "PayloadStoreDown"
    assert not outcome.sender_fault and outcome.attempts == 0


async def test_close_gives_up_on_what_the_stage_never_returns() -> None:
    producer = SqsProducer(
        queue_url=URL, client=GatedClient(), close_timeout=0, payload_stage=Gated()
    )
    await producer.open()
    future = producer.put_nowait("stuck")
    await producer.close()
    outcome = future.result()
    assert isinstance(outcome, Failed) and outcome.code == "ClosedBeforeConfirmation"
    assert producer.pending == 0


# The ledgers: every message ends once; the producer's counters.


async def test_every_message_of_a_send_ends_exactly_once_whatever_fails() -> None:
    def answer(entries: list[dict[str, Any]]) -> dict[str, Any]:
        response = accept_all([e for e in entries if int(e["MessageBody"][1:]) % 5])
        response["Failed"] = [
            {"Id": e["Id"], "SenderFault": int(e["MessageBody"][1:]) % 10 == 0, "Code": "X"}
            for e in entries
            if not int(e["MessageBody"][1:]) % 5
        ]
        return response

    records: list[Any] = [f"m{i}" for i in range(200)]
    records[7] = {"MessageBody": ""}  # rejected before any request
    async with SqsSender(
        queue_url=URL, client=GatedClient(answer), sleep=no_sleep, max_in_flight=3
    ) as sender:
        result = await sender.send(records)
    ends = Counter(o.index for o in (*result.delivered, *result.failed))
    assert ends == Counter(range(200))
    assert {f.index for f in result.failed} == {i for i in range(0, 200, 5)} | {7}
    gave_up = [f for f in result.failed if f.index % 10 == 5]
    assert all(f.attempts == 3 and not f.sender_fault for f in gave_up)


async def test_a_send_ledger_counts_what_is_unresolved() -> None:
    ledger = SendLedger(SendResult(), False, None, dynamic=False, clock=lambda: 0.0)
    ledger.unresolved = 3
    ledger.fail(Failed(record="a", index=0, code="C", message="", sender_fault=True, attempts=0))
    ledger.absorb(SendResult(delivered_count=2, requests=1))
    assert ledger.unresolved == 0
    assert ledger.result.delivered_count == 2 and len(ledger.result.failed) == 1
    assert ledger.result.requests == 1


async def test_the_producer_ledger_resolves_each_future_once_and_keeps_counters() -> None:
    ledger = ProducerLedger(max_buffered=2)
    futures = []
    for number in range(2):
        ledger.room.put_nowait(None)
        futures.append(ledger.expect(number, f"m{number}"))
    delivered = Delivered(record="m0", index=0, message_id="id", attempts=1)
    failed = Failed(record="m1", index=1, code="C", message="", sender_fault=False, attempts=3)
    ledger.absorb(
        SendResult(
            delivered=[delivered],
            failed=[failed],
            delivered_count=1,
            requests=2,
            retried=1,
            latencies=[0.5],
        )
    )
    ledger.absorb(SendResult(failed=[failed]))  # a second end of message 1: ignored
    assert [f.result() for f in futures] == [delivered, failed]
    assert ledger.room.qsize() == 0 and ledger.waiting == {}
    counters = ledger.counters
    assert (counters.delivered_count, counters.requests, counters.retried) == (1, 2, 1)
    # No list that grows with requests: a producer lives long (its latencies are not kept).
    assert counters.latencies == [] and counters.delivered == [] and counters.failed == []


async def test_the_producer_stats_sum_up_its_requests() -> None:
    client = GatedClient(fails_once("m2", "InternalError"))
    async with SqsProducer(queue_url=URL, client=client, linger=60, sleep=no_sleep) as producer:
        futures = [producer.put_nowait(f"m{i}") for i in range(10)]
        await producer.flush()
        stats = producer.stats
    assert all(isinstance(f.result(), Delivered) for f in futures)
    assert (stats.delivered_count, stats.requests, stats.retried) == (10, 2, 1)
    assert stats.latencies == [] and stats.delivered == [] and stats.failed == []
    assert stats.bytes_delivered == sum(len(f"m{i}") for i in range(10))
    assert producer.stats.requests == 2  # after close too


async def test_a_refused_queue_fails_every_producer_future_and_later_puts() -> None:
    class Refusing(GatedClient):
        async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            raise client_error("AccessDenied", 403)

    async with SqsProducer(queue_url=URL, client=Refusing(), linger=0) as producer:
        futures = [producer.put_nowait(f"m{i}") for i in range(3)]
        await asyncio.wait(futures)
        assert all(isinstance(f.exception(), SqsClientError) for f in futures)
        assert producer.pending == 0
        with pytest.raises(SqsClientError):
            producer.put_nowait("later")
