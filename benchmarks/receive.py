"""Reading throughput: `SqsReceiver` against hand-written peers, on the benchmark endpoint.

    python -m benchmarks.receive [--messages 20000] [--latency-ms 20] [--concurrency 8]

The endpoint is loaded with numbered messages, then each contender reads and deletes them
all: `boto3_sequential` (receive 10, delete them, repeat: what a plain script does),
`aiobotocore_raw` (`concurrency` such loops at once, no retries or visibility upkeep) and
`sqs_async` (`SqsReceiver` with `concurrent_receives=concurrency`, acks 100 at a time).
Each run is checked from the endpoint's record: every message deleted exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import boto3
from aiobotocore.session import get_session

from sqs_async import SqsReceiver, SqsSender

from .contenders import CREDENTIALS
from .harness import EndpointProcess, Scenario

WAIT_SECONDS = 1  # the final, empty poll of each reader costs this much


def boto3_sequential(url: str, queue: str, concurrency: int) -> None:
    client = boto3.client("sqs", endpoint_url=url, **CREDENTIALS)
    queue_url = client.get_queue_url(QueueName=queue)["QueueUrl"]
    while messages := client.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=WAIT_SECONDS
    ).get("Messages"):
        client.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )


async def aiobotocore_raw(url: str, queue: str, concurrency: int) -> None:
    async with get_session().create_client("sqs", endpoint_url=url, **CREDENTIALS) as client:
        queue_url = (await client.get_queue_url(QueueName=queue))["QueueUrl"]

        async def loop() -> None:
            while True:
                response = await client.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=WAIT_SECONDS
                )
                messages = response.get("Messages")
                if not messages:
                    return
                await client.delete_message_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )

        await asyncio.gather(*(loop() for _ in range(concurrency)))


async def sqs_async(url: str, queue: str, concurrency: int) -> None:
    async with SqsReceiver(
        queue_name=queue,
        endpoint_url=url,
        concurrent_receives=concurrency,
        prefetch=100 * concurrency,
        wait_time_seconds=WAIT_SECONDS,
        **CREDENTIALS,
    ) as receiver:
        batch = []
        async for message in receiver.messages(until_empty=True):
            batch.append(message)
            if len(batch) == 100:
                await receiver.ack(batch)
                batch = []
        await receiver.ack(batch)


CONTENDERS = {
    "boto3_sequential": lambda *a: boto3_sequential(*a),
    "aiobotocore_raw": lambda *a: asyncio.run(aiobotocore_raw(*a)),
    "sqs_async": lambda *a: asyncio.run(sqs_async(*a)),
}


async def load(url: str, queue: str, count: int) -> None:
    async with SqsSender(
        queue_name=queue, endpoint_url=url, max_in_flight=32, **CREDENTIALS
    ) as sender:
        bodies = (f"{i:09d}:x" for i in range(count))
        result = await sender.send(bodies, keep_delivered=False)
    assert result.delivered_count == count, result.failed[:1]


def run(messages: int, latency_ms: float, concurrency: int) -> list[dict[str, Any]]:
    rows = []
    with EndpointProcess() as endpoint:
        for name, contender in CONTENDERS.items():
            count = messages if name != "boto3_sequential" else min(messages, 2000)
            endpoint.reset(Scenario(latency_ms=0, body_bytes=0, max_in_flight=1))
            asyncio.run(load(endpoint.url, "bench", count))
            endpoint.change_knobs(latency_ms=latency_ms, jitter=0.1)
            started = time.perf_counter()
            contender(endpoint.url, "bench", concurrency)
            seconds = time.perf_counter() - started - WAIT_SECONDS  # the final empty poll
            stats = endpoint.stats()
            rows.append(
                {
                    "contender": name,
                    "messages": count,
                    "msgs_per_s": round(count / seconds),
                    "lost": count - stats["deleted_unique"],
                    "deleted_twice": stats["deleted"] - stats["deleted_unique"],
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    rows = run(args.messages, args.latency_ms, args.concurrency)
    raw = next(r["msgs_per_s"] for r in rows if r["contender"] == "aiobotocore_raw")
    seq = next(r["msgs_per_s"] for r in rows if r["contender"] == "boto3_sequential")
    print(f"latency {args.latency_ms:g} ms, concurrency {args.concurrency}")
    print(
        "| contender | messages | msg/s | vs boto3_sequential | vs aiobotocore_raw "
        "| lost | deleted twice |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['contender']} | {r['messages']} | {r['msgs_per_s']} | "
            f"{r['msgs_per_s'] / seq:.2f}x | {r['msgs_per_s'] / raw:.2f}x | {r['lost']} | "
            f"{r['deleted_twice']} |"
        )
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
