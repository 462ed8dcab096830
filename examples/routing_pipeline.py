"""A Beam pipeline that routes domain events (not SQS entries) to a queue per event kind, and
keeps each account's ledger entries in order on a FIFO queue.

    python examples/routing_pipeline.py --local     # embedded server on 127.0.0.1
"""

from __future__ import annotations

import argparse
import contextlib
import json

import apache_beam as beam
import boto3
from apache_beam.options.pipeline_options import PipelineOptions

from beam_adapter import SqsOptions, WriteToSqs, stable_hash
from sqs_async.testing import LocalSqsServer


def run(pipeline_args: list[str]) -> None:
    events = [{"kind": ("signup", "login")[i % 2], "user": f"u{i}"} for i in range(20)]
    ledger = [{"account": f"a{i % 3}", "amount": i} for i in range(30)]
    by_kind = WriteToSqs(
        queue_name=lambda event: f"{event['kind']}-events",  # a queue per kind
        serializer=json.dumps,  # any record becomes a body
    )
    in_order = WriteToSqs(
        queue_name="ledger.fifo",
        serializer=json.dumps,
        message_group_id=lambda entry: entry["account"],  # order kept per account
        message_deduplication_id=stable_hash,  # a retried bundle is not stored twice
    )
    with beam.Pipeline(options=PipelineOptions(pipeline_args)) as p:
        p | "Events" >> beam.Create(events) | "ByKind" >> by_kind
        # One element: the order in which the sink sees an account's entries is defined.
        p | "Ledger" >> beam.Create([ledger]) | "InOrder" >> in_order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--local", action="store_true", help="start a local SQS server first")
    known, pipeline_args = parser.parse_known_args()
    with contextlib.ExitStack() as stack:
        if known.local:
            server = stack.enter_context(LocalSqsServer())
            pipeline_args += [f"--{k}={v}" for k, v in server.client_settings.items()]
            pipeline_args.append("--runner=FnApiRunner")  # DirectRunner would fetch Prism
        sqs = boto3.client(
            "sqs", **PipelineOptions(pipeline_args).view_as(SqsOptions).sender_settings()
        )
        urls = {
            name: sqs.create_queue(QueueName=name)["QueueUrl"]
            for name in ("signup-events", "login-events")
        }
        urls["ledger.fifo"] = sqs.create_queue(
            QueueName="ledger.fifo", Attributes={"FifoQueue": "true"}
        )["QueueUrl"]
        run(pipeline_args)
        for name, url in urls.items():
            count = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
            print(f"{name}: {count} messages")


if __name__ == "__main__":
    main()
