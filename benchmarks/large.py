"""Large messages through S3: the engine (`SqsSender` with `S3Offload`) against AWS's Python
extended client (`amazon-sqs-extended-client`, boto3), sequential and on a thread pool.

Every message goes through S3 for every contender (`always=True`, AWS's
`always_through_s3`: AWS's threshold is fixed at 262,144 bytes and compared with `>`, so a
256 KiB body would otherwise stay inline there). The benchmark endpoint serves S3 too
(`endpoint.py`): it records each object by the message it holds and resolves each pointer
message to its object, so every run is checked for lost and duplicated messages, objects
missing or stored twice, and pointers sent before their object was stored ("dangling").

The contenders run through the harness (`harness.run_contender`, one process each, so CPU
and peak RSS are their own), as `sqs_async`, `aws_extended_threads` and
`aws_extended_sequential` on scenarios with `s3=True`:

    python -m benchmarks --large            the large-payload scenarios alone
    python -m benchmarks --scenario s3      the same, by name

AWS's library replaces `boto3.Session` process-wide when imported: it is imported only in its
contenders' own processes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .contenders import CREDENTIALS, _timed, body, run_engine, sending

MiB = 1 << 20


def run_engine_s3(job: dict[str, Any]) -> dict[str, Any]:
    """`SqsSender` with `S3Offload(always=True)`: `max_in_flight` requests and as many S3
    transfers at once."""
    from sqs_async.offload import S3Offload

    stage = S3Offload(bucket=job["bucket"], always=True, concurrent_transfers=job["max_in_flight"])
    return run_engine(job, payload_stage=stage)


def _extended_client(job: dict[str, Any], pool: int) -> Any:
    """An SQS client of AWS's extended library, its S3 client pointed at the endpoint (the
    library makes one with the session's defaults, which would be AWS's), every message
    through S3. Connection pools of `pool`; botocore's default retries, as a user has them."""
    import boto3
    import sqs_extended_client  # noqa: F401 (replaces boto3.Session: this process only)
    from botocore.config import Config

    session = boto3.Session(**CREDENTIALS)
    settings = {"endpoint_url": job["endpoint"], "verify": job.get("verify")}
    sqs = session.client("sqs", config=Config(max_pool_connections=pool), **settings)
    sqs.s3_client = session.client(
        "s3",
        config=Config(max_pool_connections=pool, s3={"addressing_style": "path"}),
        **settings,
    )
    sqs.large_payload_support = job["bucket"]
    sqs.always_through_s3 = True
    return sqs


def _send_batch(sqs: Any, url: str, batch: list[str], max_trials: int) -> tuple[int, int]:
    """One `send_message_batch` of AWS's library (it stores the bodies one after another,
    then sends the pointers), failed entries sent again, up to `max_trials`. Entries are made
    afresh for each try: the library replaces their bodies with pointers in place."""
    remaining = dict(enumerate(batch))
    delivered = 0
    for _ in range(max_trials):
        entries = [{"Id": str(i), "MessageBody": body} for i, body in remaining.items()]
        try:
            response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        except Exception:
            continue
        succeeded = {int(s["Id"]) for s in response.get("Successful", [])}
        delivered += len(succeeded)
        remaining = {i: b for i, b in remaining.items() if i not in succeeded}
        if not remaining:
            break
    return delivered, len(remaining)


def _batches(job: dict[str, Any]) -> Iterator[tuple[int, int]]:
    """(first message, count) of each batch of 10."""
    for first in range(0, job["messages"], 10):
        yield first, min(10, job["messages"] - first)


def _batch_bodies(first: int, count: int, body_bytes: int) -> list[str]:
    return [body(i, body_bytes) for i in range(first, first + count)]


def run_extended_sequential(job: dict[str, Any]) -> dict[str, Any]:
    """AWS's library as its README shows it: one `send_message_batch` after another."""

    def send() -> tuple[int, int]:
        sqs = _extended_client(job, pool=10)
        url = sqs.get_queue_url(QueueName=job["queue"])["QueueUrl"]
        sending()
        delivered = failed = 0
        for first, count in _batches(job):
            batch = _batch_bodies(first, count, job["body_bytes"])
            d, f = _send_batch(sqs, url, batch, job["max_trials"])
            delivered, failed = delivered + d, failed + f
        return delivered, failed

    return _timed(send)


def run_extended_threads(job: dict[str, Any]) -> dict[str, Any]:
    """AWS's library on a pool of `max_in_flight` threads, each sending batches of 10 (so
    `max_in_flight` uploads at once), sharing one client: botocore's clients are thread-safe,
    and the library's wrappers keep no state of their own between calls (they read the
    settings and change only the entries they are given). Bodies are made in the thread that
    sends them, so memory holds only the batches in flight, as the engine's generator does."""

    def send() -> tuple[int, int]:
        sqs = _extended_client(job, pool=job["max_in_flight"])
        url = sqs.get_queue_url(QueueName=job["queue"])["QueueUrl"]

        def one(batch: tuple[int, int]) -> tuple[int, int]:
            made = _batch_bodies(*batch, job["body_bytes"])
            return _send_batch(sqs, url, made, job["max_trials"])

        sending()
        with ThreadPoolExecutor(job["max_in_flight"]) as pool:
            outcomes = list(pool.map(one, _batches(job)))
        return sum(d for d, _ in outcomes), sum(f for _, f in outcomes)

    return _timed(send)


CONTENDERS = {
    "sqs_async": run_engine_s3,
    "aws_extended_threads": run_extended_threads,
    "aws_extended_sequential": run_extended_sequential,
}

if __name__ == "__main__":
    # python -m benchmarks.large NAME '<json job>' (as the harness runs it): a JSON result.
    print(json.dumps(CONTENDERS[sys.argv[1]](json.loads(sys.argv[2]))))
