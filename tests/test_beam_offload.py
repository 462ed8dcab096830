"""Large payloads through the Beam transforms, configured by pipeline options (`--s3_bucket`,
`--s3_cleanup`): `Create | WriteToSqs` of 5 MiB records, then `ReadFromSqs` gets them back
exactly, with where each payload was, and the objects are gone after bundle finalization.
The engine's entry points: `test_offload.py`."""

from __future__ import annotations

from typing import Any

import apache_beam as beam
import boto3
import pytest
from apache_beam.testing.util import assert_that, equal_to
from botocore.config import Config

from beam_adapter import ReadFromSqs, WriteToSqs
from sqs_async.offload import S3Offload
from sqs_async.testing import LOCAL_CREDENTIALS, LocalSqsServer

from .conftest import options, queue_counts

# Runs Beam pipelines (`make test-quick` skips it).
pytestmark = pytest.mark.integration

BUCKET = "beam-payloads"
RECORDS = [f"record {i} " + "ü✓" * (5 * 1024 * 1024 // 5) for i in range(3)] + ["small"]


def test_large_records_through_write_to_sqs_and_read_from_sqs(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        config=Config(s3={"addressing_style": "path"}),
        **LOCAL_CREDENTIALS,
    )
    s3.create_bucket(Bucket=BUCKET)
    with beam.Pipeline(options=options(server, f"--s3_bucket={BUCKET}")) as p:
        records = p | beam.Create(RECORDS)
        written = records | WriteToSqs(queue_url=queue_url)
        assert_that(written[WriteToSqs.FAILED_OUTPUT], equal_to([]), label="none failed")
        # A stage given explicitly wins over the options: its bucket does not exist.
        missing = records | "ToMissing" >> WriteToSqs(
            queue_url=queue_url, payload_stage=S3Offload(bucket="no-such-bucket")
        )
        assert_that(
            missing[WriteToSqs.FAILED_OUTPUT] | beam.Map(lambda pair: (pair[0], pair[1]["Code"])),
            equal_to([(record, "NoSuchBucket") for record in RECORDS[:3]]),
            label="the large ones failed",
        )
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 3

    with beam.Pipeline(options=options(server, f"--s3_bucket={BUCKET}", "--s3_cleanup")) as p:
        read = p | ReadFromSqs(
            queue_url=queue_url, max_messages=len(RECORDS) + 1, wait_time_seconds=1
        )
        assert_that(
            read
            | beam.Map(lambda r: (r["Body"], r.get("PayloadLocation", "").startswith("s3://"))),
            equal_to([(record, record != "small") for record in [*RECORDS, "small"]]),
        )
    assert queue_counts(sync_client, queue_url) == (0, 0)
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
