"""SqsReceiver against the local server: everything read, acked in batches, held messages kept
invisible, released messages back at once, failures reported."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sqs_async import SqsClientError, SqsReceiver, SqsSender

from .conftest import drain, make_queue, queue_counts, until
from .faults import Forwarding, client_error


@pytest.mark.slow
async def test_reads_5000_messages_and_leaves_the_queue_empty(
    settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    bodies = [f"m{i}" for i in range(5000)]
    async with SqsSender(queue_url=queue_url, **settings) as sender:
        assert (await sender.send(bodies, keep_delivered=False)).delivered_count == 5000

    seen: list[str] = []
    async with SqsReceiver(
        queue_url=queue_url, wait_time_seconds=1, concurrent_receives=4, **settings
    ) as receiver:
        batch = []
        async for message in receiver.messages(until_empty=True):
            seen.append(message.body)
            batch.append(message)
            if len(batch) == 100:
                assert not (await receiver.ack(batch)).failed
                batch = []
        assert not (await receiver.ack(batch)).failed
        stats = receiver.stats

    assert set(seen) == set(bodies)  # at least once; moto may hand a message to two polls
    assert stats.deleted == len(seen) and stats.delete_failures == 0
    assert queue_counts(sync_client, queue_url) == (0, 0)


async def test_attributes_and_system_attributes_are_kept(
    settings: dict[str, Any], sync_client: Any
) -> None:
    queue_url = make_queue(sync_client, FifoQueue="true", ContentBasedDeduplication="true")
    attributes = {
        "s": {"DataType": "String", "StringValue": "ü"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
    }
    sync_client.send_message(
        QueueUrl=queue_url, MessageBody="x", MessageGroupId="g", MessageAttributes=attributes
    )
    async with SqsReceiver(queue_url=queue_url, wait_time_seconds=0, **settings) as receiver:
        [message] = [m async for m in receiver.messages(until_empty=True)]
        await receiver.ack([message])
    got = {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in message.message_attributes.items()
    }
    assert got == attributes
    assert message.attributes["MessageGroupId"] == "g"
    assert message.sent_timestamp is not None and message.sent_timestamp > 1.7e9
    assert message.as_record()["Body"] == "x"


async def test_held_messages_stay_invisible_past_the_visibility_timeout(
    settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    sync_client.send_message(QueueUrl=queue_url, MessageBody="slow")
    async with SqsReceiver(
        queue_url=queue_url, visibility_timeout=3, wait_time_seconds=0, **settings
    ) as receiver:
        [message] = await receiver.receive(wait=5)
        received_at = time.monotonic()
        # SQS's timer is the wall clock: wait until the first 3 s timeout has passed on it and
        # two extensions were made, then another reader must still see nothing.
        await until(
            lambda: receiver.stats.extensions >= 2 and time.monotonic() - received_at > 3.5,
            timeout=60,
        )
        other = sync_client.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
        assert other.get("Messages", []) == []
        assert receiver.stats.extensions >= 2
        assert not (await receiver.ack([message])).failed
    assert queue_counts(sync_client, queue_url) == (0, 0)


async def test_max_hold_gives_a_forgotten_message_back(
    settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    sync_client.send_message(QueueUrl=queue_url, MessageBody="forgotten")
    async with SqsReceiver(
        queue_url=queue_url, visibility_timeout=3, max_hold=1, wait_time_seconds=0, **settings
    ) as receiver:
        [first] = await receiver.receive(wait=5)
        # Not extended past max_hold: the queue gives it out again (to this receiver's polls).
        [again] = await receiver.receive(wait=10)
        await receiver.ack([again])
    assert first.body == again.body == "forgotten"
    assert (
        first.attributes["ApproximateReceiveCount"],
        again.attributes["ApproximateReceiveCount"],
    ) == ("1", "2")


async def test_release_and_close_give_messages_back_at_once(
    settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    for i in range(30):
        sync_client.send_message(QueueUrl=queue_url, MessageBody=f"m{i}")
    async with SqsReceiver(
        queue_url=queue_url, visibility_timeout=600, wait_time_seconds=0, prefetch=50, **settings
    ) as receiver:
        first = await receiver.receive(max_messages=5, wait=5)
        released = await receiver.release(first)
        assert len(released.done) == 5 and not released.failed
        # The polls buffered the rest (and may take the five released ones again).
        await until(lambda: receiver.held >= 25, timeout=60)
    # Released and buffered messages are visible again although the timeout was 600 s.
    assert queue_counts(sync_client, queue_url) == (30, 0)


class FailingDeletes:
    """Forwards to a real client; deletes fail once per receipt handle (transient), and for
    handles listed in `refuse`, for good."""

    def __init__(self, inner: Any, refuse: set[str]) -> None:
        self.inner = inner
        self.refuse = refuse
        self.seen: set[str] = set()
        self.delete_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.delete_calls += 1
        passed, failed = [], []
        for entry in kwargs["Entries"]:
            handle = entry["ReceiptHandle"]
            if handle in self.refuse:
                failed.append(
                    {
                        "Id": entry["Id"],
                        "Code": "ReceiptHandleIsInvalid",
                        "SenderFault": True,
                        "Message": "refused",
                    }
                )
            elif handle not in self.seen:
                self.seen.add(handle)
                failed.append(
                    {
                        "Id": entry["Id"],
                        "Code": "InternalError",
                        "SenderFault": False,
                        "Message": "try again",
                    }
                )
            else:
                passed.append(entry)
        response: dict[str, Any] = {"Successful": [], "Failed": failed}
        if passed:
            real = await self.inner.delete_message_batch(
                QueueUrl=kwargs["QueueUrl"], Entries=passed
            )
            response["Successful"] = real.get("Successful", [])
        return response


async def test_failed_deletes_are_retried_or_reported(
    settings: dict[str, Any], sync_client: Any, queue_url: str, real_client: Any
) -> None:
    for i in range(12):
        sync_client.send_message(QueueUrl=queue_url, MessageBody=f"m{i}")
    wrapper: FailingDeletes | None = None

    def wrap(client: Any) -> Any:
        nonlocal wrapper
        wrapper = FailingDeletes(client, set())
        return wrapper

    async with SqsReceiver(
        queue_url=queue_url,
        client=real_client,
        client_wrapper=wrap,
        wait_time_seconds=0,
        visibility_timeout=600,
    ) as receiver:
        messages = [m async for m in receiver.messages(until_empty=True)]
        assert wrapper is not None
        wrapper.refuse.add(messages[0].receipt_handle)
        result = await receiver.ack(messages)

    assert sorted(m.body for m in result.done) == sorted(m.body for m in messages[1:])
    assert [(m.body, code) for m, code, _ in result.failed] == [
        (messages[0].body, "ReceiptHandleIsInvalid")
    ]
    assert receiver.stats.delete_failures == 1
    assert wrapper.delete_calls == 4  # two batches, each retried once
    # The refused one is no longer held: it stays in flight until its visibility timeout ends.
    assert queue_counts(sync_client, queue_url) == (0, 1)


async def test_a_missing_queue_is_raised_to_the_reader(settings: dict[str, Any]) -> None:
    with pytest.raises(SqsClientError):
        async with SqsReceiver(queue_name="no-such-queue", **settings):
            pass
    missing = f"{settings['endpoint_url']}/123456789012/no-such-queue"
    async with SqsReceiver(queue_url=missing, wait_time_seconds=0, **settings) as receiver:
        with pytest.raises(SqsClientError) as raised:
            await receiver.receive(wait=10)
    assert raised.value.code == "QueueDoesNotExist"


async def test_transient_receive_errors_are_retried(
    settings: dict[str, Any], sync_client: Any, queue_url: str, real_client: Any
) -> None:
    sync_client.send_message(QueueUrl=queue_url, MessageBody="after the storm")
    calls = 0

    class Flaky:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_client, name)

        async def receive_message(self, **kwargs: Any) -> dict[str, Any]:
            nonlocal calls
            calls += 1
            if calls <= 3:
                raise client_error("ServiceUnavailable", 503, "ReceiveMessage")
            return await real_client.receive_message(**kwargs)

    async with SqsReceiver(
        queue_url=queue_url, client=Flaky(), wait_time_seconds=0, concurrent_receives=1
    ) as receiver:
        [message] = await receiver.receive(wait=10)
        await receiver.ack([message])
    assert message.body == "after the storm" and calls > 3


def test_overlapping_throttled_backoffs_count_once() -> None:
    """Runners scale on throttled time: two polls backing off at once are one second, not two."""
    from sqs_async.receive._messages import ReceiverStats
    from sqs_async.receive._throttling import ThrottledTime as _ThrottledTime

    now = [0.0]
    stats = ReceiverStats()
    time = _ThrottledTime(stats, lambda: now[0])
    time.begin()  # poll 1 backs off at 0
    now[0] = 0.5
    time.begin()  # poll 2 at 0.5
    now[0] = 1.0
    time.end()  # poll 1 done at 1.0
    now[0] = 1.5
    time.end()  # poll 2 done at 1.5
    assert stats.throttled_seconds == 1.5
    now[0] = 3.0
    time.begin()
    now[0] = 3.25
    time.end()
    assert stats.throttled_seconds == 1.75


# Ending: a read that is done ends within about a second, and strands nothing


class Polls(Forwarding):
    """Forwards to the real client; records each ReceiveMessage's (MaxNumberOfMessages,
    WaitTimeSeconds) and counts the calls open."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.asked: list[tuple[int, int]] = []
        self.open = 0

    async def receive_message(self, **kwargs: Any) -> Any:
        self.asked.append((kwargs["MaxNumberOfMessages"], kwargs["WaitTimeSeconds"]))
        self.open += 1
        try:
            return await self.inner.receive_message(**kwargs)
        finally:
            self.open -= 1


def recording(polls: list[Polls]) -> Any:
    def wrap(client: Any) -> Polls:
        polls.append(Polls(client))
        return polls[-1]

    return wrap


def send_many(sync_client: Any, queue_url: str, count: int) -> None:
    for start in range(0, count, 10):
        entries = [
            {"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, min(count, start + 10))
        ]
        sync_client.send_message_batch(QueueUrl=queue_url, Entries=entries)


def receive_counts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["Attributes"]["ApproximateReceiveCount"] for m in messages]


def nothing_stranded(sync_client: Any, queue_url: str) -> None:
    """A message sent now goes to the next reader at once: no poll left open on the server
    takes it (one would hide it for the visibility timeout, and count a receive)."""
    sync_client.send_message(QueueUrl=queue_url, MessageBody="after")
    got = sync_client.receive_message(
        QueueUrl=queue_url, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    assert [m["Body"] for m in got] == ["after"] and receive_counts(got) == ["1"]


async def test_a_receiver_on_an_empty_queue_closes_within_about_a_second(
    settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    polls: list[Polls] = []
    async with SqsReceiver(
        queue_url=queue_url,
        wait_time_seconds=20,
        concurrent_receives=4,
        client_wrapper=recording(polls),
        **settings,
    ):
        await until(lambda: bool(polls) and polls[0].open > 0, timeout=60)  # a poll on SQS
        closing = time.monotonic()
    assert time.monotonic() - closing < 5  # a bound, well under the 20 s long poll
    nothing_stranded(sync_client, queue_url)


@pytest.mark.parametrize("in_queue", [25, 40])
async def test_max_messages_ends_once_read_and_takes_no_more(
    settings: dict[str, Any], sync_client: Any, queue_url: str, in_queue: int
) -> None:
    send_many(sync_client, queue_url, in_queue)
    started = time.monotonic()
    async with SqsReceiver(
        queue_url=queue_url, wait_time_seconds=20, concurrent_receives=4, **settings
    ) as receiver:
        read = [m async for m in receiver.messages(max_messages=25)]
        assert not (await receiver.ack(read)).failed
    assert time.monotonic() - started < 5  # a bound, well under the 20 s long poll
    assert len({m.body for m in read}) == 25
    assert {m.attributes["ApproximateReceiveCount"] for m in read} == {"1"}
    assert receiver.stats.received == 25  # no poll asked for more than the reader took
    rest = drain(sync_client, queue_url)
    assert len(rest) == in_queue - 25 and set(receive_counts(rest)) <= {"1"}
    nothing_stranded(sync_client, queue_url)


async def test_until_empty_ends_within_about_a_second_of_finding_the_queue_empty(
    settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    send_many(sync_client, queue_url, 30)
    async with SqsReceiver(
        queue_url=queue_url, wait_time_seconds=5, concurrent_receives=4, **settings
    ) as receiver:
        read = [m async for m in receiver.messages(until_empty=True)]
        found = time.monotonic()  # a poll waited the full 5 s in vain: the finding
        assert not (await receiver.ack(read)).failed
    assert time.monotonic() - found < 3.5  # not another 5 s poll: a bound, not a benchmark
    assert sorted(m.body for m in read) == sorted(f"m{i}" for i in range(30))
    assert {m.attributes["ApproximateReceiveCount"] for m in read} == {"1"}
    assert receiver.stats.found_empty >= 1
    assert queue_counts(sync_client, queue_url) == (0, 0)
    nothing_stranded(sync_client, queue_url)


async def test_a_bounded_reader_ending_does_not_stop_another_readers_polls(
    settings: dict[str, Any], sync_client: Any
) -> None:
    import asyncio

    queue_url = make_queue(sync_client)
    for n in range(20):
        sync_client.send_message(QueueUrl=queue_url, MessageBody=f"first {n}")
    async with SqsReceiver(queue_url=queue_url, wait_time_seconds=1, **settings) as receiver:
        endless: list[str] = []

        async def read_on() -> None:
            async for message in receiver:
                endless.append(message.body)
                await receiver.ack([message])

        reader = asyncio.create_task(read_on())
        await until(lambda: bool(endless), timeout=30)  # the endless reader reads first
        bounded = [m async for m in receiver.messages(max_messages=2)]
        await receiver.ack(bounded)
        for n in range(3):  # after the bounded reader ended: the other still gets them
            sync_client.send_message(QueueUrl=queue_url, MessageBody=f"later {n}")
        await until(lambda: len(endless) + len(bounded) == 23, timeout=30)
        reader.cancel()
    assert {f"later {n}" for n in range(3)} <= set(endless)
