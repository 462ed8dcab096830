"""The `sqs-async` command line: load a file of messages into a queue, or start a local server.

sqs-async send QUEUE FILE     each line a JSON message (a string body or an entry object)
sqs-async receive QUEUE       messages as JSON lines; deleted only with --delete
sqs-async local               an SQS-compatible server on 127.0.0.1, for trying things out
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from .errors import SqsAsyncError
from .producer import SqsProducer
from .results import Delivered, Failed
from .testing import LocalSqsServer

INVALID_JSON = "InvalidJson"
INTERRUPTED = "Interrupted"

SEND_EXAMPLE = """\
examples:
  sqs-async send my-queue messages.jsonl --region eu-west-1 --failed failed.jsonl
  cat messages.jsonl | sqs-async send https://sqs.eu-west-1.amazonaws.com/123456789012/q -
  sqs-async send q messages.jsonl --endpoint-url http://127.0.0.1:5000 --region us-east-1

Each line is a JSON string (the body) or an object of SQS entry fields, for example
  "hello"
  {"MessageBody": "hello", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}}
Failed lines go to --failed as {"line": N, "message": ..., "error": {...}}; the "message" values
can be sent again. Exit status: 0 when every line was delivered, 1 otherwise.
"""

RECEIVE_EXAMPLE = """\
examples:
  sqs-async receive my-queue --until-empty > messages.jsonl          # a copy; the queue keeps them
  sqs-async receive my-queue --max-messages 100 --delete --output taken.jsonl

Each line is {"MessageId", "Body", "Attributes", "MessageAttributes"} (Binary attribute values
in base64). Without --delete every message read is made visible again at the end, for other
readers; with --delete a message is deleted once its line is written. Without a limit the
command runs until Ctrl-C.
"""

LOCAL_EXAMPLE = """\
example:
  sqs-async local --port 5000 --queue demo
  sqs-async send demo messages.jsonl --endpoint-url http://127.0.0.1:5000 --region us-east-1
"""


@dataclass
class Tally:
    read: int = 0
    delivered: int = 0
    failed: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        return self.delivered / max(time.monotonic() - self.started, 1e-9)


class Progress:
    """A tqdm bar on a terminal; a plain line every few seconds elsewhere."""

    def __init__(self, tally: Tally, stream: IO[str], interval: float = 5.0) -> None:
        self.tally = tally
        self.stream = stream
        self.interval = interval
        self.last = time.monotonic()
        self.bar: Any = None
        if stream.isatty():
            with contextlib.suppress(ImportError):
                from tqdm import tqdm

                self.bar = tqdm(unit="msg", file=stream, dynamic_ncols=True)

    def update(self) -> None:
        if self.bar is not None:
            self.bar.n = self.tally.delivered + self.tally.failed
            self.bar.set_postfix(failed=self.tally.failed, refresh=False)
            self.bar.refresh()
        elif time.monotonic() - self.last >= self.interval:
            self.last = time.monotonic()
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def line(self) -> str:
        t = self.tally
        return f"sent {t.delivered}, failed {t.failed}, read {t.read}, {t.rate:.0f} msg/s"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def parse_line(text: str) -> tuple[Any, str | None]:
    """The message on a line, or why there is none."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return text, f"line is not valid JSON: {exc.msg} at column {exc.colno}"


def queue_settings(queue: str) -> dict[str, str]:
    return {"queue_url": queue} if "://" in queue else {"queue_name": queue}


async def send_file(
    args: argparse.Namespace,
    lines: Iterator[str],
    stop: threading.Event,
    failed_out: IO[str] | None,
    report: IO[str],
    rest_to_failed: bool,
) -> Tally:
    tally = Tally()
    progress = Progress(tally, report)
    unconfirmed: dict[int, Any] = {}  # line -> message, accepted and not resolved yet
    abort = asyncio.Event()

    def interrupted() -> None:
        """First Ctrl-C: stop reading, send what was read. Second: stop waiting for SQS."""
        if stop.is_set():
            abort.set()
        stop.set()

    def record_failure(line: int, message: Any, code: str, reason: str, fault: bool) -> None:
        tally.failed += 1
        if failed_out is not None:
            error = {"Code": code, "Message": reason, "SenderFault": fault}
            failed_out.write(json.dumps({"line": line, "message": message, "error": error}) + "\n")

    def on_outcome(line: int, future: asyncio.Future[Delivered | Failed]) -> None:
        if unconfirmed.pop(line, _GONE) is _GONE or future.cancelled():
            return  # already written as interrupted
        if future.exception() is not None:
            error = future.exception()
            record_failure(line, None, getattr(error, "code", "Error"), str(error), False)
        else:
            outcome = future.result()
            if isinstance(outcome, Delivered):
                tally.delivered += 1
            else:
                record_failure(
                    line, outcome.record, outcome.code, outcome.message, outcome.sender_fault
                )
        progress.update()

    settings: dict[str, Any] = {
        **queue_settings(args.queue),
        "endpoint_url": args.endpoint_url,
        "region_name": args.region,
        "max_in_flight": args.max_in_flight,
        "max_trials": args.max_trials,
    }
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, interrupted)
    try:
        async with SqsProducer(**settings) as producer:
            unread: list[tuple[int, str]] = []
            for number, text in enumerate(lines, start=1):
                if stop.is_set():
                    unread.append((number, text))
                    break
                if not text.strip():
                    continue
                tally.read += 1
                message, problem = parse_line(text.rstrip("\n"))
                if problem is not None:
                    record_failure(number, message, INVALID_JSON, problem, True)
                    continue
                future = await producer.put(message)
                unconfirmed[number] = message
                future.add_done_callback(_call_with(on_outcome, number))
            flushed = asyncio.ensure_future(producer.flush())
            aborted = asyncio.ensure_future(abort.wait())
            await asyncio.wait({flushed, aborted}, return_when=asyncio.FIRST_COMPLETED)
            aborted.cancel()
            if not flushed.done():  # a second Ctrl-C: give up on what SQS has not confirmed
                flushed.cancel()
                await asyncio.gather(flushed, return_exceptions=True)
                for number, message in sorted(unconfirmed.items()):
                    record_failure(
                        number,
                        message,
                        INTERRUPTED,
                        "interrupted before SQS confirmed it: it may or may not have been "
                        "delivered",
                        False,
                    )
                unconfirmed.clear()
                producer.close_timeout = 0  # close without waiting
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    if unread and rest_to_failed:
        # Interrupted: lines not read yet go to the failed file, to be sent later.
        first = unread[0][0]
        for number, text in enumerate(itertools.chain([unread[0][1]], lines), start=first):
            if text.strip():
                record_failure(
                    number,
                    parse_line(text.rstrip("\n"))[0],
                    INTERRUPTED,
                    "not sent: the command was interrupted",
                    False,
                )
    progress.close()
    return tally


_GONE = object()


def _call_with(
    callback: Callable[[int, asyncio.Future[Delivered | Failed]], None], number: int
) -> Callable[[asyncio.Future[Delivered | Failed]], None]:
    return lambda future: callback(number, future)


def command_send(args: argparse.Namespace) -> int:
    stop = threading.Event()
    source: IO[str] = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    failed_out = open(args.failed, "w", encoding="utf-8") if args.failed else None  # noqa: SIM115
    previous = signal.getsignal(signal.SIGINT)  # send_file handles Ctrl-C on its loop
    try:
        tally = asyncio.run(
            send_file(args, iter(source), stop, failed_out, sys.stderr, source is not sys.stdin)
        )
    except SqsAsyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, previous)
        if source is not sys.stdin:
            source.close()
        if failed_out is not None:
            failed_out.close()
    elapsed = time.monotonic() - tally.started
    print(
        f"sent {tally.delivered}, failed {tally.failed} in {elapsed:.1f}s "
        f"({tally.delivered / max(elapsed, 1e-9):.0f} msg/s)"
        + (" (interrupted)" if stop.is_set() else ""),
        file=sys.stderr,
    )
    return 0 if tally.failed == 0 and not stop.is_set() else 1


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


async def receive_lines(args: argparse.Namespace, out: IO[str]) -> int:
    """Write messages as JSON lines until a limit or Ctrl-C; delete them if asked."""
    from .receiver import ReceivedMessage, SqsReceiver

    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    written = 0
    by_url = "://" in args.queue
    async with SqsReceiver(
        queue_url=args.queue if by_url else None,
        queue_name=None if by_url else args.queue,
        endpoint_url=args.endpoint_url,
        region_name=args.region,
        wait_time_seconds=args.wait,
        visibility_timeout=args.visibility_timeout,
    ) as receiver:
        to_delete: list[ReceivedMessage] = []

        async def read() -> None:
            nonlocal written
            async for message in receiver.messages(
                max_messages=args.max_messages, max_time=args.max_time, until_empty=args.until_empty
            ):
                out.write(json.dumps(message.as_record(), default=_json_default) + "\n")
                written += 1
                if args.delete:
                    to_delete.append(message)
                    if len(to_delete) == 10:
                        out.flush()  # written before deleted
                        batch = to_delete[:]
                        to_delete.clear()
                        await receiver.ack(batch)

        reading = asyncio.create_task(read())
        stopping = asyncio.create_task(stopped.wait())
        await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not reading.done():
            reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading  # raises the reader's error, if any
        out.flush()
        if to_delete:
            await receiver.ack(to_delete)
        deleted = receiver.stats.deleted
        failures = receiver.stats.delete_failures
    print(
        f"received {written}, deleted {deleted}"
        + (f", {failures} deletes failed" if failures else "")
        + (" (interrupted)" if stopped.is_set() else ""),
        file=sys.stderr,
    )
    return 1 if failures else 0


def command_receive(args: argparse.Namespace) -> int:
    out: IO[str] = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
    try:
        return asyncio.run(receive_lines(args, out))
    except SqsAsyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if out is not sys.stdout:
            out.close()


def command_local(args: argparse.Namespace) -> int:
    import boto3

    stop = threading.Event()
    # Handlers first: Ctrl-C (or SIGTERM) at any moment from here on stops the server cleanly.
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = LocalSqsServer(port=args.port)
    try:
        server.start()
    except RuntimeError as exc:  # moto missing, or a moto the server cannot patch
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        client = boto3.client("sqs", **server.client_settings)
        for name in args.queue:
            url = client.create_queue(QueueName=name)["QueueUrl"]
            print(f"queue {url}")
        settings = server.client_settings
        print(
            f"local SQS server at {server.endpoint_url}, region {settings['region_name']}; "
            "Ctrl-C stops it\n"
            "clients need credentials, and any will do; in another shell:\n"
            f"  export AWS_ACCESS_KEY_ID={settings['aws_access_key_id']} "
            f"AWS_SECRET_ACCESS_KEY={settings['aws_secret_access_key']} "
            f"AWS_DEFAULT_REGION={settings['region_name']} "
            f"AWS_ENDPOINT_URL_SQS={server.endpoint_url}",
            flush=True,
        )
        stop.wait()
    finally:
        server.stop()
    return 0


def _queue_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("queue", metavar="QUEUE", help="queue name or queue URL")
    command.add_argument("--endpoint-url", help="SQS endpoint (a local server, for example)")
    command.add_argument("--region", help="AWS region (default: the standard AWS configuration)")


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(
        prog="sqs-async",
        description="Move messages to and from Amazon SQS, fast.",
        epilog="run 'sqs-async COMMAND --help' for a command's options and examples",
    )
    commands = main.add_subparsers(dest="command", required=True)
    send = commands.add_parser(
        "send",
        help="send a file of JSON-lines messages to a queue",
        epilog=SEND_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Send each line of FILE (JSON) as a message to QUEUE.",
    )
    _queue_arguments(send)
    send.add_argument("file", metavar="FILE", help="JSON-lines file; - reads standard input")
    send.add_argument("--max-in-flight", type=int, default=16, help="concurrent requests")
    send.add_argument("--max-trials", type=int, default=3, help="attempts per message")
    send.add_argument("--failed", metavar="FILE", help="write failed lines here (JSON lines)")
    send.set_defaults(run=command_send)
    receive = commands.add_parser(
        "receive",
        help="write a queue's messages as JSON lines",
        epilog=RECEIVE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read messages from QUEUE and write them as JSON lines.",
    )
    _queue_arguments(receive)
    receive.add_argument("--output", default="-", help="JSON-lines file; - is standard output")
    receive.add_argument("--max-messages", type=int, help="stop after this many messages")
    receive.add_argument("--max-time", type=float, help="stop after this many seconds")
    receive.add_argument(
        "--until-empty", action="store_true", help="stop when a poll finds the queue empty"
    )
    receive.add_argument(
        "--delete", action="store_true", help="delete each message once written (default: keep)"
    )
    receive.add_argument("--wait", type=int, default=20, help="long-polling seconds (0-20)")
    receive.add_argument(
        "--visibility-timeout", type=int, default=30, help="seconds a message is hidden while held"
    )
    receive.set_defaults(run=command_receive)
    local = commands.add_parser(
        "local",
        help="start a local SQS server on 127.0.0.1",
        epilog=LOCAL_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Start moto's SQS server on 127.0.0.1 (needs sqs-async[test]).",
    )
    local.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    local.add_argument("--queue", action="append", default=[], help="create this queue")
    local.set_defaults(run=command_local)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
