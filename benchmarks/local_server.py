"""The local server (`LocalSqsServer`, moto's, patched) with a long queue.

    python -m benchmarks.local_server [--messages 100000] [--threads 8] [--unpatched]

The server runs in a process of its own (clients here would otherwise share its GIL), as
`sqs-async local` does. One standard queue is filled with `messages` messages by
SendMessageBatch of 10 from `threads` boto3 clients, reporting msg/s per slice of 10,000 as
the queue grows; then `threads` loops of ReceiveMessage (10) + DeleteMessageBatch read it
dry, reporting msg/s per slice as it shrinks. Every message must be received exactly once,
no delete may fail, and the queue must end empty. `--unpatched` leaves out the patches for
speed (moto with only its lock and clock patches, as before issue 22): the "before" figure,
for which a smaller `--messages` is wise. Each phase stops at `--time-limit` seconds, and says so.
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

import boto3
from botocore.config import Config

from sqs_async.testing import LOCAL_CREDENTIALS

CLIENT_CONFIG = Config(retries={"max_attempts": 1}, read_timeout=120)


def serve(fast: bool, conn: Connection) -> None:
    """The server's process: start, send the endpoint, answer CPU-time queries until told
    to stop."""
    from sqs_async import testing

    testing._patch_moto(fast=fast)
    with testing.LocalSqsServer() as server:
        conn.send(server.endpoint_url)
        while conn.recv() == "cpu":
            conn.send(time.process_time())


class Phase:
    """Completion times of one phase's requests, for rates per slice of the queue."""

    def __init__(self, name: str, deadline_s: float) -> None:
        self.name = name
        self.started = time.monotonic()
        self.deadline = self.started + deadline_s
        self.lock = threading.Lock()
        self.stamps: list[tuple[float, int]] = []
        self.count = 0
        self.finished = self.started

    def done(self, count: int) -> None:
        with self.lock:
            self.stamps.append((time.monotonic(), count))
            self.count += count

    def report(self, slice_size: int, describe: Callable[[int, int], str]) -> float:
        """Print msg/s per slice and overall; return the overall rate."""
        total, last_time, slice_start = 0, self.started, 0
        for stamp, count in sorted(self.stamps):
            total += count
            if total - slice_start >= slice_size:
                rate = (total - slice_start) / (stamp - last_time)
                print(f"  {self.name} {describe(slice_start, total)}: {rate:,.0f} msg/s")
                last_time, slice_start = stamp, total
        if total > slice_start:
            rate = (total - slice_start) / (stamp - last_time)
            print(f"  {self.name} {describe(slice_start, total)} (part): {rate:,.0f} msg/s")
        end = max((stamp for stamp, _ in self.stamps), default=self.started)
        overall = total / (end - self.started) if end > self.started else 0.0
        print(
            f"  {self.name} overall: {total:,} messages in {end - self.started:.1f} s, "
            f"{overall:,.0f} msg/s"
        )
        return overall


def client(endpoint_url: str) -> Any:
    settings = {**LOCAL_CREDENTIALS, "endpoint_url": endpoint_url}
    return boto3.client("sqs", config=CLIENT_CONFIG, **settings)


def body(number: int, size: int) -> str:
    return f"{number:09d} ".ljust(size, "x")


def fill(endpoint_url: str, queue_url: str, args: argparse.Namespace) -> Phase:
    """Send `args.messages` numbered messages in batches of 10 from `args.threads` clients."""
    phase = Phase("send", args.time_limit)
    starts = iter(range(0, args.messages, 10))
    starts_lock = threading.Lock()

    def sender() -> None:
        sqs = client(endpoint_url)
        while time.monotonic() < phase.deadline:
            with starts_lock:
                start = next(starts, None)
            if start is None:
                return
            numbers = range(start, min(start + 10, args.messages))
            reply = sqs.send_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(n), "MessageBody": body(n, args.size)} for n in numbers],
            )
            if reply.get("Failed"):
                raise RuntimeError(f"send failed: {reply['Failed']}")
            phase.done(len(numbers))

    run_threads(sender, args.threads)
    phase.finished = time.monotonic()
    return phase


def read(endpoint_url: str, queue_url: str, args: argparse.Namespace) -> tuple[Phase, Counter[str]]:
    """Receive (10) and delete (batch) until `args.messages` were read, the queue is dry, or
    time is up; returns the phase and how often each body was received."""
    phase = Phase("receive+delete", args.time_limit)
    received: Counter[str] = Counter()

    def reader() -> None:
        sqs = client(endpoint_url)
        empty_polls = 0
        for _ in range(args.messages + 100):  # bounded: each pass reads or counts a dry poll
            if time.monotonic() > phase.deadline or phase.count >= args.messages:
                return
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=43200,  # never seen twice within a run, unless redelivered
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not messages:
                empty_polls += 1
                if empty_polls >= 5:
                    return
                time.sleep(0.2)
                continue
            empty_polls = 0
            reply = sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
            if reply.get("Failed"):
                raise RuntimeError(f"delete failed: {reply['Failed']}")
            with phase.lock:
                received.update(m["Body"][:9] for m in messages)
            phase.done(len(messages))

    run_threads(reader, args.threads)
    phase.finished = time.monotonic()
    return phase, received


def run_threads(target: Callable[[], None], threads: int) -> None:
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(target) for _ in range(threads)]:
            future.result()


def queue_counts(endpoint_url: str, queue_url: str) -> dict[str, int]:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = client(endpoint_url).get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=names
    )["Attributes"]
    return {name.removeprefix("ApproximateNumberOf"): int(attributes[name]) for name in names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--size", type=int, default=100, help="body bytes")
    parser.add_argument("--slice", type=int, default=10_000, help="messages per reported rate")
    parser.add_argument("--time-limit", type=float, default=900, help="seconds per phase")
    parser.add_argument("--unpatched", action="store_true", help="leave out the patches for speed")
    args = parser.parse_args(argv)

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=serve, args=(not args.unpatched, theirs), daemon=True)
    process.start()
    ok = False
    try:
        if not ours.poll(60):
            raise RuntimeError("the server did not start within 60 s")
        endpoint_url = ours.recv()
        queue_url = client(endpoint_url).create_queue(QueueName="bench")["QueueUrl"]
        patches = "moto without the speed patches" if args.unpatched else "patched moto"
        print(
            f"{args.messages:,} messages of {args.size} bytes, {args.threads} threads, "
            f"{patches}, server at {endpoint_url}"
        )

        def server_cpu() -> float:
            ours.send("cpu")
            cpu: float = ours.recv()
            return cpu

        cpu = server_cpu()
        sent = fill(endpoint_url, queue_url, args)
        sent.report(args.slice, lambda a, b: f"queue {a:,} -> {b:,}")
        now = server_cpu()
        fill_cpu, cpu = now - cpu, now
        print(f"  server CPU {fill_cpu:.1f} s ({1000 * fill_cpu / max(sent.count, 1):.2f} ms/msg)")
        counts = queue_counts(endpoint_url, queue_url)
        print(f"  queue after the fill: {counts}")

        phase, received = read(endpoint_url, queue_url, args)
        phase.report(args.slice, lambda a, b: f"queue {sent.count - a:,} -> {sent.count - b:,}")
        read_cpu = server_cpu() - cpu
        print(f"  server CPU {read_cpu:.1f} s ({1000 * read_cpu / max(phase.count, 1):.2f} ms/msg)")

        twice = sum(1 for n in received.values() if n > 1)
        counts = queue_counts(endpoint_url, queue_url)
        print(
            f"  received {len(received):,} distinct of {sent.count:,} sent, "
            f"{twice} more than once; queue at the end: {counts}"
        )
        timed_out = [p.name for p in (sent, phase) if p.finished > p.deadline]
        if timed_out:
            print(f"  stopped at the time limit: {', '.join(timed_out)}")
        ok = twice == 0 and len(received) == sent.count == args.messages
        ok = ok and not any(counts.values())
        print("OK" if ok else "INCOMPLETE" if timed_out and not twice else "FAILED")
    finally:
        ours.send("stop")
        process.join(30)
        if process.is_alive():
            process.terminate()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
