"""ReadFromSqs on the DirectRunner (FnApiRunner) against the local server."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from beam_adapter import ReadFromSqs, WriteToSqs
from sqs_async import SqsSender
from sqs_async.testing import LocalSqsServer

from .conftest import LOCAL_RUNNER, bodies, make_queue, options, queue_counts, wait_until_visible

# Runs Beam pipelines, subprocesses or the benchmark endpoint (`make test-quick` skips it).
pytestmark = pytest.mark.integration


def fill(server: LocalSqsServer, queue_url: str, count: int) -> list[str]:
    import asyncio

    messages = [f"m{i}" for i in range(count)]

    async def send() -> int:
        async with SqsSender(queue_url=queue_url, **server.client_settings) as sender:
            return (await sender.send(messages, keep_delivered=False)).delivered_count

    assert asyncio.run(send()) == count
    return messages


@pytest.mark.slow
def test_bounded_read_of_5000_messages_empties_the_queue(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    sent = fill(server, queue_url, 5000)
    with beam.Pipeline(options=options(server)) as p:
        read = p | ReadFromSqs(queue_url=queue_url, until_empty=True, wait_time_seconds=1)
        counts = (
            read
            | beam.Map(lambda record: record["Body"])
            | beam.combiners.Count.PerElement()
            | beam.Map(lambda kv: kv[0])  # at least once: each body, duplicates folded
        )
        assert_that(counts, equal_to(sent))
    assert queue_counts(sync_client, queue_url) == (0, 0)


def test_a_bounded_read_ends_once_it_has_read_max_messages(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    sent = fill(server, queue_url, 25)
    started = time.monotonic()
    with beam.Pipeline(options=options(server)) as p:
        read = p | ReadFromSqs(queue_url=queue_url, max_messages=25, wait_time_seconds=20)
        received = read | beam.Map(
            lambda r: (r["Body"], r["Attributes"]["ApproximateReceiveCount"])
        )
        assert_that(received, equal_to([(body, "1") for body in sent]))
    assert time.monotonic() - started < 15  # start-up included: well under the 20 s long poll
    assert queue_counts(sync_client, queue_url) == (0, 0)


def fail_first_run(flag_file: str) -> Any:
    """A step that fails every element of the first run (it leaves a file behind)."""

    def step(record: dict[str, Any]) -> str:
        import os

        if not os.path.exists(flag_file):
            with open(flag_file, "w") as flag:
                flag.write("failed once")
            raise RuntimeError("downstream failure (injected)")
        return str(record["Body"])

    return step


def test_a_failed_bundle_is_read_again_and_nothing_is_lost(
    server: LocalSqsServer, sync_client: Any, queue_url: str, tmp_path: Any
) -> None:
    sent = fill(server, queue_url, 200)
    step = fail_first_run(str(tmp_path / "failed"))
    read = dict(queue_url=queue_url, visibility_timeout=3, max_hold=2, wait_time_seconds=1)

    with (
        pytest.raises(Exception, match="downstream failure"),
        beam.Pipeline(options=options(server)) as p,
    ):
        p | ReadFromSqs(until_empty=True, **read) | beam.Map(step)
    # Nothing was deleted: the failed bundle was never committed. Its messages come back.
    wait_until_visible(sync_client, queue_url, 200, seconds=30)

    with beam.Pipeline(options=options(server)) as p:
        bodies_read = p | ReadFromSqs(until_empty=True, **read) | beam.Map(step)
        assert_that(bodies_read | beam.Distinct(), equal_to(sent))
    assert queue_counts(sync_client, queue_url) == (0, 0)


def test_a_slow_bundle_keeps_its_messages_invisible(
    server: LocalSqsServer, sync_client: Any, queue_url: str, tmp_path: Any
) -> None:
    """The queue's own timeout is 2 s; the bundle takes over 6 s. Once the bundle has its
    messages, no other reader may see them, and none is delivered twice."""
    import os
    import threading
    import time

    started = str(tmp_path / "started")

    sync_client.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "2"})
    sent = fill(server, queue_url, 20)
    stolen: list[str] = []
    done = threading.Event()

    def other_reader() -> None:
        while not os.path.exists(started):  # the bundle holds every message by then
            time.sleep(0.05)
        while not done.is_set():
            response = sync_client.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
            )
            stolen.extend(m["Body"] for m in response.get("Messages", []))
            time.sleep(0.3)

    def slow(record: dict[str, Any]) -> str:
        open(started, "a").close()
        time.sleep(0.35)
        return str(record["Body"])

    with beam.Pipeline(options=options(server)) as p:
        out = (
            p
            | ReadFromSqs(
                queue_url=queue_url,
                max_messages=20,
                visibility_timeout=3,
                wait_time_seconds=1,
                bundle_seconds=5,  # all 20 in one bundle
            )
            | beam.Map(slow)
        )
        assert_that(out, equal_to(sent))
        thread = threading.Thread(target=other_reader, daemon=True)
        thread.start()
    done.set()
    thread.join()
    assert os.path.exists(started)
    assert stolen == []
    assert queue_counts(sync_client, queue_url) == (0, 0)


def test_read_transform_write_between_two_queues(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    target = make_queue(sync_client)
    sent = fill(server, queue_url, 300)
    with beam.Pipeline(options=options(server)) as p:
        (
            p
            | ReadFromSqs(queue_url=queue_url, until_empty=True, wait_time_seconds=1)
            | beam.Map(lambda record: record["Body"].upper())
            | WriteToSqs(queue_url=target)
        )
    assert Counter(bodies(sync_client, target)).keys() == {b.upper() for b in sent}
    assert queue_counts(sync_client, queue_url) == (0, 0)


def test_metrics_and_element_shape(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    from apache_beam.metrics.metric import MetricsFilter

    sync_client.send_message(
        QueueUrl=queue_url,
        MessageBody="hello",
        MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}},
    )
    p = beam.Pipeline(options=options(server))
    records = p | ReadFromSqs(
        queue_url=queue_url, max_messages=1, with_receipt_handle=True, wait_time_seconds=1
    )
    shapes = records | beam.Map(
        lambda r: (r["Body"], r["MessageAttributes"]["k"]["StringValue"], sorted(r))
    )
    assert_that(
        shapes,
        equal_to(
            [
                (
                    "hello",
                    "v",
                    ["Attributes", "Body", "MessageAttributes", "MessageId", "ReceiptHandle"],
                )
            ]
        ),
    )
    result = p.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter().with_namespace("sqs_async"))["counters"]
    }
    assert counters["messages_received"] >= 1
    assert queue_counts(sync_client, queue_url) == (0, 0)


def test_streaming_read_runs_until_stopped(server: LocalSqsServer, sync_client: Any) -> None:
    """The unbounded read, on the FnApiRunner in a process of its own: messages sent while it
    runs come out transformed on the target queue and are deleted from the source."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    source, target = make_queue(sync_client), make_queue(sync_client)
    example = Path(__file__).resolve().parent.parent / "examples" / "streaming_pipeline.py"
    process = subprocess.Popen(
        [
            sys.executable,
            str(example),
            f"--source={source.rsplit('/', 1)[1]}",
            f"--target={target.rsplit('/', 1)[1]}",
            f"--endpoint_url={server.endpoint_url}",
            "--region_name=us-east-1",
            "--aws_access_key_id=testing",
            "--aws_secret_access_key=testing",
            "--runner=FnApiRunner",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sent = {f"m{i}" for i in range(50)}
        for body in sorted(sent):
            sync_client.send_message(QueueUrl=source, MessageBody=body)
        received: set[str] = set()
        deadline = time.monotonic() + 90
        while received != {b.upper() for b in sent} or queue_counts(sync_client, source) != (0, 0):
            assert time.monotonic() < deadline, (len(received), queue_counts(sync_client, source))
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            received.update(bodies(sync_client, target))
            time.sleep(0.5)
    finally:
        process.terminate()
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def test_a_read_split_among_readers_reads_everything(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    sent = fill(server, queue_url, 300)
    with beam.Pipeline(options=options(server)) as p:
        read = p | ReadFromSqs(
            queue_url=queue_url, max_messages=300, readers=3, wait_time_seconds=1
        )
        assert_that(read | beam.Map(lambda r: r["Body"]), equal_to(sent))
    assert queue_counts(sync_client, queue_url) == (0, 0)


def test_split_shares_out_the_messages() -> None:
    from apache_beam.io.restriction_trackers import OffsetRange

    from beam_adapter.source import UNBOUNDED, _BoundedReadFn, _ReadSettings, _UnboundedReadFn
    from sqs_async import ReceiverConfig

    def parts(fn_type: Any, max_messages: int | None, readers: int) -> list[tuple[int, int]]:
        read = _ReadSettings(max_messages, None, False, False, 10, 1.0, readers)
        fn = fn_type(ReceiverConfig(queue_name="q"), read)
        return [(r.start, r.stop) for r in fn.split(0.0, fn.initial_restriction(0.0))]

    assert parts(_BoundedReadFn, 10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert parts(_BoundedReadFn, 2, 5) == [(0, 1), (1, 2)]
    unbounded = parts(_UnboundedReadFn, None, 2)
    assert len(unbounded) == 2 and unbounded[-1][1] == UNBOUNDED
    assert OffsetRange(*unbounded[0]).size() > 2**60


def test_the_direct_runner_with_several_workers_is_refused_clearly(
    server: LocalSqsServer, queue_url: str
) -> None:
    for workers in ("2", "0"):  # 0: one per core
        opts = options(
            server, "--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"
        )
        with pytest.raises(ValueError, match=r"ParallelBundleManager.*direct_num_workers=1"):
            _ = beam.Pipeline(options=opts) | ReadFromSqs(queue_url=queue_url, until_empty=True)


_RESTRICTION = beam.DoFn.RestrictionParam()


class _CheckpointingCount(beam.DoFn, beam.transforms.core.RestrictionProvider):
    """The smallest splittable DoFn that checkpoints: one number per call, then defers."""

    def initial_restriction(self, element: Any) -> Any:
        from apache_beam.io.restriction_trackers import OffsetRange

        return OffsetRange(0, 3)

    def create_tracker(self, restriction: Any) -> Any:
        from apache_beam.io.restriction_trackers import OffsetRestrictionTracker

        return OffsetRestrictionTracker(restriction)

    def restriction_size(self, element: Any, restriction: Any) -> int:
        return int(restriction.size())

    def process(self, element: Any, tracker: Any = _RESTRICTION) -> Any:
        position = tracker.current_restriction().start
        if tracker.try_claim(position):
            yield position
            tracker.defer_remainder()


@pytest.mark.parametrize(("workers", "emitted"), [("1", [0, 1, 2]), ("2", [0])])
def test_beam_limitation_several_direct_workers_drop_checkpoints(
    workers: str, emitted: list[int]
) -> None:
    """Why ReadFromSqs refuses the DirectRunner with several workers (Beam 2.77): its
    ParallelBundleManager drops the residuals of a checkpointing DoFn, which then stops after
    its first bundle. One worker emits 0, 1, 2; two workers emit only 0. If this test fails,
    Beam has fixed it: lift the refusal (beam_adapter.source.drops_checkpoints)."""
    opts = PipelineOptions(
        [LOCAL_RUNNER, "--direct_running_mode=multi_threading", f"--direct_num_workers={workers}"]
    )
    with beam.Pipeline(options=opts) as p:
        out = p | beam.Create([None]) | beam.ParDo(_CheckpointingCount())
        assert_that(out, equal_to(emitted))


def test_a_missing_queue_fails_the_pipeline_clearly(server: LocalSqsServer) -> None:
    for source in (
        ReadFromSqs(queue_name="missing-queue", max_messages=1),
        ReadFromSqs(
            queue_url=f"{server.endpoint_url}/123456789012/missing-queue",
            max_messages=1,
            wait_time_seconds=0,
        ),
    ):
        with (
            pytest.raises(Exception, match="missing-queue"),
            beam.Pipeline(options=options(server)) as p,
        ):
            _ = p | source
