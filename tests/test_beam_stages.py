"""Payload stages through the Beam transforms: WriteToSqs sends what the stage makes (and
routes a record the stage refuses to the failed output), ReadFromSqs hands out what the stage
makes and tells it of each delete at bundle finalization. The engine's entry points:
`test_stages.py`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from beam_adapter import ReadFromSqs, WriteToSqs
from sqs_async.testing import LocalSqsServer

from .conftest import drain, options, queue_counts
from .stages import MARK, Gzip, Refuses, compress, decompress

# Runs Beam pipelines (`make test-quick` skips it).
pytestmark = pytest.mark.integration

RECORDS = [f"record {i}: " + "ü" * (i % 7) for i in range(40)]


def test_write_to_sqs_sends_what_the_stage_makes(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    with beam.Pipeline(options=options(server)) as p:
        written = (
            p
            | beam.Create([*RECORDS, "bad record"])
            | WriteToSqs(queue_url=queue_url, payload_stage=Refuses())
        )
        failed = written[WriteToSqs.FAILED_OUTPUT] | beam.Map(
            lambda pair: (pair[0], pair[1]["Code"], pair[1]["Message"], pair[1]["SenderFault"])
        )
        assert_that(failed, equal_to([("bad record", "ToyRefusal", "no bad records", True)]))
    assert sorted(m["Body"] for m in drain(sync_client, queue_url)) == sorted(RECORDS)

    with beam.Pipeline(options=options(server)) as p:
        _ = p | beam.Create(RECORDS) | WriteToSqs(queue_url=queue_url, payload_stage=Gzip())
    stored = drain(sync_client, queue_url)
    assert all(m["MessageAttributes"][MARK]["StringValue"] == "gzip+base64" for m in stored)
    assert sorted(decompress(m["Body"]) for m in stored) == sorted(RECORDS)


def test_read_from_sqs_hands_out_what_the_stage_makes(
    server: LocalSqsServer, sync_client: Any, queue_url: str, tmp_path: Path
) -> None:
    for record in RECORDS:
        sync_client.send_message(
            QueueUrl=queue_url,
            MessageBody=compress(record),
            MessageAttributes={MARK: {"DataType": "String", "StringValue": "gzip+base64"}},
        )
    log = tmp_path / "deleted.txt"
    with beam.Pipeline(options=options(server)) as p:
        read = p | ReadFromSqs(
            queue_url=queue_url,
            max_messages=len(RECORDS),
            wait_time_seconds=1,
            payload_stage=Gzip(deleted_log=log),
        )
        assert_that(
            read | beam.Map(lambda r: (r["Body"], MARK in r["MessageAttributes"])),
            equal_to([(record, False) for record in RECORDS]),
        )
    assert queue_counts(sync_client, queue_url) == (0, 0)
    assert sorted(log.read_text(encoding="utf-8").splitlines()) == sorted(RECORDS)
