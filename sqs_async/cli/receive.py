"""`sqs-async receive QUEUE`: messages as JSON lines; with --delete, each deleted only once its
line is written, and every written line deleted before the command ends (Ctrl-C included)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import sys
from typing import IO, Any

from ..defaults import MAX_BATCH_ENTRIES
from ..offload import stored_location
from ..receive import ReceivedMessage, SqsReceiver
from .common import (
    Status,
    check_output,
    check_queue_url,
    offload_stage,
    open_output,
    queue_settings,
)
from .report import SHOWN_FAILURES


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Output:
    """The JSON-lines output, opened at the first line (or at the end, empty): a queue that
    cannot be read leaves the file untouched."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stream: IO[str] | None = None
        self.closed_by_reader = False  # standard output's reader went away (`| head`)

    def write(self, record: dict[str, Any]) -> bool:
        """Write one line; False if the output's reader has gone."""
        if self.stream is None:
            self.stream = sys.stdout if self.path == "-" else open_output(self.path)
        try:
            self.stream.write(json.dumps(record, default=_json_default) + "\n")
        except BrokenPipeError:
            self.closed_by_reader = True
            # Nothing more reaches it: stop Python's own flush at exit from complaining.
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
            return False
        return True

    def flush(self) -> None:
        if self.stream is not None and not self.closed_by_reader:
            with contextlib.suppress(BrokenPipeError):
                self.stream.flush()

    def close(self) -> None:
        if self.stream is None:
            if self.path == "-":
                return
            self.stream = open_output(self.path)
        self.flush()
        if self.stream is not sys.stdout:
            self.stream.close()


async def receive_lines(args: argparse.Namespace, output: Output) -> int:
    """Write messages until a limit, an empty queue or Ctrl-C; delete the written ones if
    asked. Returns the exit status."""
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    written = deleted = 0
    unacked: list[ReceivedMessage] = []  # written, not yet handed to a delete
    deletes: set[asyncio.Task[None]] = set()
    not_deleted: list[tuple[ReceivedMessage, str, str]] = []
    settings: dict[str, Any] = {**queue_settings(args.queue)}
    stage = offload_stage(args)
    told_of_pointers = stage is not None  # without a stage, a pointer is told of once
    await check_queue_url(args.queue, args.endpoint_url, args.region)
    try:
        async with SqsReceiver(
            **settings,
            endpoint_url=args.endpoint_url,
            region_name=args.region,
            wait_time_seconds=args.wait,
            visibility_timeout=args.visibility_timeout,
            payload_stage=stage,
            poll_on_open=False,
        ) as receiver:

            async def delete(batch: list[ReceivedMessage]) -> None:
                nonlocal deleted
                result = await receiver.ack(batch)
                deleted += len(result.done)
                not_deleted.extend(result.failed)

            def start_delete() -> asyncio.Task[None]:
                output.flush()  # written before deleted
                task = asyncio.create_task(delete(unacked[:]))  # never cancelled with reading
                unacked.clear()
                deletes.add(task)
                task.add_done_callback(deletes.discard)
                return task

            async def read() -> None:
                nonlocal written, told_of_pointers
                # Polling starts as the reader says what it takes: no poll asks for more.
                receiver.start_receiving()
                async for message in receiver.messages(
                    max_messages=args.max_messages,
                    max_time=args.max_time,
                    until_empty=args.until_empty,
                ):
                    if not output.write(message.as_record()):
                        return  # not written: released when the receiver closes
                    written += 1
                    if not told_of_pointers:
                        where = stored_location(message.message_attributes, message.body)
                        if where is not None:
                            told_of_pointers = True
                            print(
                                f"warning: message {message.message_id} points to a body "
                                f"stored in S3 ({where}), written as the pointer: pass "
                                "--s3-bucket to fetch such bodies",
                                file=sys.stderr,
                            )
                    if args.delete:
                        unacked.append(message)
                        if len(unacked) == MAX_BATCH_ENTRIES:
                            await asyncio.shield(start_delete())

            reading = asyncio.create_task(read())
            stopping = asyncio.create_task(stopped.wait())
            await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            reading.cancel()
            await asyncio.gather(reading, stopping, return_exceptions=True)
            if not reading.cancelled() and reading.exception() is not None:
                raise reading.exception()  # type: ignore[misc]
            if unacked:
                start_delete()
            await asyncio.gather(*deletes)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    print(
        f"received {written}, deleted {deleted}"
        + (" (interrupted)" if stopped.is_set() else "")
        + (" (output closed)" if output.closed_by_reader else ""),
        file=sys.stderr,
    )
    stats = receiver.stats
    if stats.discarded:
        print(
            f"{stats.discarded} deleted unread: their body in S3 was gone "
            "(--s3-missing-payload delete)",
            file=sys.stderr,
        )
    if stats.stage_failures:
        print(
            f"{stats.stage_failures} not written: their body in S3 could not be fetched (see "
            "above); SQS gives them out again after their visibility timeout",
            file=sys.stderr,
        )
    if not_deleted:
        shown = ", ".join(m.message_id for m, _, _ in not_deleted[:SHOWN_FAILURES])
        rest = len(not_deleted) - SHOWN_FAILURES
        more = f" and {rest} more" if rest > 0 else ""
        _, code, reason = not_deleted[0]
        print(
            f"{len(not_deleted)} written but not deleted (SQS will deliver them again): "
            f"{shown}{more}; first reason: {code}: {reason}",
            file=sys.stderr,
        )
    if stopped.is_set():
        return Status.INTERRUPTED
    unread = stats.stage_failures
    return Status.FAILED if not_deleted or unread or output.closed_by_reader else Status.OK


def command_receive(args: argparse.Namespace) -> int:
    offload_stage(args)  # a mistake in the --s3-* flags, before anything is written
    if args.output != "-":
        check_output(args.output, args.overwrite)
    output = Output(args.output)
    try:
        status = asyncio.run(receive_lines(args, output))
    except BaseException:
        if output.stream is not None and output.stream is not sys.stdout:
            output.stream.close()
        raise
    output.close()
    return status
