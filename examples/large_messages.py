"""Send messages over SQS's 1 MiB limit through S3 and read them back, in AWS's
extended-client format (AWS's Java and Python extended clients read and write the same).

    python examples/large_messages.py

No AWS account needed: the local server (moto's, on 127.0.0.1, started here) serves S3 on
the same port as SQS.
"""

from __future__ import annotations

import asyncio

import boto3

from sqs_async import SqsReceiver, SqsSender
from sqs_async.offload import S3Offload
from sqs_async.testing import LocalSqsServer


async def round_trip(queue_url: str, server: LocalSqsServer) -> None:
    # Bodies over the queue's MaximumMessageSize go to S3; the message carries a pointer.
    offload = S3Offload(bucket="my-payloads", cleanup=True)
    report = "quarterly figures " * 200_000  # 3.6 MB
    settings = {"payload_stage": offload, **server.client_settings}
    async with SqsSender(queue_url=queue_url, **settings) as sender:
        result = await sender.send([report, "a small one stays in SQS"])
    print(f"sent {len(result.delivered)}, failed {len(result.failed)}")

    async with SqsReceiver(queue_url=queue_url, wait_time_seconds=1, **settings) as receiver:
        async for message in receiver.messages(until_empty=True):
            where = message.payload_location or "SQS"  # s3://my-payloads/<uuid>
            print(f"{len(message.body):,} characters, from {where}")
            await receiver.ack([message])  # with cleanup=True, its S3 object goes too


def main() -> None:
    with LocalSqsServer() as server:
        boto3.client("s3", **server.client_settings).create_bucket(Bucket="my-payloads")
        sqs = boto3.client("sqs", **server.client_settings)
        queue_url = sqs.create_queue(QueueName="documents")["QueueUrl"]
        asyncio.run(round_trip(queue_url, server))
        left = boto3.client("s3", **server.client_settings).list_objects_v2(Bucket="my-payloads")
        print(f"objects left in the bucket: {left['KeyCount']}")


if __name__ == "__main__":
    main()
