"""ReadFromSqs against what production runners do: drain, backlog, watermark, runners that do
not finalize bundles, background tasks that die, and when a bounded read may end."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.io.restriction_trackers import OffsetRange
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.spark_runner import SparkRunner
from apache_beam.testing.util import assert_that, equal_to

from beam_adapter import ReadFromSqs
from beam_adapter.source import next_watermark
from sqs_async import SqsAsyncError, SqsReceiver
from sqs_async.testing import LocalSqsServer

from .conftest import LOCAL_RUNNER, options, until
from .faults import Forwarding


def read_fn(queue_url: str = "http://127.0.0.1:9/123456789012/q", **kwargs: Any) -> Any:
    """The DoFn a ReadFromSqs transform would run (built the way `expand` builds it); each
    call makes another instance, as another worker process would."""
    from beam_adapter.source import _BoundedReadFn, _UnboundedReadFn

    transform = ReadFromSqs(queue_url=queue_url, **kwargs)
    kind = _BoundedReadFn if transform._read.bounded else _UnboundedReadFn
    return kind(transform._config, transform._read)


def test_a_streaming_read_is_unbounded_and_stops_on_drain() -> None:
    streaming, bounded = read_fn(), read_fn(max_messages=100)
    whole = streaming.initial_restriction(None)
    assert streaming.create_tracker(whole).is_bounded() is False
    assert streaming.truncate(None, whole) is None  # drain: nothing left to read
    part = bounded.initial_restriction(None)
    assert bounded.create_tracker(part).is_bounded() is True
    assert bounded.truncate(None, part) == part  # a bounded read finishes
    assert bounded.restriction_size(None, OffsetRange(10, 100)) == 90


@pytest.mark.integration
def test_a_streaming_reads_size_is_the_queues_backlog(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    from beam_adapter import source

    for i in range(7):
        sync_client.send_message(QueueUrl=queue_url, MessageBody=f"m{i}")
    fn = read_fn(queue_url, **server.client_settings)
    whole = fn.initial_restriction(None)
    source._backlog.pop(queue_url, None)
    assert fn.restriction_size(None, whole) == 0  # not known yet: no absurd 2**63
    fn.setup()
    try:
        # One bundle's read (a receive of up to 7, then the backlog asked once).
        tracker = fn.create_tracker(whole)
        emitted = list(
            fn.read_messages(time.time(), TrackerView(tracker), Watermark(), Finalizer())
        )
        assert emitted  # some of the 7
        # SQS's estimate of what waits, read by the bundle: held messages are not counted.
        left = 7 - len(emitted)
        assert fn.restriction_size(None, whole) == left
    finally:
        fn.teardown()


def test_the_watermark_never_passes_a_held_message_and_never_moves_back() -> None:
    # Holding a message sent at 100: the watermark stays at 100 however late the poll.
    assert next_watermark(None, 100.0, 500.0) == 100.0
    assert next_watermark(90.0, 100.0, 500.0) == 100.0
    # Nothing held: it follows the start of the poll.
    assert next_watermark(100.0, None, 500.0) == 500.0
    # Never back: a message held now but sent before the current watermark was seen late.
    assert next_watermark(500.0, 100.0, 600.0) == 500.0


async def test_the_receiver_reports_the_oldest_message_it_holds(
    server: LocalSqsServer, settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    for i in range(3):
        sync_client.send_message(QueueUrl=queue_url, MessageBody=f"m{i}")
    async with SqsReceiver(queue_url=queue_url, wait_time_seconds=0, **settings) as receiver:
        assert receiver.oldest_held_sent_timestamp() is None or receiver.held > 0
        messages = await receiver.receive(max_messages=3, wait=30)
        await until(lambda: receiver.held == 3, timeout=30)
        oldest = min(m.sent_timestamp for m in messages if m.sent_timestamp is not None)
        assert receiver.oldest_held_sent_timestamp() == oldest
        await receiver.ack(messages)
        assert receiver.oldest_held_sent_timestamp() is None


async def test_the_backlog_is_asked_at_most_once_per_interval(
    server: LocalSqsServer, settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    for i in range(4):
        sync_client.send_message(QueueUrl=queue_url, MessageBody=f"m{i}")
    asked = 0

    class Counting(Forwarding):
        async def get_queue_attributes(self, **kwargs: Any) -> Any:
            nonlocal asked
            asked += 1
            return await self.inner.get_queue_attributes(**kwargs)

    now = [1000.0]
    receiver = SqsReceiver(
        queue_url=queue_url,
        wait_time_seconds=0,
        concurrent_receives=1,
        client_wrapper=Counting,
        clock=lambda: now[0],
        **settings,
    )
    async with receiver:
        await receiver.stop_receiving()  # nothing held: the queue shows all four
        assert await receiver.backlog() == 4
        sync_client.send_message(QueueUrl=queue_url, MessageBody="m4")
        assert await receiver.backlog() == 4  # cached
        now[0] += 10.0
        assert await receiver.backlog() == 5
    assert asked == 2


@pytest.mark.integration
def test_until_empty_is_not_fooled_by_a_slow_receive(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    # Each receive takes 1.5 s, longer than a bundle (1 s): bundles end with no message
    # though the queue is full. Only a poll that came back empty may end the read.
    for i in range(20):
        sync_client.send_message(QueueUrl=queue_url, MessageBody=f"m{i}")

    with beam.Pipeline(options=options(server)) as p:
        read = p | ReadFromSqs(
            queue_url=queue_url,
            until_empty=True,
            wait_time_seconds=1,
            bundle_seconds=1,
            concurrent_receives=1,
            client_wrapper=SlowReceives,
        )
        assert_that(read | beam.Map(lambda r: r["Body"]), equal_to([f"m{i}" for i in range(20)]))


class SlowReceives(Forwarding):
    """Forwards to the real client; every receive answers 1.5 s late."""

    async def receive_message(self, **kwargs: Any) -> Any:
        await asyncio.sleep(1.5)
        return await self.inner.receive_message(**kwargs)


def test_runners_that_do_not_finalize_bundles_need_an_explicit_choice() -> None:
    pipeline = beam.Pipeline(runner=SparkRunner(), options=PipelineOptions([]))
    with pytest.raises(ValueError, match=r'not finalize bundles.*delete_after="output"'):
        _ = pipeline | ReadFromSqs(queue_url="http://127.0.0.1:9/1/q", max_messages=5)
    chosen = beam.Pipeline(runner=SparkRunner(), options=PipelineOptions([]))
    _ = chosen | ReadFromSqs(
        queue_url="http://127.0.0.1:9/1/q", max_messages=5, delete_after="output"
    )
    # The DirectRunner's engine finalizes bundles: the default is accepted.
    local = beam.Pipeline(options=PipelineOptions([LOCAL_RUNNER]))
    _ = local | ReadFromSqs(queue_url="http://127.0.0.1:9/1/q", max_messages=5)


@pytest.mark.integration
def test_delete_after_output_deletes_what_was_emitted(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    from .conftest import queue_counts

    for i in range(30):
        sync_client.send_message(QueueUrl=queue_url, MessageBody=f"m{i}")
    with beam.Pipeline(options=options(server)) as p:
        read = p | ReadFromSqs(
            queue_url=queue_url, until_empty=True, wait_time_seconds=1, delete_after="output"
        )
        assert_that(read | beam.Map(lambda r: r["Body"]), equal_to([f"m{i}" for i in range(30)]))
    assert queue_counts(sync_client, queue_url) == (0, 0)


async def test_a_dead_background_task_fails_the_reader(
    server: LocalSqsServer, settings: dict[str, Any], sync_client: Any, queue_url: str
) -> None:
    sync_client.send_message(QueueUrl=queue_url, MessageBody="held")
    receiver = SqsReceiver(
        queue_url=queue_url, visibility_timeout=3, wait_time_seconds=0, **settings
    )

    async def broken(messages: Any) -> Any:
        raise RuntimeError("the keeper broke")

    async with receiver:
        receiver._extend_ten = broken  # type: ignore[method-assign]  # fault injection
        [message] = await receiver.receive(wait=30)
        # The keeper extends within half the visibility timeout, and dies doing so.
        with pytest.raises(SqsAsyncError, match="the keeper broke"):
            for _ in range(600):  # bounded: 60 s of 0.1 s waits
                await receiver.receive(wait=0.1)
        assert message.body == "held"


@pytest.mark.integration
def test_teardown_logs_the_deletes_the_metrics_cannot_count(
    server: LocalSqsServer, sync_client: Any, queue_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="beam_adapter")
    for i in range(12):
        sync_client.send_message(QueueUrl=queue_url, MessageBody=f"m{i}")
    with beam.Pipeline(options=options(server)) as p:
        _ = p | ReadFromSqs(queue_url=queue_url, until_empty=True, wait_time_seconds=1)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("read from")]
    assert lines and "received 12, deleted 12, delete failures 0" in lines[-1], lines


class ArmedEmptyPoll(Forwarding):
    """Forwards to the real client. Once armed, the next receive answers "empty" at once (as
    when another reader holds every visible message) and the one after answers only once
    that empty answer has been given (and read: in the step that returned it)."""

    armed = 0
    empty_given: asyncio.Event

    async def receive_message(self, **kwargs: Any) -> Any:
        if ArmedEmptyPoll.armed == 2:
            ArmedEmptyPoll.armed = 1
            ArmedEmptyPoll.empty_given.set()
            return {"Messages": []}
        if ArmedEmptyPoll.armed == 1:
            ArmedEmptyPoll.armed = 0
            async with asyncio.timeout(30):  # ends a hang; never decides a pass
                await ArmedEmptyPoll.empty_given.wait()
        return await self.inner.receive_message(**kwargs)


@pytest.mark.integration
def test_until_empty_takes_over_what_open_polls_bring_after_an_empty_one(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    # Two readers split a queue (readers=2 on two workers): one poll can come back empty while
    # another is bringing messages in. Ending the read then, and releasing those, lost 130 of
    # 400 messages in a run under load. One bundle, the empty answer first:
    from beam_adapter import runtime

    for i in range(10):
        sync_client.send_message(QueueUrl=queue_url, MessageBody=f"m{i}")
    fn = read_fn(
        queue_url,
        until_empty=True,
        wait_time_seconds=1,
        concurrent_receives=2,
        client_wrapper=ArmedEmptyPoll,
        **server.client_settings,
    )
    fn.setup()
    try:
        receiver = fn._receiver
        runtime.run(receiver.release(runtime.run(receiver.stop_polling_and_take())))  # all visible
        ArmedEmptyPoll.armed, ArmedEmptyPoll.empty_given = 2, asyncio.Event()
        tracker = fn.create_tracker(fn.initial_restriction(None))
        view, watermark, finalizer = TrackerView(tracker), Watermark(), Finalizer()
        emitted = list(fn.read_messages(time.time(), view, watermark, finalizer))
        assert sorted(e.value["Body"] for e in emitted) == sorted(f"m{i}" for i in range(10))
        assert not view.done  # not drained: the read goes on
    finally:
        ArmedEmptyPoll.armed = 0
        fn.teardown()


class TrackerView:
    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker
        self.done = False

    def current_restriction(self) -> OffsetRange:
        return self.tracker.current_restriction()

    def try_claim(self, position: int) -> bool:
        if position >= self.tracker.current_restriction().stop:
            self.done = True
        return bool(self.tracker.try_claim(position))

    def defer_remainder(self, delay: Any = None) -> None:
        """Checkpoint as a runner does: the next bundle gets the residual restriction."""
        split = self.tracker.try_split(0)
        if split is not None:
            self.tracker = type(self.tracker)(split[1])


class Watermark:
    value = None

    def current_watermark(self) -> Any:
        return self.value

    def set_watermark(self, timestamp: Any) -> None:
        self.value = timestamp


class Finalizer:
    def register(self, callback: Any) -> None:
        self.callback = callback


@pytest.mark.integration
def test_a_bounded_read_moving_between_workers_leaves_nothing_behind(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    # A split read's next bundle may run in another worker process, with a receiver of its
    # own. A receiver that kept prefetching after its bundle held messages no bundle would
    # emit: the other reader found the queue "empty" and ended (39 of 400 unread in a run
    # under load). Two DoFn instances stand for the two processes.
    for i in range(30):
        sync_client.send_message(QueueUrl=queue_url, MessageBody=f"m{i}")
    first, second = (
        read_fn(
            queue_url,
            until_empty=True,
            wait_time_seconds=1,
            bundle_size=5,
            **server.client_settings,
        )
        for _ in "12"
    )
    emitted: list[str] = []
    first.setup()
    second.setup()
    try:
        tracker = first.create_tracker(first.initial_restriction(None))
        view = TrackerView(tracker)
        for fn in (first, second, second, second, second, second, second, second):
            if view.done:
                break
            records = fn.read_messages(time.time(), view, Watermark(), Finalizer())
            emitted += [r.value["Body"] for r in records]
        assert view.done  # the read ended: the queue was found empty
    finally:
        first.teardown()
        second.teardown()
    assert sorted(emitted) == sorted(f"m{i}" for i in range(30))
