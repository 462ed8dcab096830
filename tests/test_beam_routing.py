"""WriteToSqs with dynamic destinations, a serializer and FIFO helpers, on the DirectRunner."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from beam_adapter import QueueField, WriteToSqs, stable_hash
from sqs_async.testing import LocalSqsServer

from .conftest import bodies, drain, make_queue, options

# Runs Beam pipelines, subprocesses or the benchmark endpoint (`make test-quick` skips it).
pytestmark = pytest.mark.integration

FAILED = WriteToSqs.FAILED_OUTPUT


def test_three_queues_from_one_pipeline_one_missing(
    server: LocalSqsServer, sync_client: Any
) -> None:
    urls = [make_queue(sync_client) for _ in range(2)]
    names = [url.rsplit("/", 1)[1] for url in urls] + ["missing-queue"]
    records = [{"MessageBody": str(i), "queue": names[i % 3]} for i in range(90)]

    def failed_summary(failed: tuple[dict[str, Any], dict[str, Any]]) -> tuple[str, str, str]:
        record, error = failed
        return (record["queue"], record["MessageBody"], error["Code"])

    with beam.Pipeline(options=options(server)) as p:
        output = p | beam.Create(records) | WriteToSqs(queue_name=QueueField("queue"))
        assert_that(
            output[FAILED] | beam.Map(failed_summary),
            equal_to([("missing-queue", str(i), "QueueDoesNotExist") for i in range(2, 90, 3)]),
        )
    for n, url in enumerate(urls):
        assert Counter(bodies(sync_client, url)) == Counter(str(i) for i in range(n, 90, 3))


def test_fifo_pipeline_with_serializer_group_and_dedup_helpers(
    server: LocalSqsServer, sync_client: Any
) -> None:
    """Domain records, serialized; one group per user; the pipeline runs twice (as a retried
    bundle would) and each event is stored once, each user's events in order."""
    queue_url = make_queue(sync_client, FifoQueue="true")
    events = [{"user": f"u{i % 4}", "seq": i} for i in range(60)]
    for _ in range(2):
        with beam.Pipeline(options=options(server)) as p:
            output = (
                p
                | beam.Create([events])  # one element: the order the DoFn sees is defined
                | WriteToSqs(
                    queue_url=queue_url,
                    serializer=json.dumps,
                    message_group_id=lambda event: event["user"],
                    message_deduplication_id=stable_hash,
                )
            )
            assert_that(output[FAILED], equal_to([]))
    received = drain(sync_client, queue_url)
    assert sorted(json.loads(m["Body"])["seq"] for m in received) == list(range(60))
    for user in ("u0", "u1", "u2", "u3"):
        seqs = [json.loads(m["Body"])["seq"] for m in received if m["Body"].count(f'"{user}"')]
        assert seqs == sorted(seqs) and len(seqs) == 15


def test_display_data_names_the_routing(server: LocalSqsServer) -> None:
    from apache_beam.transforms.display import DisplayData

    from beam_adapter.sink import _WriteToSqsFn

    transform = WriteToSqs(queue_name=QueueField("queue"))
    fn = _WriteToSqsFn(transform._config, transform._sink)
    items = {item.key: item.value for item in DisplayData.create_from(fn).items}
    assert items["queue"] == "the queue in each record's 'queue' field"
