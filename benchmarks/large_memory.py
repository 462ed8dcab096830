"""Peak memory with large payloads: the engine sends a few large messages through S3
(`SqsSender` with `S3Offload`), then reads them back (`SqsReceiver` with `S3Offload`), each in
a process of its own, on the benchmark endpoint (which keeps the objects' bytes).

    python -m benchmarks.large_memory [--mib 50] [--messages 8] [--concurrency 1,4,8]

For each concurrency C the sender has `max_in_flight` and `concurrent_transfers` C; the
receiver `concurrent_transfers` C, one receive call at a time and `prefetch` C (so at most C
messages are resolved before the caller takes them). Reported: the process's peak RSS before
the first payload (imports and clients: the baseline) and at the end, and what the payloads
added in units of C x payload: the issue's bound is "roughly concurrency x payload size", and a
payload must not multiply itself through copies. The bodies come from a generator and are
checked on arrival (length, number, content) without making a second copy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from .contenders import CREDENTIALS, body
from .harness import CONTENDER_CORES, ROOT, S3_BUCKET, EndpointProcess, Scenario, _pin

MiB = 1 << 20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stage(job: dict[str, Any]) -> Any:
    from sqs_async.offload import S3Offload

    return S3Offload(bucket=S3_BUCKET, concurrent_transfers=job["concurrency"])


async def _send(job: dict[str, Any]) -> dict[str, Any]:
    from sqs_async import SqsSender

    size = job["mib"] * MiB
    async with SqsSender(
        queue_name="bench",
        endpoint_url=job["endpoint"],
        max_in_flight=job["concurrency"],
        payload_stage=_stage(job),
        **CREDENTIALS,
    ) as sender:
        baseline = _peak_mb()
        started = time.perf_counter()
        records = (body(i, size) for i in range(job["messages"]))
        result = await sender.send(records, keep_delivered=False)
    return {
        "baseline_mb": baseline,
        "peak_mb": _peak_mb(),
        "seconds": time.perf_counter() - started,
        "messages": result.delivered_count,
        "failed": len(result.failed),
        "bad": 0,
    }


async def _receive(job: dict[str, Any]) -> dict[str, Any]:
    from sqs_async import SqsReceiver

    size = job["mib"] * MiB
    seen: set[int] = set()
    bad = 0
    async with SqsReceiver(
        queue_name="bench",
        endpoint_url=job["endpoint"],
        concurrent_receives=1,
        prefetch=job["concurrency"],
        wait_time_seconds=1,
        payload_stage=_stage(job),
        **CREDENTIALS,
    ) as receiver:
        baseline = _peak_mb()
        started = time.perf_counter()
        async for message in receiver.messages(until_empty=True):
            text = message.body
            number = int(text[:9])
            # body(number, size), checked without building it: its head, then only 'x'.
            if (
                len(text) != size
                or text[9] != ":"
                or text.count("x", 10) != size - 10
                or message.payload_location is None
            ):
                bad += 1
            seen.add(number)
            del text
            await receiver.ack([message])
            del message
    return {
        "baseline_mb": baseline,
        "peak_mb": _peak_mb(),
        "seconds": time.perf_counter() - started,
        "messages": len(seen),
        "failed": job["messages"] - len(seen),
        "bad": bad,
    }


def _child(direction: str, job: dict[str, Any]) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.large_memory", "--child", direction]
    completed = subprocess.run(
        [*command, json.dumps(job)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=600,
        preexec_fn=_pin(CONTENDER_CORES),  # the harness runs no threads: safe
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{direction} failed:\n{completed.stderr[-3000:]}")
    outcome: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return outcome


def run(mib: int, messages: int, concurrencies: list[int]) -> list[dict[str, Any]]:
    rows = []
    with EndpointProcess() as endpoint:
        for concurrency in concurrencies:
            endpoint.reset(Scenario(latency_ms=0, body_bytes=0, max_in_flight=1), keep_objects=True)
            job = {
                "endpoint": endpoint.url,
                "mib": mib,
                "messages": messages,
                "concurrency": concurrency,
            }
            for direction in ("send", "receive"):
                outcome = _child(direction, job)
                added = outcome["peak_mb"] - outcome["baseline_mb"]
                rows.append(
                    {
                        "direction": direction,
                        "payload_mib": mib,
                        "concurrency": concurrency,
                        **outcome,
                        "added_mb": added,
                        "per_bound": added / (concurrency * mib * MiB / 1e6),
                    }
                )
                print(
                    f"  {direction:7} {mib} MiB x {messages}, concurrency {concurrency}: peak "
                    f"RSS {outcome['peak_mb']:.0f} MB ({added:+.0f} MB over the baseline)",
                    file=sys.stderr,
                    flush=True,
                )
            stats = endpoint.stats()
            rows[-1]["objects_stored"] = stats["objects_stored"]
            rows[-1]["deleted"] = stats["deleted_unique"]
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| direction | payload | messages | concurrency C | baseline RSS MB | peak RSS MB | "
        "added MB | added / (C x payload) | seconds | delivered / failed / corrupt |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['direction']} | {r['payload_mib']} MiB | {r['messages'] + r['failed']} | "
            f"{r['concurrency']} | {r['baseline_mb']:.0f} | {r['peak_mb']:.0f} | "
            f"{r['added_mb']:.0f} | {r['per_bound']:.2f} | {r['seconds']:.1f} | "
            f"{r['messages']} / {r['failed']} / {r['bad']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=50, help="payload size (MiB)")
    parser.add_argument("--messages", type=int, default=8)
    parser.add_argument("--concurrency", default="1,4,8", help="comma-separated")
    parser.add_argument("--child", nargs=2, metavar=("DIRECTION", "JOB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        direction, job = args.child[0], json.loads(args.child[1])
        work = _send if direction == "send" else _receive
        print(json.dumps(asyncio.run(work(job))))
        return
    rows = run(args.mib, args.messages, [int(c) for c in args.concurrency.split(",")])
    print(table(rows))


if __name__ == "__main__":
    main()
