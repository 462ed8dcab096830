"""What the transforms tell the runner and the user: throttling time in the counters runners
read, exact delete counts for bounded reads, and type hints Beam can use."""

from __future__ import annotations

import functools
import itertools
import logging
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.typehints import decorators as typehint_decorators
from apache_beam.typehints import typehints
from botocore.exceptions import ConnectionClosedError

from beam_adapter import METRICS_NAMESPACE, ReadFromSqs, WriteToSqs, sink
from sqs_async import SendResult
from sqs_async.results import COUNTERS
from sqs_async.testing import LocalSqsServer

from .conftest import bodies, options, queue_counts
from .faults import FaultyClient, Forwarding, client_error
from .test_beam_source import fill

# Runs Beam pipelines (`make test-quick` skips it).
pytestmark = pytest.mark.integration

THROTTLED_CALLS = 5  # backoffs 0.1, 0.2, 0.4, 0.8, 1.6 s (plus jitter): over a second in all


def counters(result: Any) -> dict[tuple[str, str], int]:
    query = result.metrics().query(MetricsFilter())
    return {(c.key.metric.namespace, c.key.metric.name): c.committed for c in query["counters"]}


def assert_throttling_reported(got: dict[tuple[str, str], int]) -> None:
    millis = got[("beam-throttling-metrics", "throttling-msecs")]
    assert millis >= 1000, got
    assert got[(METRICS_NAMESPACE, "throttled_ms")] == millis
    # The same time in whole seconds (one DoFn instance: its fractions are carried over).
    assert got[(METRICS_NAMESPACE, "cumulativeThrottlingSeconds")] == millis // 1000


def throttle_first_sends(call: int) -> BaseException | None:
    return client_error("ThrottlingException") if call <= THROTTLED_CALLS else None


def test_the_sink_reports_time_throttled(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    wrapper = functools.partial(FaultyClient, request_fault=throttle_first_sends)
    p = beam.Pipeline(options=options(server))
    _ = (
        p
        | beam.Create([["a", "b", "c"]])
        | WriteToSqs(
            queue_url=queue_url,
            max_trials=THROTTLED_CALLS + 1,
            max_in_flight=2,
            client_wrapper=wrapper,
        )
    )
    result = p.run()
    result.wait_until_finish()
    got = counters(result)
    assert got[(METRICS_NAMESPACE, "messages_sent")] == 3
    assert got[(METRICS_NAMESPACE, "throttled")] >= THROTTLED_CALLS
    assert_throttling_reported(got)
    assert sorted(bodies(sync_client, queue_url)) == ["a", "b", "c"]


def throttled_then_cut_off(call: int) -> BaseException | None:
    """The first request is throttled; the second loses its connection (SQS may have
    accepted its entries: they are possible duplicates)."""
    if call == 1:
        return client_error("ThrottlingException")
    if call == 2:
        return ConnectionClosedError(endpoint_url="http://127.0.0.1:9")
    return None


def flaky_once(body: str, attempt: int) -> tuple[str, bool] | None:
    return ("InternalError", False) if body == "flaky" and attempt == 1 else None


def test_the_sink_reports_every_declared_counter_under_its_metric_name(
    server: LocalSqsServer, sync_client: Any, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each counter `SendResult` declares (`sqs_async.results.COUNTERS`) is reported under its
    metric name with the value the engine counted (seconds as milliseconds), and the failures
    as `messages_failed` and `failed_<code>`."""
    results: list[SendResult] = []  # what the sink was given (FnApiRunner: in this process)
    record = sink._Metrics.record

    def recording(self: Any, result: SendResult) -> None:
        results.append(result)
        record(self, result)

    monkeypatch.setattr(sink._Metrics, "record", recording)
    wrapper = functools.partial(
        FaultyClient, request_fault=throttled_then_cut_off, entry_fault=flaky_once
    )
    p = beam.Pipeline(options=options(server))
    _ = (
        p
        | beam.Create([["a", "b", "c", "flaky", 42]])
        | WriteToSqs(queue_url=queue_url, max_trials=4, max_in_flight=2, client_wrapper=wrapper)
    )
    result = p.run()
    result.wait_until_finish()
    got = counters(result)
    total = SendResult()
    for part in results:
        total.absorb(part)
    # These faults make every counter count but `reordered` (FIFO only).
    made = ["delivered_count", "requests", "retried", "throttled", "bytes_delivered"]
    made += ["throttled_seconds", "possible_duplicates"]
    assert all(getattr(total, name) for name in made), total.counters()
    assert total.latencies
    for declared in COUNTERS:
        value = getattr(total, declared.name)
        if declared.distribution:
            query = result.metrics().query(MetricsFilter().with_name(declared.metric))
            [distribution] = query["distributions"]
            assert distribution.key.metric.namespace == METRICS_NAMESPACE
            assert distribution.committed.count == len(value)
            assert distribution.committed.sum == sum(int(v * declared.scale) for v in value)
        else:  # present even when 0
            assert got[(METRICS_NAMESPACE, declared.metric)] == int(value * declared.scale)
    assert got[(METRICS_NAMESPACE, "messages_sent")] == 4
    assert got[(METRICS_NAMESPACE, "messages_failed")] == len(total.failed) == 1
    assert got[(METRICS_NAMESPACE, "failed_InvalidRecord")] == 1
    assert got[("_SqsWriteFn", "total_elements_count")] == 5
    assert got[(METRICS_NAMESPACE, "throttled_ms")] == got.get(
        ("beam-throttling-metrics", "throttling-msecs"), 0
    )
    assert sorted(bodies(sync_client, queue_url)) == ["a", "b", "c", "flaky"]


_receives = itertools.count(1)


class ThrottledReceives(Forwarding):
    """Forwards to the real client; the first receives (in this process) are throttled."""

    async def receive_message(self, **kwargs: Any) -> Any:
        if next(_receives) <= THROTTLED_CALLS:
            raise client_error("ThrottlingException", operation="ReceiveMessage")
        return await self.inner.receive_message(**kwargs)


def test_the_source_reports_time_throttled(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    global _receives
    _receives = itertools.count(1)
    fill(server, queue_url, 20)
    p = beam.Pipeline(options=options(server))
    _ = p | ReadFromSqs(
        queue_url=queue_url,
        max_messages=20,
        wait_time_seconds=1,
        concurrent_receives=1,
        client_wrapper=ThrottledReceives,
    )
    result = p.run()
    result.wait_until_finish()
    got = counters(result)
    assert got[(METRICS_NAMESPACE, "messages_received")] == 20
    assert_throttling_reported(got)
    assert queue_counts(sync_client, queue_url) == (0, 0)


@pytest.mark.parametrize(
    "bundle_size",
    [1000, 50],  # one bundle (on a fast server) or at least ten
)
@pytest.mark.parametrize("readers", [1, 3])
def test_a_bounded_read_counts_every_delete(
    server: LocalSqsServer, sync_client: Any, queue_url: str, bundle_size: int, readers: int
) -> None:
    fill(server, queue_url, 500)
    p = beam.Pipeline(options=options(server))
    _ = p | ReadFromSqs(
        queue_url=queue_url,
        max_messages=500,
        bundle_size=bundle_size,
        readers=readers,
        wait_time_seconds=1,
    )
    result = p.run()
    result.wait_until_finish()
    got = counters(result)
    assert queue_counts(sync_client, queue_url) == (0, 0)  # all 500 deleted
    # Several readers may receive more than they emit (and release the rest at once).
    assert got[(METRICS_NAMESPACE, "messages_received")] >= 500
    assert got[(METRICS_NAMESPACE, "messages_deleted")] == 500
    assert got.get((METRICS_NAMESPACE, "delete_failures"), 0) == 0


def test_an_until_empty_read_counts_every_delete(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    fill(server, queue_url, 120)
    p = beam.Pipeline(options=options(server))
    _ = p | ReadFromSqs(queue_url=queue_url, until_empty=True, wait_time_seconds=1)
    result = p.run()
    result.wait_until_finish()
    got = counters(result)
    assert queue_counts(sync_client, queue_url) == (0, 0)
    assert got[(METRICS_NAMESPACE, "messages_deleted")] == 120


def test_delete_after_output_counts_every_delete(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    fill(server, queue_url, 30)
    p = beam.Pipeline(options=options(server))
    _ = p | ReadFromSqs(
        queue_url=queue_url, max_messages=30, wait_time_seconds=1, delete_after="output"
    )
    result = p.run()
    result.wait_until_finish()
    assert counters(result)[(METRICS_NAMESPACE, "messages_deleted")] == 30
    assert queue_counts(sync_client, queue_url) == (0, 0)


@pytest.mark.parametrize("rows", [False, True], ids=["dicts", "rows"])
def test_a_pipeline_with_both_transforms_logs_no_string_type_hints(
    server: LocalSqsServer,
    sync_client: Any,
    queue_url: str,
    caplog: pytest.LogCaptureFixture,
    rows: bool,
) -> None:
    from beam_adapter import RowToEntry

    caplog.set_level(logging.INFO)  # as sqs_pyio's example sets the root logger
    target = sync_client.create_queue(QueueName=f"typed-target-{rows}")["QueueUrl"]
    fill(server, queue_url, 3)
    with beam.Pipeline(options=options(server)) as p:
        if rows:  # schema'd rows both ways
            read = ReadFromSqs(
                queue_url=queue_url, max_messages=3, wait_time_seconds=1, format="STRING"
            )
            _ = p | read | WriteToSqs(queue_url=target, serializer=RowToEntry())
        else:
            _ = (
                p
                | ReadFromSqs(queue_url=queue_url, max_messages=3, wait_time_seconds=1)
                | beam.Map(lambda record: record["Body"])
                | WriteToSqs(queue_url=target)
            )
    noise = [r.getMessage() for r in caplog.records if "string literal type hint" in r.getMessage()]
    assert noise == []
    assert sorted(bodies(sync_client, target)) == ["m0", "m1", "m2"]


def test_beam_checks_a_pipeline_against_the_read_s_output_type() -> None:
    p = beam.Pipeline(options=options_without_server())
    read = p | ReadFromSqs(queue_url="http://127.0.0.1:9/1/q", max_messages=1)
    assert read.element_type == typehints.Dict[str, typehints.Any]
    with pytest.raises(typehint_decorators.TypeCheckError):
        _ = read | beam.Map(lambda n: n + 1).with_input_types(int)


def options_without_server() -> Any:
    from apache_beam.options.pipeline_options import PipelineOptions

    from .conftest import LOCAL_RUNNER

    return PipelineOptions([LOCAL_RUNNER])
