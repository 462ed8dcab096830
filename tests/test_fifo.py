"""FIFO queues: each group arrives in input order, also under retries; a failure halts its
group; deduplication; the request-rate cap."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import defaultdict
from typing import Any

from sqs_async import SqsProducer, SqsSender, stable_hash
from sqs_async.errors import INVALID_FIFO_FIELDS, PRECEDING_MESSAGE_FAILED
from sqs_async.send._fifo import FifoScheduler
from sqs_async.send._validation import OutgoingMessage

from .conftest import RecordingSleep, drain, make_queue
from .faults import FaultyClient, StubClient, accept_all

CONTENT_BASED = {"FifoQueue": "true", "ContentBasedDeduplication": "true"}


def interleaved(groups: int, per_group: int, seed: int = 3) -> list[dict[str, str]]:
    """Messages of several groups, interleaved at random; each group in its own order."""
    rng = random.Random(seed)
    order = [g for g in range(groups) for _ in range(per_group)]
    rng.shuffle(order)
    counters = [0] * groups
    messages = []
    for g in order:
        messages.append({"MessageBody": f"g{g}-{counters[g]:03d}", "MessageGroupId": f"g{g}"})
        counters[g] += 1
    return messages


def per_group(bodies: list[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for body in bodies:
        groups[body.split("-")[0]].append(body)
    return dict(groups)


def queue_order(sync_client: Any, queue_url: str) -> dict[str, list[str]]:
    """The bodies of each group in the order the queue delivers them."""
    return per_group([m["Body"] for m in drain(sync_client, queue_url)])


def flaky_entries(messages: list[dict[str, str]], share: float, seed: int = 11) -> Any:
    """An entry fault: a random `share` of the bodies fail (retryable) on their first two tries."""
    rng = random.Random(seed)
    failing = {m["MessageBody"] for m in messages if rng.random() < share}

    def fault(body: str, attempt: int) -> tuple[str, bool] | None:
        return ("InternalError", False) if body in failing and attempt <= 2 else None

    return fault


async def test_order_per_group_survives_transient_entry_failures(
    settings: dict[str, Any], sync_client: Any, real_client: Any
) -> None:
    queue_url = make_queue(sync_client, **CONTENT_BASED)
    messages = interleaved(groups=25, per_group=16)
    faulty = FaultyClient(real_client, entry_fault=flaky_entries(messages, 0.3), delay=0.002)
    async with SqsSender(
        queue_url=queue_url, client=faulty, max_trials=5, max_in_flight=8, sleep=RecordingSleep()
    ) as sender:
        result = await sender.send(messages)

    assert result.failed == []
    assert result.retried > 50  # the faults happened
    assert queue_order(sync_client, queue_url) == per_group([m["MessageBody"] for m in messages])
    for call in faulty.calls:  # never two messages of one group in a request
        assert len({body.split("-")[0] for body in call}) == len(call)
    assert faulty.peak_in_flight > 1  # groups went in parallel


async def test_the_same_faults_reorder_plain_batching(
    settings: dict[str, Any], sync_client: Any, real_client: Any
) -> None:
    """The fault pattern above is able to break order: on a standard queue (batches of ten
    in input order, retries of only what failed) it does."""
    queue_url = make_queue(sync_client)
    messages = interleaved(groups=8, per_group=40)
    faulty = FaultyClient(real_client, entry_fault=flaky_entries(messages, 0.3))
    async with SqsSender(
        queue_url=queue_url, client=faulty, max_trials=5, max_in_flight=8, sleep=RecordingSleep()
    ) as sender:
        result = await sender.send(messages)

    assert result.failed == []
    assert result.reordered == 0  # a standard queue promises no order: nothing to report
    assert queue_order(sync_client, queue_url) != per_group([m["MessageBody"] for m in messages])


async def test_a_failure_halts_the_rest_of_its_group_only(
    settings: dict[str, Any], sync_client: Any, real_client: Any
) -> None:
    queue_url = make_queue(sync_client, **CONTENT_BASED)
    messages = interleaved(groups=4, per_group=10)
    bad_body = next(i for i, m in enumerate(messages) if m["MessageBody"] == "g2-003")
    messages[bad_body] = {"MessageBody": "", "MessageGroupId": "g2"}  # refused by validation

    def fault(body: str, attempt: int) -> tuple[str, bool] | None:
        return ("InternalError", False) if body == "g1-005" else None  # fails every attempt

    faulty = FaultyClient(real_client, entry_fault=fault)
    async with SqsSender(
        queue_url=queue_url, client=faulty, max_trials=3, sleep=RecordingSleep()
    ) as sender:
        result = await sender.send(messages)

    failed = {f.index: f for f in result.failed}
    codes = {messages[i]["MessageBody"] or "<empty>": f.code for i, f in failed.items()}
    assert codes == {
        "g1-005": "InternalError",
        **{f"g1-{i:03d}": PRECEDING_MESSAGE_FAILED for i in range(6, 10)},
        "<empty>": "InvalidMessageBody",
        **{f"g2-{i:03d}": PRECEDING_MESSAGE_FAILED for i in range(4, 10)},
    }
    assert "g1" in failed[messages.index({"MessageBody": "g1-009", "MessageGroupId": "g1"})].message
    assert result.delivered_count == 40 - len(failed)
    assert queue_order(sync_client, queue_url) == {
        "g0": [f"g0-{i:03d}" for i in range(10)],
        "g1": [f"g1-{i:03d}" for i in range(5)],
        "g2": [f"g2-{i:03d}" for i in range(3)],
        "g3": [f"g3-{i:03d}" for i in range(10)],
    }


async def test_content_based_and_explicit_deduplication(
    settings: dict[str, Any], sync_client: Any
) -> None:
    content_based = make_queue(sync_client, **CONTENT_BASED)
    explicit = make_queue(sync_client, FifoQueue="true")
    async with SqsSender(queue_url=content_based, **settings) as sender:
        first = await sender.send([{"MessageBody": b, "MessageGroupId": "g"} for b in "aab"])
    async with SqsSender(queue_url=explicit, **settings) as sender:
        second = await sender.send(
            [
                {"MessageBody": "x", "MessageGroupId": "g", "MessageDeduplicationId": "1"},
                {"MessageBody": "y", "MessageGroupId": "g", "MessageDeduplicationId": "1"},
                {"MessageBody": "z", "MessageGroupId": "g", "MessageDeduplicationId": "2"},
            ]
        )

    # SQS accepts a duplicate (it reports success) and does not deliver it.
    assert first.delivered_count == second.delivered_count == 3
    assert [m["Body"] for m in drain(sync_client, content_based)] == ["a", "b"]
    assert [m["Body"] for m in drain(sync_client, explicit)] == ["x", "z"]


async def test_helpers_make_a_resent_bundle_a_duplicate(
    settings: dict[str, Any], sync_client: Any
) -> None:
    """Records that are not entries: serialized, grouped by a field, deduplicated by a hash
    of the record, so sending them again (a runner retrying a bundle) stores nothing new."""
    queue_url = make_queue(sync_client, FifoQueue="true")
    records = [{"user": f"u{i % 3}", "n": i, "blob": bytes([i])} for i in range(12)]
    options = dict(
        queue_url=queue_url,
        serializer=lambda r: json.dumps({"user": r["user"], "n": r["n"]}),
        message_group_id=lambda r: r["user"],
        message_deduplication_id=stable_hash,
        **settings,
    )
    async with SqsSender(**options) as sender:
        results = [await sender.send(records), await sender.send(records)]

    assert [r.delivered_count for r in results] == [12, 12]
    assert all(d.record is records[d.index] for d in results[0].delivered)
    received = drain(sync_client, queue_url)
    assert sorted(json.loads(m["Body"])["n"] for m in received) == list(range(12))
    for user in ("u0", "u1", "u2"):
        ns = [json.loads(m["Body"])["n"] for m in received if json.loads(m["Body"])["user"] == user]
        assert ns == sorted(ns)
    groups = {m["Attributes"]["MessageGroupId"] for m in received}
    assert groups == {"u0", "u1", "u2"}


async def test_missing_fifo_fields_fail_before_any_request(
    settings: dict[str, Any], sync_client: Any, real_client: Any
) -> None:
    queue_url = make_queue(sync_client, FifoQueue="true")
    faulty = FaultyClient(real_client)
    async with SqsSender(queue_url=queue_url, client=faulty) as sender:
        result = await sender.send(
            [{"MessageBody": "no group"}, {"MessageBody": "no dedup id", "MessageGroupId": "g"}]
        )
    assert [f.code for f in result.failed] == [INVALID_FIFO_FIELDS] * 2
    assert "MessageDeduplicationId" in result.failed[1].message
    assert faulty.calls == []


async def test_high_throughput_mode_is_read_from_the_queue(
    settings: dict[str, Any], sync_client: Any
) -> None:
    plain = make_queue(sync_client, **CONTENT_BASED)
    high = make_queue(
        sync_client,
        **CONTENT_BASED,
        FifoThroughputLimit="perMessageGroupId",
        DeduplicationScope="messageGroup",
    )
    found = []
    for queue_url in (plain, high):
        async with SqsSender(queue_url=queue_url, **settings) as sender:
            found.append((sender.traits.fifo, sender.traits.high_throughput))
    assert found == [(True, False), (True, True)]


class FifoStub(StubClient):
    def __init__(self, high_throughput: bool = False) -> None:
        self.limit = "perMessageGroupId" if high_throughput else "perQueue"
        self.requests = 0

    async def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]:
        return {"Attributes": {"FifoQueue": "true", "FifoThroughputLimit": self.limit}}

    async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.requests += 1
        return accept_all(kwargs["Entries"])


async def test_requests_to_a_fifo_queue_are_paced_below_its_quota() -> None:
    """At 20 requests/s, 30 requests cannot take less than half a second (the first 20 go
    at once): a lower bound, which load cannot break."""
    messages = [{"MessageBody": f"m{i}", "MessageGroupId": f"g{i}"} for i in range(300)]
    client = FifoStub()
    async with SqsSender(
        queue_url="https://sqs.test/1/q.fifo",
        client=client,
        fifo_requests_per_second=20,
        message_deduplication_id=stable_hash,
    ) as sender:
        started = time.monotonic()
        result = await sender.send(messages)
        elapsed = time.monotonic() - started
    assert result.delivered_count == 300
    assert client.requests == 30
    assert elapsed >= 0.45


async def test_producer_keeps_group_order_under_faults(
    settings: dict[str, Any], sync_client: Any, real_client: Any
) -> None:
    queue_url = make_queue(sync_client, **CONTENT_BASED)
    messages = interleaved(groups=5, per_group=30, seed=8)
    faulty = FaultyClient(real_client, entry_fault=flaky_entries(messages, 0.3, seed=4))
    async with SqsProducer(
        queue_url=queue_url, client=faulty, max_trials=5, sleep=RecordingSleep(), linger=0.001
    ) as producer:
        futures = [await producer.put(m) for m in messages]
        outcomes = [await f for f in futures]

    assert [type(o).__name__ for o in outcomes] == ["Delivered"] * len(messages)
    assert queue_order(sync_client, queue_url) == per_group([m["MessageBody"] for m in messages])
    for call in faulty.calls:
        assert len({body.split("-")[0] for body in call}) == len(call)


def outgoing(index: int, group: str, size: int = 10) -> OutgoingMessage:
    fields = {"MessageBody": "x" * size, "MessageGroupId": group}
    return OutgoingMessage(record=index, index=index, fields=fields, size=size)


def test_scheduler_sends_one_message_per_group_and_waits_for_it() -> None:
    scheduler: FifoScheduler[OutgoingMessage] = FifoScheduler(max_bytes=1000)
    messages = [outgoing(index, group) for index, group in enumerate("aabca")]
    for message in messages:
        scheduler.add(message)
    batch = scheduler.next_batch()
    assert batch is not None
    assert [m.index for m in batch.messages] == [0, 2, 3]
    assert scheduler.next_batch() is None  # every group has a message on its way
    scheduler.delivered(messages[0])
    second = scheduler.next_batch()
    assert second is not None and [m.index for m in second.messages] == [1]
    scheduler.delivered(messages[1])
    scheduler.delivered(messages[2])
    scheduler.delivered(messages[3])
    third = scheduler.next_batch()
    assert third is not None and [m.index for m in third.messages] == [4]
    scheduler.delivered(messages[4])
    # Nothing queued and nothing on its way: the next message of every group goes at once.
    assert scheduler.queued == 0 and scheduler.next_batch() is None
    for index, group in enumerate("abc", start=5):
        scheduler.add(outgoing(index, group))
    fourth = scheduler.next_batch()
    assert fourth is not None and [m.index for m in fourth.messages] == [5, 6, 7]


def test_scheduler_respects_the_entry_and_byte_limits() -> None:
    scheduler: FifoScheduler[OutgoingMessage] = FifoScheduler(max_bytes=100)
    for index in range(15):
        scheduler.add(outgoing(index, f"g{index}", size=30))
    sizes = []
    while (batch := scheduler.next_batch()) is not None:
        sizes.append(len(batch.messages))
        assert batch.size <= 100
    assert sizes == [3, 3, 3, 3, 3]


def test_scheduler_halts_a_group_after_a_failure() -> None:
    scheduler: FifoScheduler[OutgoingMessage] = FifoScheduler(max_bytes=1000)
    messages = [outgoing(index, "a") for index in range(3)]
    for message in messages:
        scheduler.add(message)
    batch = scheduler.next_batch()
    assert batch is not None and batch.messages == [messages[0]]
    halted = scheduler.failed(messages[0])
    assert [m.index for m in halted] == [1, 2]  # to fail with PrecedingMessageFailed
    # Nothing queued and nothing on its way: a new message of the group goes at once.
    assert scheduler.queued == 0 and scheduler.next_batch() is None
    scheduler.add(outgoing(3, "a"))  # whether later ones go is the caller's choice
    later = scheduler.next_batch()
    assert later is not None and [m.index for m in later.messages] == [3]


def test_scheduler_puts_a_retried_message_back_at_the_head_of_its_group() -> None:
    scheduler: FifoScheduler[OutgoingMessage] = FifoScheduler(max_bytes=1000)
    messages = [outgoing(index, group) for index, group in enumerate("aab")]
    for message in messages:
        scheduler.add(message)
    first = scheduler.next_batch()
    assert first is not None and [m.index for m in first.messages] == [0, 2]
    scheduler.delivered(messages[2])
    assert scheduler.next_batch() is None  # message 0 waits for its retry: 1 must not pass it
    scheduler.retry([messages[0]])
    again = scheduler.next_batch()
    assert again is not None and [m.index for m in again.messages] == [0]
    scheduler.delivered(messages[0])
    last = scheduler.next_batch()
    assert last is not None and [m.index for m in last.messages] == [1]


def test_scheduler_takes_several_consecutive_messages_of_a_group() -> None:
    scheduler: FifoScheduler[OutgoingMessage] = FifoScheduler(max_bytes=1000, per_group=3)
    messages = [outgoing(index, group) for index, group in enumerate("aaaaab")]
    for message in messages:
        scheduler.add(message)
    batch = scheduler.next_batch()
    assert batch is not None and [m.index for m in batch.messages] == [0, 1, 2, 5]
    scheduler.delivered(messages[0])
    scheduler.delivered(messages[1])
    assert scheduler.next_batch() is None  # message 2 of group a is still on its way
    scheduler.delivered(messages[2])
    second = scheduler.next_batch()
    assert second is not None and [m.index for m in second.messages] == [3, 4]


async def test_one_group_moves_ten_per_request_and_keeps_order_through_request_failures(
    settings: dict[str, Any], sync_client: Any, real_client: Any
) -> None:
    from .faults import client_error

    queue_url = make_queue(sync_client, **CONTENT_BASED)
    messages = [{"MessageBody": f"g0-{i:03d}", "MessageGroupId": "g0"} for i in range(100)]
    faulty = FaultyClient(
        real_client,
        request_fault=lambda call: (
            client_error("ServiceUnavailable", 503) if call % 3 == 1 else None
        ),
    )
    async with SqsSender(
        queue_url=queue_url,
        client=faulty,
        fifo_messages_per_group=10,
        max_trials=3,
        sleep=RecordingSleep(),
    ) as sender:
        result = await sender.send(messages)

    assert result.failed == [] and result.reordered == 0
    assert result.requests == 15  # 10 requests of 10, 5 of them failed once and were retried
    assert queue_order(sync_client, queue_url) == {"g0": [m["MessageBody"] for m in messages]}


async def test_entry_failures_inside_a_group_request_are_reported_as_reordered(
    settings: dict[str, Any], sync_client: Any, real_client: Any
) -> None:
    """With several messages of a group per request, SQS failing one entry and accepting the
    next breaks the group's order; the result says so."""
    queue_url = make_queue(sync_client, **CONTENT_BASED)
    messages = [{"MessageBody": f"g0-{i:03d}", "MessageGroupId": "g0"} for i in range(20)]

    def fault(body: str, attempt: int) -> tuple[str, bool] | None:
        return ("InternalError", False) if body == "g0-003" and attempt == 1 else None

    faulty = FaultyClient(real_client, entry_fault=fault)
    async with SqsSender(
        queue_url=queue_url,
        client=faulty,
        fifo_messages_per_group=10,
        sleep=RecordingSleep(),
    ) as sender:
        result = await sender.send(messages)

    assert result.failed == []
    assert result.reordered == 1
    order = queue_order(sync_client, queue_url)["g0"]
    assert order.index("g0-004") < order.index("g0-003")


async def test_a_send_keeps_a_group_halted_for_messages_it_reads_after_the_failure() -> None:
    """The failure of a-0 is known before a-1 is read: a-1 fails too (the send halts the
    group for the rest of the call), b-0 goes; a later send starts clean."""

    class RefusesA0(FifoStub):
        answered = asyncio.Event()

        async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
            self.requests += 1
            self.answered.set()
            entries = kwargs["Entries"]
            bad = [e for e in entries if e["MessageBody"] == "a-0"]
            answer = accept_all([e for e in entries if e not in bad])
            answer["Failed"] = [
                {"Id": e["Id"], "SenderFault": True, "Code": "InvalidParameterValue"} for e in bad
            ]
            return answer

    client = RefusesA0()

    async def messages() -> Any:
        yield {"MessageBody": "a-0", "MessageGroupId": "a"}
        # a-0 has been answered before a-1 is read (the answer is read in the step that
        # returned it, before this generator resumes)
        await client.answered.wait()
        yield {"MessageBody": "a-1", "MessageGroupId": "a"}
        yield {"MessageBody": "b-0", "MessageGroupId": "b"}

    async with SqsSender(
        queue_url="https://sqs.test/1/q.fifo", client=client, message_deduplication_id=stable_hash
    ) as sender:
        async with asyncio.timeout(30):  # ends a hang; never decides a pass
            result = await sender.send(messages())
            later = await sender.send([{"MessageBody": "a-2", "MessageGroupId": "a"}])
    assert {f.record["MessageBody"]: f.code for f in result.failed} == {
        "a-0": "InvalidParameterValue",
        "a-1": PRECEDING_MESSAGE_FAILED,
    }
    assert [d.record["MessageBody"] for d in result.delivered] == ["b-0"]
    assert later.delivered_count == 1
