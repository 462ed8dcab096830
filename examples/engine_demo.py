"""Send messages with the sqs_async engine to an embedded local SQS server and read them back.

Run with `make demo` (or `python examples/engine_demo.py --count 500`). No AWS account needed:
the server is moto's, on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import boto3

from sqs_async import LocalSqsServer, SqsSender


async def send(queue_url: str, count: int, server: LocalSqsServer) -> int:
    messages = [{"Id": str(i), "MessageBody": f"message {i}"} for i in range(count)]
    async with SqsSender(queue_url=queue_url, **server.client_settings) as sender:
        result = await sender.send(messages)
    for failed in result.failed:
        print(f"failed: {failed.record!r}: {failed.code}: {failed.message}")
    return len(result.delivered)


def read_back(client: Any, queue_url: str) -> int:
    count = 0
    while messages := client.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300
    ).get("Messages"):
        count += len(messages)
        client.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100, help="messages to send")
    args = parser.parse_args()
    with LocalSqsServer() as server:
        client = boto3.client("sqs", **server.client_settings)
        queue_url = client.create_queue(QueueName="sqs-async-demo")["QueueUrl"]
        print(f"local SQS server at {server.endpoint_url}, queue {queue_url}")
        delivered = asyncio.run(send(queue_url, args.count, server))
        print(f"{delivered} messages delivered, {read_back(client, queue_url)} read back")


if __name__ == "__main__":
    main()
