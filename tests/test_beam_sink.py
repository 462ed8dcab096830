"""WriteToSqs on the DirectRunner against the local server: read back what was written."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import util as beam_testing
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import window
from apache_beam.transforms.util import BatchElements, GroupIntoBatches

from beam_adapter import METRICS_NAMESPACE, SqsClientError, WriteToSqs
from sqs_async.testing import LocalSqsServer

from .conftest import bodies, options
from .faults import FaultyClient

# Runs Beam pipelines, subprocesses or the benchmark endpoint (`make test-quick` skips it).
pytestmark = pytest.mark.integration

FAILED = WriteToSqs.FAILED_OUTPUT


def seed_records(n: int) -> list[dict[str, str]]:
    return [{"Id": str(i), "MessageBody": str(i)} for i in range(n)]


ELEMENT_FORMS = {
    "list": lambda p, recs: p | beam.Create([recs[:7], recs[7:]]),
    "tuple": lambda p, recs: p | beam.Create([("key", recs)]),
    "single dict": lambda p, recs: p | beam.Create(recs),
    "single str": lambda p, recs: p | beam.Create([r["MessageBody"] for r in recs]),
    "BatchElements": lambda p, recs: (
        p | beam.Create(recs) | BatchElements(min_batch_size=2, max_batch_size=2)
    ),
    "GroupIntoBatches": lambda p, recs: (
        p | beam.Create([(i % 2, r) for i, r in enumerate(recs)]) | GroupIntoBatches(batch_size=2)
    ),
}


@pytest.mark.parametrize("form", ELEMENT_FORMS)
def test_every_element_form_arrives_exactly_once(
    form: str, server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    records = seed_records(23)  # more than 10 in one list: split, not rejected
    with beam.Pipeline(options=options(server)) as p:
        output = ELEMENT_FORMS[form](p, records) | WriteToSqs(queue_url=queue_url)
        assert_that(output[None], equal_to([]), label="no main output")
        assert_that(output[FAILED], equal_to([]), label="nothing failed")
    assert Counter(bodies(sync_client, queue_url)) == Counter(str(i) for i in range(23))


def test_seed_pipeline_by_queue_name_and_seed_arguments(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    name = queue_url.rsplit("/", 1)[1]
    with beam.Pipeline(options=options(server)) as p:
        (
            p
            | beam.Create(seed_records(30))
            | BatchElements(min_batch_size=10, max_batch_size=10)
            | WriteToSqs(
                queue_name=name, max_trials=3, append_error=True, failed_output="my-failed-output"
            )
        )
    assert sorted(bodies(sync_client, queue_url), key=int) == [str(i) for i in range(30)]


def bad_after_first_try(body: str, attempt: int) -> tuple[str, bool] | None:
    if body.startswith("bad"):
        return ("InternalError", False)
    return None


def windowed(records: list[Any]) -> Any:
    return (
        beam.Create([(r, ts) for r, ts in records])
        | beam.MapTuple(lambda r, ts: window.TimestampedValue(r, ts))
        | beam.WindowInto(window.FixedWindows(10))
    )


@pytest.mark.parametrize(
    ("append_error", "error_shape"), [(True, "tuple"), (True, "key"), (False, "tuple")]
)
def test_failed_records_keep_shape_window_and_timestamp(
    append_error: bool,
    error_shape: Any,
    server: LocalSqsServer,
    sync_client: Any,
    queue_url: str,
) -> None:
    inputs = [
        ({"Id": "a", "MessageBody": "ok-1"}, 1),
        ({"Id": "b", "MessageBody": "bad-transient"}, 12),
        ({"Id": "c", "MessageBody": ""}, 25),  # invalid: empty body
        ("ok-2", 3),
    ]
    wrapper = functools.partial(FaultyClient, entry_fault=bad_after_first_try, reverse_results=True)
    expected_records: list[Any]
    errors = [
        {"Id": "b", "SenderFault": False, "Code": "InternalError", "Message": "InternalError"},
        {
            "Id": "c",
            "SenderFault": True,
            "Code": "InvalidMessageBody",
            "Message": "MessageBody is empty; SQS requires at least 1 character",
        },
    ]
    if append_error and error_shape == "tuple":
        # sqs_pyio 0.1.0's shape: (record, that record's own error)
        expected_records = [(inputs[1][0], errors[0]), (inputs[2][0], errors[1])]
    elif append_error:
        expected_records = [
            {
                "Id": "b",
                "MessageBody": "bad-transient",
                "error": {
                    "Id": "b",
                    "SenderFault": False,
                    "Code": "InternalError",
                    "Message": "InternalError",
                },
            },
            {
                "Id": "c",
                "MessageBody": "",
                "error": {
                    "Id": "c",
                    "SenderFault": True,
                    "Code": "InvalidMessageBody",
                    "Message": "MessageBody is empty; SQS requires at least 1 character",
                },
            },
        ]
    else:
        expected_records = [inputs[1][0], inputs[2][0]]
    expected = [
        beam_testing.TestWindowedValue(expected_records[0], 12, [window.IntervalWindow(10, 20)]),
        beam_testing.TestWindowedValue(expected_records[1], 25, [window.IntervalWindow(20, 30)]),
    ]
    with beam.Pipeline(options=options(server)) as p:
        output = (
            p
            | windowed(inputs)
            | WriteToSqs(
                queue_url=queue_url,
                append_error=append_error,
                error_shape=error_shape,
                max_trials=2,
                client_wrapper=wrapper,
            )
        )
        assert_that(output[FAILED], equal_to(expected), reify_windows=True)
    assert sorted(bodies(sync_client, queue_url)) == ["ok-1", "ok-2"]


def code_by_body(body: str, attempt: int) -> tuple[str, bool] | None:
    return (f"Code-{body}", True) if body.startswith("bad") else None


def test_errors_go_to_their_own_records_when_sqs_answers_out_of_order(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    records = [
        {"Id": f"id-{b}", "MessageBody": b} for b in ["ok1", "bad1", "ok2", "bad2", "ok3", "bad3"]
    ]
    wrapper = functools.partial(FaultyClient, entry_fault=code_by_body, reverse_results=True)
    with beam.Pipeline(options=options(server)) as p:
        output = (
            p | beam.Create([records]) | WriteToSqs(queue_url=queue_url, client_wrapper=wrapper)
        )
        errors = output[FAILED] | beam.MapTuple(
            lambda record, error: (record["Id"], error["Id"], error["Code"])
        )
        assert_that(
            errors,
            equal_to(
                [
                    ("id-bad1", "id-bad1", "Code-bad1"),
                    ("id-bad2", "id-bad2", "Code-bad2"),
                    ("id-bad3", "id-bad3", "Code-bad3"),
                ]
            ),
        )
    assert sorted(bodies(sync_client, queue_url)) == ["ok1", "ok2", "ok3"]


def test_emit_delivered_gives_message_ids(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    with beam.Pipeline(options=options(server)) as p:
        output = p | beam.Create(["x", "y"]) | WriteToSqs(queue_url=queue_url, emit_delivered=True)
        ids = output[None] | beam.Map(lambda d: (d["record"], len(d["MessageId"]) > 0))
        assert_that(ids, equal_to([("x", True), ("y", True)]))
    assert sorted(bodies(sync_client, queue_url)) == ["x", "y"]


def counters(result: Any) -> dict[str, int]:
    query = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    return {c.key.metric.name: c.committed for c in query["counters"]}


def test_metrics_without_failures(server: LocalSqsServer, sync_client: Any, queue_url: str) -> None:
    p = beam.Pipeline(options=options(server))
    _ = p | beam.Create([seed_records(25)]) | WriteToSqs(queue_url=queue_url)
    result = p.run()
    result.wait_until_finish()
    got = counters(result)
    assert got["messages_sent"] == 25
    assert got["batches"] == 3
    assert got["bytes_sent"] == sum(len(str(i)) for i in range(25))
    assert got.get("messages_failed", 0) == 0
    query = result.metrics().query(MetricsFilter().with_name("batch_latency_ms"))
    assert query["distributions"][0].committed.count == 3
    assert len(bodies(sync_client, queue_url)) == 25


def test_metrics_with_failures(server: LocalSqsServer, sync_client: Any, queue_url: str) -> None:
    wrapper = functools.partial(FaultyClient, entry_fault=bad_after_first_try)
    p = beam.Pipeline(options=options(server))
    _ = (
        p
        | beam.Create([["ok", "bad-1", "bad-2", 42]])
        | WriteToSqs(queue_url=queue_url, max_trials=2, client_wrapper=wrapper)
    )
    result = p.run()
    result.wait_until_finish()
    got = counters(result)
    assert got["messages_sent"] == 1
    assert got["messages_failed"] == 3
    assert got["failed_InternalError"] == 2
    assert got["failed_InvalidRecord"] == 1
    assert got["messages_retried"] == 2
    assert bodies(sync_client, queue_url) == ["ok"]


def test_missing_queue_fails_the_pipeline_with_an_actionable_error(
    server: LocalSqsServer,
) -> None:
    pipeline = beam.Pipeline(options=options(server))
    _ = pipeline | beam.Create(["x"]) | WriteToSqs(queue_name="no-such-queue")
    with pytest.raises(Exception, match="no-such-queue") as raised:
        pipeline.run().wait_until_finish()
    assert "SqsClientError" in repr(raised.value) or isinstance(raised.value, SqsClientError)


def test_one_log_line_per_bundle(
    server: LocalSqsServer, queue_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with beam.Pipeline(options=options(server)) as p:
        _ = p | beam.Create([seed_records(25)]) | WriteToSqs(queue_url=queue_url)
    lines = [r.getMessage() for r in caplog.records if r.name in ("beam_adapter", "sqs_async")]
    assert len([line for line in lines if "total 25, succeeded 25, failed 0" in line]) == 1
    assert not [line for line in lines if line.startswith("total ")]


@pytest.mark.usefixtures("loopback_grpc")
def test_multi_process_direct_runner(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    opts = options(server, "--direct_running_mode=multi_processing", "--direct_num_workers=2")
    records = seed_records(40)
    with beam.Pipeline(options=opts) as p:
        output = (
            p
            | beam.Create([records[i : i + 5] for i in range(0, 40, 5)])
            | beam.Reshuffle()
            | WriteToSqs(queue_url=queue_url)
        )
        assert_that(output[FAILED], equal_to([]))
    assert sorted(bodies(sync_client, queue_url), key=int) == [str(i) for i in range(40)]


def test_invalid_elements_do_not_fail_the_pipeline(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    elements = [[{"Id": 1, "MessageBody": 1}, {"Id": "2", "MessageBody": "2"}], None, 3.5]
    with beam.Pipeline(options=options(server)) as p:
        output = p | beam.Create(elements) | WriteToSqs(queue_url=queue_url)
        codes = output[FAILED] | beam.MapTuple(lambda record, error: (repr(record), error["Code"]))
        assert_that(
            codes,
            equal_to(
                [
                    (repr({"Id": 1, "MessageBody": 1}), "InvalidMessageBody"),
                    ("None", "InvalidRecord"),
                    ("3.5", "InvalidRecord"),
                ]
            ),
        )
    assert bodies(sync_client, queue_url) == ["2"]


class _CountingFake:
    """Accepts every entry after a short delay, recording the peak of requests in flight.

    Stands in for the client (the wrapped real one is only used to open the sender), so a
    10,000-message bundle does not crawl through moto.
    """

    peak = 0
    requests = 0
    in_flight = 0

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        cls = type(self)
        cls.requests += 1
        cls.in_flight += 1
        cls.peak = max(cls.peak, cls.in_flight)
        try:
            await asyncio.sleep(0.005)
        finally:
            cls.in_flight -= 1
        return {"Successful": [{"Id": e["Id"], "MessageId": "m"} for e in kwargs["Entries"]]}

    async def get_queue_url(self, **kwargs: Any) -> dict[str, Any]:
        return await self.inner.get_queue_url(**kwargs)

    async def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]:
        return await self.inner.get_queue_attributes(**kwargs)


def test_a_bundle_of_single_messages_is_sent_concurrently(
    server: LocalSqsServer, queue_url: str
) -> None:
    p = beam.Pipeline(options=options(server))
    _ = (
        p
        | beam.Create([f"m{i}" for i in range(10_000)])
        | WriteToSqs(queue_url=queue_url, max_in_flight=8, client_wrapper=_CountingFake)
    )
    result = p.run()
    result.wait_until_finish()
    assert counters(result)["messages_sent"] == 10_000
    assert _CountingFake.requests == 1000
    assert _CountingFake.peak == 8
