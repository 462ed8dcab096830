"""A Beam pipeline that writes to SQS and sends what could not be delivered to a dead-letter
queue, with the reason attached.

    python examples/dead_letter_pipeline.py --local     # embedded server on 127.0.0.1
"""

from __future__ import annotations

import argparse
import contextlib

import apache_beam as beam
import boto3
from apache_beam.options.pipeline_options import PipelineOptions

from beam_adapter import SqsOptions, WriteToSqs
from sqs_async.testing import LocalSqsServer


def run(pipeline_args: list[str], queue: str, dead_letters: str) -> None:
    orders = [{"Id": str(i), "MessageBody": f"order {i}"} for i in range(20)]
    orders.append({"Id": "bad", "MessageBody": ""})  # SQS refuses empty bodies

    with beam.Pipeline(options=PipelineOptions(pipeline_args)) as p:
        written = p | beam.Create(orders) | "Orders" >> WriteToSqs(queue_name=queue)
        (
            written[WriteToSqs.FAILED_OUTPUT]
            | "Explain" >> beam.MapTuple(lambda _, error: f"{error['Code']}: {error['Message']}")
            | "DeadLetters" >> WriteToSqs(queue_name=dead_letters)
        )


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
            for name in ("orders", "orders-dead-letters")
        }
        run(pipeline_args, "orders", "orders-dead-letters")
        for name, url in urls.items():
            count = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
            print(f"{name}: {count} messages")


if __name__ == "__main__":
    main()
