"""Send messages with the sqs_async engine to an embedded local SQS server and read them back
with its receiver.

    python examples/engine_demo.py                # 100 messages
    python examples/engine_demo.py --count 500

No AWS account needed: the server is moto's, on 127.0.0.1, started by the example itself.
"""

from __future__ import annotations

import argparse
import asyncio

import boto3

from sqs_async import SqsReceiver, SqsSender
from sqs_async.testing import LocalSqsServer


async def send(queue_url: str, count: int, server: LocalSqsServer) -> int:
    messages = [{"Id": str(i), "MessageBody": f"message {i}"} for i in range(count)]
    async with SqsSender(queue_url=queue_url, **server.client_settings) as sender:
        result = await sender.send(messages)
    for failed in result.failed:
        print(f"failed: {failed.record!r}: {failed.code}: {failed.message}")
    return len(result.delivered)


async def read_back(queue_url: str, server: LocalSqsServer) -> int:
    count = 0
    # until_empty ends after a poll waited wait_time_seconds in vain: 1 s, not the default 20.
    settings = {"wait_time_seconds": 1, **server.client_settings}
    async with SqsReceiver(queue_url=queue_url, **settings) as receiver:
        batch = []
        async for message in receiver.messages(until_empty=True):
            batch.append(message)  # ... handle message.body here ...
            if len(batch) == 100:
                await receiver.ack(batch)  # deleted, ten per request
                count, batch = count + len(batch), []
        await receiver.ack(batch)
    return count + len(batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100, help="messages to send")
    args = parser.parse_args()
    with LocalSqsServer() as server:
        client = boto3.client("sqs", **server.client_settings)
        queue_url = client.create_queue(QueueName="sqs-async-demo")["QueueUrl"]
        print(f"local SQS server at {server.endpoint_url}, queue {queue_url}")
        delivered = asyncio.run(send(queue_url, args.count, server))
        read = asyncio.run(read_back(queue_url, server))
        print(f"{delivered} messages delivered, {read} read back")


if __name__ == "__main__":
    main()
