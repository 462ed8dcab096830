"""The sqs_pyio example pipeline, with only the import changed to beam_adapter.

Creates N `{"Id", "MessageBody"}` elements, writes them to a queue, reports the approximate
number of messages in the queue and purges it.

    python examples/pipeline.py --local                      # embedded server on 127.0.0.1
    python examples/pipeline.py --region_name=eu-west-1      # real SQS, standard AWS credentials
    python examples/pipeline.py --endpoint_url=http://127.0.0.1:4566 --region_name=us-east-1
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from typing import Any

import apache_beam as beam
import boto3
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions
from botocore.exceptions import ClientError

from beam_adapter import SqsOptions, WriteToSqs
from sqs_async.testing import LocalSqsServer

QUEUE_NAME = "sqs-pyio-test"


def sqs_client(options: PipelineOptions) -> Any:
    return boto3.client("sqs", **options.view_as(SqsOptions).sender_settings())


def get_queue_url(client: Any, queue_name: str) -> str:
    try:
        return str(client.get_queue_url(QueueName=queue_name)["QueueUrl"])
    except ClientError as error:
        if error.response["Error"].get("QueryErrorCode") != "QueueDoesNotExist":
            raise
        return str(client.create_queue(QueueName=queue_name)["QueueUrl"])


def check_number_of_messages(client: Any, queue_url: str) -> str:
    response = client.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    count = response["Attributes"]["ApproximateNumberOfMessages"]
    return f"{count} messages are found approximately!"


def purge_queue(client: Any, queue_url: str) -> None:
    try:
        client.purge_queue(QueueUrl=queue_url)
    except ClientError as error:
        if error.response["Error"].get("QueryErrorCode") != "PurgeQueueInProgress":
            raise


def run(known_args: argparse.Namespace, pipeline_args: list[str]) -> None:
    pipeline_options = PipelineOptions(pipeline_args)
    pipeline_options.view_as(SetupOptions).save_main_session = True
    print(f"known_args - {known_args}")
    print(f"pipeline options - {pipeline_options.display_data()}")  # secrets are masked

    with beam.Pipeline(options=pipeline_options) as p:
        (
            p
            | "CreateElements"
            >> beam.Create(
                [{"Id": str(i), "MessageBody": str(i)} for i in range(known_args.num_records)]
            )
            | "WriteToSqs"
            >> WriteToSqs(
                queue_name=known_args.queue_name,
                max_trials=3,
                append_error=True,
                failed_output="my-failed-output",
            )
        )
        logging.getLogger().setLevel(logging.INFO)
        logging.info("Building pipeline ...")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Beam pipeline arguments")
    parser.add_argument("--queue_name", default=QUEUE_NAME, type=str, help="SQS queue name")
    parser.add_argument("--num_records", default=100, type=int, help="Number of records")
    parser.add_argument(
        "--local", action="store_true", help="start an embedded SQS server on 127.0.0.1 first"
    )
    known_args, pipeline_args = parser.parse_known_args(argv)

    with contextlib.ExitStack() as stack:
        if known_args.local:
            server = stack.enter_context(LocalSqsServer())
            pipeline_args += [f"--{key}={value}" for key, value in server.client_settings.items()]
            print(f">> local SQS server at {server.endpoint_url}")
            if not any(arg.startswith("--runner") for arg in pipeline_args):
                # DirectRunner would first try to download the Prism runner from GitHub.
                pipeline_args.append("--runner=FnApiRunner")
        client = sqs_client(PipelineOptions(pipeline_args))
        queue_url = get_queue_url(client, known_args.queue_name)
        print(">> start pipeline...")
        run(known_args, pipeline_args)
        time.sleep(1)
        print(check_number_of_messages(client, queue_url))
        print(">> purge existing messages...")
        purge_queue(client, queue_url)


if __name__ == "__main__":
    main()
