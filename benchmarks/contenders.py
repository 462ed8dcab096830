"""The contenders, each sending N numbered messages to one queue (or, for a job with
`"read": true`, reading and deleting them: `receive.READERS`).

Run one per process so CPU and peak memory are its own:
`python -m benchmarks.contenders NAME '<json job>'` prints a JSON result. `sqs_pyio` runs from
its own virtual environment (`pyio_contender.py`, no imports from this project).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

CREDENTIALS = {
    "region_name": "us-east-1",
    "aws_access_key_id": "bench",
    "aws_secret_access_key": "bench",
}


def bodies(count: int, body_bytes: int) -> Iterator[str]:
    """Numbered bodies of `body_bytes` bytes: '<number>:xxxx...'."""
    for i in range(count):
        yield body(i, body_bytes)


def body(number: int, body_bytes: int) -> str:
    """Body number `number`, of `body_bytes` bytes."""
    head = f"{number:09d}:"
    return head + "x" * max(1, body_bytes - len(head))


def run_engine(job: dict[str, Any], **settings: Any) -> dict[str, Any]:
    """`SqsSender.send` of the job's bodies; `settings`: other `SenderConfig` fields."""
    from sqs_async import SqsSender

    async def send() -> tuple[int, int]:
        async with SqsSender(
            queue_name=job["queue"],
            endpoint_url=job["endpoint"],
            max_in_flight=job["max_in_flight"],
            max_trials=job["max_trials"],
            verify=job.get("verify"),
            **settings,
            **CREDENTIALS,
        ) as sender:
            sending()
            result = await sender.send(
                bodies(job["messages"], job["body_bytes"]), keep_delivered=False
            )
        return result.delivered_count, len(result.failed)

    return _timed(lambda: asyncio.run(send()))


def raw_client(job: dict[str, Any]) -> Any:
    """A bare aiobotocore SQS client for the job (its retries off, a pool of `max_in_flight`
    connections): the raw contenders' client."""
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    config = AioConfig(
        max_pool_connections=job["max_in_flight"],
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    return get_session().create_client(
        "sqs", endpoint_url=job["endpoint"], config=config, verify=job.get("verify"), **CREDENTIALS
    )


def run_aiobotocore_raw(job: dict[str, Any]) -> dict[str, Any]:
    """Bare `send_message_batch` calls under a semaphore: no validation, no retries."""

    async def send() -> tuple[int, int]:
        async with raw_client(job) as client:
            url = (await client.get_queue_url(QueueName=job["queue"]))["QueueUrl"]
            sending()
            slots = asyncio.Semaphore(job["max_in_flight"])
            counts = [0, 0]

            async def one(batch: list[str]) -> None:
                try:
                    response = await client.send_message_batch(
                        QueueUrl=url,
                        Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(batch)],
                    )
                    counts[0] += len(response.get("Successful", []))
                    counts[1] += len(response.get("Failed", []))
                except Exception:
                    counts[1] += len(batch)
                finally:
                    slots.release()

            tasks = set()
            batch: list[str] = []
            for body in bodies(job["messages"], job["body_bytes"]):
                batch.append(body)
                if len(batch) == 10:
                    await slots.acquire()
                    task = asyncio.create_task(one(batch))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    batch = []
            if batch:
                await slots.acquire()
                tasks.add(asyncio.create_task(one(batch)))
            await asyncio.gather(*tasks)
            return counts[0], counts[1]

    return _timed(lambda: asyncio.run(send()))


def run_boto3_sequential(job: dict[str, Any]) -> dict[str, Any]:
    """One `send_message_batch` after another, failed entries resent up to max_trials."""
    import boto3

    def send() -> tuple[int, int]:
        client = boto3.client(
            "sqs", endpoint_url=job["endpoint"], verify=job.get("verify"), **CREDENTIALS
        )
        url = client.get_queue_url(QueueName=job["queue"])["QueueUrl"]
        sending()
        delivered = failed = 0
        batch: list[str] = []
        for body in [*bodies(job["messages"], job["body_bytes"]), None]:
            if body is not None:
                batch.append(body)
            if len(batch) == 10 or (body is None and batch):
                entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(batch)]
                for trial in range(job["max_trials"]):
                    response = client.send_message_batch(QueueUrl=url, Entries=entries)
                    delivered += len(response.get("Successful", []))
                    retry = {f["Id"] for f in response.get("Failed", [])}
                    entries = [e for e in entries if e["Id"] in retry]
                    if not entries or trial == job["max_trials"] - 1:
                        break
                failed += len(entries)
                batch = []
        return delivered, failed

    return _timed(send)


def run_boto3_threads(job: dict[str, Any]) -> dict[str, Any]:
    """What a plain-Python user would write instead of us: boto3 `send_message_batch` on a
    pool of `max_in_flight` threads sharing one client (boto3 clients are thread-safe), its
    connection pool as large, failed entries resent up to max_trials."""
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore.config import Config

    def send() -> tuple[int, int]:
        config = Config(
            max_pool_connections=job["max_in_flight"],
            retries={"total_max_attempts": 1, "mode": "standard"},
        )
        client = boto3.client(
            "sqs",
            endpoint_url=job["endpoint"],
            config=config,
            verify=job.get("verify"),
            **CREDENTIALS,
        )
        url = client.get_queue_url(QueueName=job["queue"])["QueueUrl"]

        def one(batch: list[str]) -> tuple[int, int]:
            entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(batch)]
            delivered = 0
            for _ in range(job["max_trials"]):
                try:
                    response = client.send_message_batch(QueueUrl=url, Entries=entries)
                except Exception:
                    continue
                delivered += len(response.get("Successful", []))
                retry = {f["Id"] for f in response.get("Failed", [])}
                entries = [e for e in entries if e["Id"] in retry]
                if not entries:
                    break
            return delivered, len(entries)

        sending()
        all_bodies = list(bodies(job["messages"], job["body_bytes"]))
        batches = [all_bodies[i : i + 10] for i in range(0, len(all_bodies), 10)]
        with ThreadPoolExecutor(job["max_in_flight"]) as pool:
            outcomes = list(pool.map(one, batches))
        return sum(d for d, _ in outcomes), sum(f for _, f in outcomes)

    return _timed(send)


def run_beam_adapter(job: dict[str, Any]) -> dict[str, Any]:
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions

    from beam_adapter import WriteToSqs

    def send() -> tuple[int, int]:
        verify = [f"--verify={job['verify']}"] if job.get("verify") else []
        options = PipelineOptions(
            ["--runner=FnApiRunner", f"--endpoint_url={job['endpoint']}", *verify]
            + [f"--{k}={v}" for k, v in CREDENTIALS.items()]
        )
        pipeline = beam.Pipeline(options=options)
        _ = (
            pipeline
            | beam.Create(list(bodies(job["messages"], job["body_bytes"])))
            | WriteToSqs(
                queue_name=job["queue"],
                max_in_flight=job["max_in_flight"],
                max_trials=job["max_trials"],
            )
        )
        result = pipeline.run()
        result.wait_until_finish()
        counters = {
            c.key.metric.name: c.committed
            for c in result.metrics().query(MetricsFilter().with_namespace("sqs_async"))["counters"]
        }
        return counters.get("messages_sent", 0), counters.get("messages_failed", 0)

    return _timed(send)


def run_beam_floor(job: dict[str, Any]) -> dict[str, Any]:
    """Beam's own cost per element on this runner, which no sink can avoid: the pipeline of
    `beam_adapter` (`Create | ...` on the FnApiRunner), its sink a DoFn that only buffers
    each element with its timestamp and window, as `WriteToSqs` does, and drops the buffer
    when it is full and at the end of each bundle. Nothing reaches the endpoint."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from beam_adapter.sink import BUFFERED_MESSAGES_PER_SLOT, MIN_BUFFER_SIZE

    # WriteToSqs's buffer at this max_in_flight (its default)
    buffer_size = max(MIN_BUFFER_SIZE, BUFFERED_MESSAGES_PER_SLOT * job["max_in_flight"])

    class FloorFn(beam.DoFn):
        def start_bundle(self) -> None:
            self.buffer: list[tuple[Any, Any, Any]] = []

        def process(
            self,
            element: Any,
            timestamp: Any = beam.DoFn.TimestampParam,
            window: Any = beam.DoFn.WindowParam,
        ) -> None:
            self.buffer.append((element, timestamp, window))
            if len(self.buffer) >= buffer_size:
                self.buffer = []

        def finish_bundle(self) -> None:
            self.buffer = []

    def send() -> tuple[int, int]:
        pipeline = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
        _ = (
            pipeline
            | beam.Create(list(bodies(job["messages"], job["body_bytes"])))
            | beam.ParDo(FloorFn())
        )
        pipeline.run().wait_until_finish()
        return job["messages"], 0

    return _timed(send)


_sending_since: list[float] = []


def sending() -> None:
    """Called by a contender once its client is open, just before its first message: the CPU
    reported is that of sending (client set-up and model loading are not per message)."""
    _sending_since.append(time.process_time())


def _timed(send: Callable[[], tuple[int, int]]) -> dict[str, Any]:
    cpu, wall = time.process_time(), time.perf_counter()
    delivered, failed = send()
    return {
        "seconds": time.perf_counter() - wall,
        "cpu_s": time.process_time() - (_sending_since[0] if _sending_since else cpu),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "delivered": delivered,
        "failed": failed,
    }


CONTENDERS = {
    "sqs_async": run_engine,
    "beam_adapter": run_beam_adapter,
    "boto3_sequential": run_boto3_sequential,
    "aiobotocore_raw": run_aiobotocore_raw,
    "boto3_threads": run_boto3_threads,
    "beam_floor": run_beam_floor,
}


def main(name: str, job: dict[str, Any]) -> dict[str, Any]:
    if job.get("read"):
        from .receive import READERS

        return _timed(lambda: READERS[name](job))
    return CONTENDERS[name](job)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], json.loads(sys.argv[2]))))
