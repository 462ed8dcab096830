"""Reading throughput: the read contenders of `python -m benchmarks`, and this module's own
short run of the hand-written peers.

    python -m benchmarks.receive [--messages 20000] [--latency-ms 20] [--concurrency 8]

A read scenario's queue is loaded by the endpoint itself (`EndpointProcess.load`: numbered
messages, not recorded as sent), then a contender reads and deletes them all, with
`concurrency` (the scenario's `max_in_flight`) receives at once:

* `aiobotocore_raw`: that many loops at once, each receives 10 and deletes them
  (`DeleteMessageBatch`), one client; no retries, no visibility upkeep;
* `boto3_threads`: the same loop on a pool of that many threads sharing one boto3 client;
* `boto3_sequential`: one such loop (this module's own run only: as slow as its requests);
* `sqs_async`: `SqsReceiver` with `concurrent_receives=concurrency`, acked 100 at a time,
  each batch in a task of its own, at most `concurrency // 10 + 2` at once, as the README
  advises (a reader that waits for each ack reads at most 100 messages per round trip:
  4,700 msg/s at 20 ms, whatever the concurrency);
* `read_from_sqs`: `ReadFromSqs(max_messages=N)`, a bounded read on the FnApiRunner;
* `sqs_to_sqs`: `ReadFromSqs | Map(body) | WriteToSqs` into a second queue, on the
  FnApiRunner: its rate is counted at the target (acceptances);
* `beam_read_floor`: no SQS at all: the same number of dicts shaped like `ReadFromSqs`'s,
  emitted by one DoFn on the FnApiRunner and dropped: Beam's own cost per element read.

Each run is checked from the endpoint's record (`harness.run_contender`): every message
deleted exactly once, none left; for `sqs_to_sqs`, every one also accepted once at the target.
Each reader stops once it has read the N messages it was given (a loop also stops on an empty
answer, after a poll of `WAIT_SECONDS`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from collections import deque
from typing import Any

from .contenders import CREDENTIALS, raw_client, sending

WAIT_SECONDS = 1  # a poll on an empty queue waits this long (a reader's last poll may)
ACK_BATCH = 100  # SqsReceiver's contender acks this many at a time, as the README does
TARGET_QUEUE = "bench-out"  # where `sqs_to_sqs` writes


def _entries(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]


def read_aiobotocore_raw(job: dict[str, Any]) -> tuple[int, int]:
    """`concurrency` loops at once, each: receive 10, delete them."""

    async def read() -> tuple[int, int]:
        async with raw_client(job) as client:
            queue_url = (await client.get_queue_url(QueueName=job["queue"]))["QueueUrl"]
            sending()
            counts = [0, 0]  # deleted, failed

            async def loop() -> None:
                while counts[0] + counts[1] < job["messages"]:
                    response = await client.receive_message(
                        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=WAIT_SECONDS
                    )
                    messages = response.get("Messages")
                    if not messages:
                        return
                    answer = await client.delete_message_batch(
                        QueueUrl=queue_url, Entries=_entries(messages)
                    )
                    counts[0] += len(answer.get("Successful", []))
                    counts[1] += len(answer.get("Failed", []))

            await asyncio.gather(*(loop() for _ in range(job["max_in_flight"])))
            return counts[0], counts[1]

    return asyncio.run(read())


def read_boto3_threads(job: dict[str, Any]) -> tuple[int, int]:
    """The same loop on a pool of `concurrency` threads sharing one client."""
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore.config import Config

    config = Config(
        max_pool_connections=job["max_in_flight"],
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    client = boto3.client(
        "sqs", endpoint_url=job["endpoint"], config=config, verify=job.get("verify"), **CREDENTIALS
    )
    queue_url = client.get_queue_url(QueueName=job["queue"])["QueueUrl"]
    lock = threading.Lock()
    counts = [0, 0]

    def loop() -> None:
        while counts[0] + counts[1] < job["messages"]:
            messages = client.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=WAIT_SECONDS
            ).get("Messages")
            if not messages:
                return
            answer = client.delete_message_batch(QueueUrl=queue_url, Entries=_entries(messages))
            with lock:
                counts[0] += len(answer.get("Successful", []))
                counts[1] += len(answer.get("Failed", []))

    sending()
    with ThreadPoolExecutor(job["max_in_flight"]) as pool:
        for future in [pool.submit(loop) for _ in range(job["max_in_flight"])]:
            future.result()
    return counts[0], counts[1]


def read_boto3_sequential(job: dict[str, Any]) -> tuple[int, int]:
    """One loop: receive 10, delete them, repeat (what a plain script does)."""
    return read_boto3_threads({**job, "max_in_flight": 1})


def read_engine(job: dict[str, Any]) -> tuple[int, int]:
    """`SqsReceiver`, `concurrent_receives` = the concurrency, acked 100 at a time, each ack in
    a task of its own while reading goes on, at most `concurrency // 10 + 2` at once (enough
    to keep the receiver's `concurrency + 4` delete calls busy), as the README advises."""
    from sqs_async import SqsReceiver

    async def read() -> tuple[int, int]:
        concurrency = job["max_in_flight"]
        acks_at_once = concurrency // 10 + 2
        async with SqsReceiver(
            queue_name=job["queue"],
            endpoint_url=job["endpoint"],
            concurrent_receives=concurrency,
            prefetch=ACK_BATCH * concurrency,
            wait_time_seconds=WAIT_SECONDS,
            verify=job.get("verify"),
            **CREDENTIALS,
        ) as receiver:
            sending()
            counts = [0, 0]  # deleted, failed
            acks: deque[asyncio.Task[Any]] = deque()

            async def oldest_done() -> None:
                result = await acks.popleft()
                counts[0] += len(result.done)
                counts[1] += len(result.failed)

            batch = []
            async for message in receiver.messages(max_messages=job["messages"]):
                batch.append(message)
                if len(batch) == ACK_BATCH:
                    acks.append(asyncio.create_task(receiver.ack(batch)))
                    batch = []
                    if len(acks) > acks_at_once:
                        await oldest_done()
            acks.append(asyncio.create_task(receiver.ack(batch)))
            while acks:
                await oldest_done()
            return counts[0], counts[1]

    return asyncio.run(read())


def _beam_options(job: dict[str, Any]) -> Any:
    from apache_beam.options.pipeline_options import PipelineOptions

    verify = [f"--verify={job['verify']}"] if job.get("verify") else []
    return PipelineOptions(
        ["--runner=FnApiRunner", f"--endpoint_url={job['endpoint']}", *verify]
        + [f"--{k}={v}" for k, v in CREDENTIALS.items()]
    )


def _counters(result: Any) -> dict[str, int]:
    from apache_beam.metrics.metric import MetricsFilter

    from beam_adapter import METRICS_NAMESPACE

    found = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    return {c.key.metric.name: c.committed for c in found["counters"]}


def read_beam(job: dict[str, Any], *, to_queue: bool) -> tuple[int, int]:
    """A bounded `ReadFromSqs` (`max_messages` = the load); with `to_queue`, each body
    written to `TARGET_QUEUE` by `WriteToSqs`. Counted from the connector's own metrics:
    messages received (or, to a queue, sent and failed)."""
    import apache_beam as beam

    from beam_adapter import ReadFromSqs, WriteToSqs

    pipeline = beam.Pipeline(options=_beam_options(job))
    read = pipeline | ReadFromSqs(
        job["queue"],
        max_messages=job["messages"],
        concurrent_receives=job["max_in_flight"],
        wait_time_seconds=WAIT_SECONDS,
    )
    if to_queue:
        _ = (
            read
            | beam.Map(lambda message: message["Body"])
            | WriteToSqs(TARGET_QUEUE, max_in_flight=job["max_in_flight"], max_trials=3)
        )
    result = pipeline.run()
    result.wait_until_finish()
    counters = _counters(result)
    if to_queue:
        return counters.get("messages_sent", 0), counters.get("messages_failed", 0)
    return counters.get("messages_received", 0), 0


def read_beam_floor(job: dict[str, Any]) -> tuple[int, int]:
    """Beam's own cost per element read: one DoFn emits N dicts shaped like `ReadFromSqs`'s
    (timestamped, as the read does), the next drops them. No SQS."""
    import apache_beam as beam
    from apache_beam.transforms.window import TimestampedValue

    from .contenders import body

    count, size = job["messages"], job["body_bytes"]

    class Emit(beam.DoFn):
        def process(self, _: Any) -> Any:
            for number in range(count):
                message = {
                    "MessageId": f"id-{number}",
                    "Body": body(number, size),
                    "Attributes": {"SentTimestamp": "1767225600000"},
                    "MessageAttributes": {},
                }
                yield TimestampedValue(message, 1767225600.0)

    class Drop(beam.DoFn):
        def process(self, element: Any) -> Any:
            return ()

    pipeline = beam.Pipeline(options=_beam_options(job))
    _ = pipeline | beam.Impulse() | beam.ParDo(Emit()) | beam.ParDo(Drop())
    pipeline.run().wait_until_finish()
    return count, 0


READERS = {
    "aiobotocore_raw": read_aiobotocore_raw,
    "boto3_threads": read_boto3_threads,
    "boto3_sequential": read_boto3_sequential,
    "sqs_async": read_engine,
    "read_from_sqs": lambda job: read_beam(job, to_queue=False),
    "sqs_to_sqs": lambda job: read_beam(job, to_queue=True),
    "beam_read_floor": read_beam_floor,
}


def run(messages: int, latency_ms: float, concurrency: int) -> list[dict[str, Any]]:
    """This module's own run: the hand-written peers and the receiver, one round each."""
    from .harness import EndpointProcess, Scenario, run_contender

    scenario = Scenario(latency_ms=latency_ms, body_bytes=10, max_in_flight=concurrency, read=True)
    rows = []
    with EndpointProcess() as endpoint:
        for name in ("boto3_sequential", "aiobotocore_raw", "sqs_async"):
            count = messages if name != "boto3_sequential" else min(messages, 2000)
            result = run_contender(name, scenario, endpoint, count)
            rows.append(
                {
                    "contender": name,
                    "messages": count,
                    "msgs_per_s": round(result.end_to_end_msgs_per_s),
                    "lost": result.lost,
                    "deleted_twice": result.duplicates,
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
