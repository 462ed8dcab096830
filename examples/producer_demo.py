"""The streaming producer: a service hands over messages one at a time.

python examples/producer_demo.py --local
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

import boto3

from sqs_async import Delivered, SqsProducer
from sqs_async.testing import LocalSqsServer


async def handle_requests(queue_url: str, **settings: Any) -> None:
    async with SqsProducer(queue_url=queue_url, linger=0.005, **settings) as producer:

        async def handler(order: int) -> None:  # e.g. one web request
            future = await producer.put({"MessageBody": f"order {order} shipped"})
            outcome = await future
            if not isinstance(outcome, Delivered):
                print(f"order {order} not sent: {outcome.code}: {outcome.message}")

        await asyncio.gather(*(handler(order) for order in range(100)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--local", action="store_true", help="start a local SQS server first")
    parser.add_argument("--queue-url", help="an existing queue (without --local)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        settings: dict[str, Any] = {}
        queue_url = args.queue_url
        if args.local:
            settings = stack.enter_context(LocalSqsServer()).client_settings
            queue_url = boto3.client("sqs", **settings).create_queue(QueueName="shipments")[
                "QueueUrl"
            ]
        asyncio.run(handle_requests(queue_url, **settings))
        count = boto3.client("sqs", **settings).get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        print(f"{count} messages in the queue")


if __name__ == "__main__":
    main()
