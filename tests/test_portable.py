"""WriteToSqs and ReadFromSqs on Beam's portable path (local job service + external worker
pool, the way Flink, Spark and Dataflow run Python DoFns), against the local server."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import util as beam_testing
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import window

from beam_adapter import ReadFromSqs, WriteToSqs
from sqs_async.testing import LocalSqsServer

from .conftest import make_queue, queue_counts, stored_bodies
from .portable import PidRecorder, PortableBeam, RecordingProxy, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FLAGS = [
    "--region_name=us-east-1",
    "--aws_access_key_id=testing",
    "--aws_secret_access_key=testing",
]


@pytest.fixture(scope="module")
def portable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortableBeam]:
    with PortableBeam(tmp_path_factory.mktemp("portable")) as beam_services:
        yield beam_services


def run(pipeline: beam.Pipeline) -> None:
    result = pipeline.run()
    result.wait_until_finish()
    assert result.state == "DONE", result.state


def test_writes_run_in_worker_processes_and_deliver_each_body_once(
    portable: PortableBeam, server: LocalSqsServer, sync_client: Any, tmp_path: Path
) -> None:
    queue_url = make_queue(sync_client)
    pids = tmp_path / "pids"
    bodies = [f"b{i}" for i in range(5000)]
    p = beam.Pipeline(
        options=PipelineOptions(portable.options(f"--endpoint_url={server.endpoint_url}", *FLAGS))
    )
    _ = (
        p
        | beam.Create(bodies)
        | beam.Reshuffle()
        | WriteToSqs(queue_url=queue_url, client_wrapper=PidRecorder(str(pids)))
    )
    run(p)
    assert Counter(body for body, _ in stored_bodies(queue_url)) == Counter(bodies)
    workers = {int(line) for line in pids.read_text().split()}
    assert workers and os.getpid() not in workers  # the sink ran in the pool's workers


def test_the_failed_output_keeps_windows_timestamps_and_errors(
    portable: PortableBeam, server: LocalSqsServer, sync_client: Any
) -> None:
    queue_url = make_queue(sync_client)
    inputs = [("ok", 1), ("", 12), ({"MessageBody": "x", "DelaySeconds": 901}, 25)]
    p = beam.Pipeline(
        options=PipelineOptions(portable.options(f"--endpoint_url={server.endpoint_url}", *FLAGS))
    )
    failed = (
        p
        | beam.Create(inputs)
        | beam.MapTuple(lambda r, ts: window.TimestampedValue(r, ts))
        | beam.WindowInto(window.FixedWindows(10))
        | WriteToSqs(queue_url=queue_url)
    )[WriteToSqs.FAILED_OUTPUT]
    codes = failed | beam.MapTuple(lambda record, error: (repr(record), error["Code"]))
    assert_that(
        codes,
        equal_to(
            [
                beam_testing.TestWindowedValue(
                    ("''", "InvalidMessageBody"), 12, [window.IntervalWindow(10, 20)]
                ),
                beam_testing.TestWindowedValue(
                    (repr(inputs[2][0]), "InvalidDelaySeconds"), 25, [window.IntervalWindow(20, 30)]
                ),
            ]
        ),
        reify_windows=True,
    )
    run(p)
    assert [body for body, _ in stored_bodies(queue_url)] == ["ok"]


@pytest.mark.parametrize("given_as", ["flags", "keywords"])
def test_credentials_reach_the_workers_requests_and_no_log(
    given_as: str, portable: PortableBeam, server: LocalSqsServer, sync_client: Any
) -> None:
    queue_url = make_queue(sync_client)
    key = f"AKIAPORTABLE{given_as.upper():0>8}"
    secret = f"portable/Secret+Value/{given_as}/0123456789abcdef"
    with RecordingProxy(server.endpoint_url) as proxy:
        flags = portable.options(f"--endpoint_url={proxy.url}", "--region_name=us-east-1")
        credentials = {"aws_access_key_id": key, "aws_secret_access_key": secret}
        if given_as == "flags":
            options = PipelineOptions([*flags, *(f"--{k}={v}" for k, v in credentials.items())])
        else:
            options = PipelineOptions(flags, **credentials)
        p = beam.Pipeline(options=options)
        _ = p | beam.Create([f"m{i}" for i in range(30)]) | WriteToSqs(queue_url=queue_url)
        run(p)
    assert proxy.access_keys and set(proxy.access_keys) == {key}
    assert sorted(body for body, _ in stored_bodies(queue_url)) == sorted(
        f"m{i}" for i in range(30)
    )
    logs = portable.log_text()
    # The workers log the options they cannot parse yet: placeholders stand for the values.
    assert "Discarding unparseable args" in logs and "--aws_secret_access_key=<secret " in logs
    assert secret not in logs and key not in logs


def test_a_bounded_read_moves_2000_messages_and_deletes_them(
    portable: PortableBeam, server: LocalSqsServer, sync_client: Any
) -> None:
    source, target = make_queue(sync_client), make_queue(sync_client)
    for start in range(0, 2000, 10):
        sync_client.send_message_batch(
            QueueUrl=source,
            Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)],
        )
    p = beam.Pipeline(
        options=PipelineOptions(portable.options(f"--endpoint_url={server.endpoint_url}", *FLAGS))
    )
    _ = (
        p
        | ReadFromSqs(queue_url=source, max_messages=2000, wait_time_seconds=1)
        | beam.Map(lambda record: record["Body"].upper())
        | WriteToSqs(queue_url=target)
    )
    run(p)
    assert Counter(b for b, _ in stored_bodies(target)) == Counter(f"M{i}" for i in range(2000))
    # Deleted on bundle finalization, which happens on this path.
    wait_for(lambda: queue_counts(sync_client, source) == (0, 0), "the source to be emptied")
    assert stored_bodies(source) == []


def test_a_streaming_read_whose_workers_die_loses_nothing(
    server: LocalSqsServer, sync_client: Any, tmp_path: Path
) -> None:
    # The local job service cannot cancel or drain a job (local_job_service.py: "TODO ...
    # Actually cancel"): the workers are killed instead, as a cluster losing them would.
    source, target = make_queue(sync_client), make_queue(sync_client)
    sent = {f"s{i}" for i in range(300)}
    for body in sorted(sent):
        sync_client.send_message(QueueUrl=source, MessageBody=body)
    with PortableBeam(tmp_path) as portable:
        p = beam.Pipeline(
            options=PipelineOptions(
                portable.options(f"--endpoint_url={server.endpoint_url}", "--streaming", *FLAGS)
            )
        )
        _ = (
            p
            | ReadFromSqs(queue_url=source, visibility_timeout=5, wait_time_seconds=1)
            | beam.Map(lambda record: record["Body"])
            | WriteToSqs(queue_url=target)
        )
        result = p.run()
        wait_for(lambda: len(stored_bodies(target)) >= 50, "the job to move some messages")
        portable.stop_workers()
        result.cancel()
    moved = {body for body, _ in stored_bodies(target)}
    # What the dead workers held comes back once its visibility timeout (5 s) runs out.
    wait_for(
        lambda: queue_counts(sync_client, source)[1] == 0, "held messages to return", timeout=60
    )
    left = {body for body, _ in stored_bodies(source)}
    assert moved <= sent and moved | left == sent  # every message moved or back in the source
