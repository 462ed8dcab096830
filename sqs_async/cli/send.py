"""`sqs-async send QUEUE FILE`: every line of FILE ends delivered or in --failed with its
message and the reason, whatever stops the command (a refusal, Ctrl-C, the deadline)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import functools
import json
import os
import signal
import sys
from typing import IO, Any

from ..errors import DEADLINE_EXCEEDED, INVALID_ATTRIBUTES, SqsAsyncError
from ..results import Delivered, Failed
from ..send import SqsProducer
from .common import (
    INTERRUPTED,
    CliError,
    Status,
    check_output,
    check_queue_url,
    offload_stage,
    open_output,
    queue_settings,
)
from .lines import Line, LineReader
from .report import Outcomes, Progress, Tally, counters_line

INVALID_JSON = "InvalidJson"
NOT_SENT = "not sent: {why}"
UNCONFIRMED = "{why} before SQS confirmed it: it may or may not have been delivered"
_GONE = object()


class Stop:
    """Why the command stopped early, if it did: the code and words its lines fail with."""

    def __init__(
        self, code: str, why: str, label: str = "", error: SqsAsyncError | None = None
    ) -> None:
        self.code = code
        self.why = why
        self.label = label  # for the summary line
        self.error = error  # the queue refused for good


def parse_line(line: Line) -> tuple[Any, str | None]:
    """The message on a line, or why there is none."""
    if line.problem is not None:
        return line.text, line.problem
    try:
        return json.loads(line.text), None
    except json.JSONDecodeError as exc:
        return line.text, f"line is not valid JSON: {exc.msg} at column {exc.colno}"


def with_binary_values(message: Any) -> Any:
    """The message to send: Binary attribute values, which a JSON line can only hold as
    base64 text (as `receive` writes them), decoded to bytes; the line's own message is kept
    for --failed. Raises ValueError for a value that is not base64."""
    attributes = message.get("MessageAttributes") if isinstance(message, dict) else None
    if not isinstance(attributes, dict):
        return message
    decoded = {}
    for name, value in attributes.items():
        if (
            isinstance(value, dict)
            and str(value.get("DataType", "")).startswith("Binary")
            and isinstance(value.get("BinaryValue"), str)
        ):
            try:
                raw = base64.b64decode(value["BinaryValue"], validate=True)
            except binascii.Error:
                raise ValueError(f"attribute {name!r}: BinaryValue is not base64") from None
            value = {**value, "BinaryValue": raw}
        decoded[name] = value
    return {**message, "MessageAttributes": decoded}


async def send_lines(
    args: argparse.Namespace, reader: LineReader, outcomes: Outcomes
) -> Stop | None:
    """Send every line; returns why it stopped early, if it did."""
    loop = asyncio.get_running_loop()
    unconfirmed: dict[int, Any] = {}  # line -> message, accepted and not resolved yet
    abort = asyncio.Event()
    stop: Stop | None = None

    def settle(number: int, future: asyncio.Future[Delivered | Failed]) -> None:
        message = unconfirmed.pop(number, _GONE)
        if message is _GONE or future.cancelled():
            return  # already recorded (given up on)
        nonlocal stop
        error = future.exception()
        if error is not None:  # the queue refused for good: nothing more can be sent
            code = getattr(error, "code", None) or "Error"
            outcomes.failed(number, message, code, str(error), False)
            if stop is None and isinstance(error, SqsAsyncError):
                stop = Stop(code, str(error), error=error)
                feeding.cancel()
        elif isinstance(outcome := future.result(), Delivered):
            outcomes.delivered()
        else:
            outcomes.failed(number, message, outcome.code, outcome.message, outcome.sender_fault)

    async def feed(producer: SqsProducer) -> None:
        nonlocal stop
        while (line := await reader.next()) is not None:
            if not line.text.strip():
                continue
            outcomes.tally.read += 1
            message, problem = parse_line(line)
            if problem is not None:
                outcomes.failed(line.number, message, INVALID_JSON, problem, True)
                continue
            try:
                entry = with_binary_values(message)
            except ValueError as exc:
                outcomes.failed(line.number, message, INVALID_ATTRIBUTES, str(exc), True)
                continue
            try:
                future = await producer.put(entry)
            except SqsAsyncError as exc:  # the queue refused for good
                stop = Stop(exc.code or "Error", str(exc), error=exc)
                outcomes.failed(line.number, message, stop.code, stop.why, False)
                return
            except asyncio.CancelledError:  # waiting for room when stopped
                assert stop is not None
                why = NOT_SENT.format(why=stop.why)
                outcomes.failed(line.number, message, stop.code, why, False)
                raise
            unconfirmed[line.number] = message
            future.add_done_callback(functools.partial(settle, line.number))

    def interrupted(code: str, why: str, label: str) -> None:
        """Once: stop reading and send what was read. Twice (or at the deadline): give up on
        what SQS has not confirmed."""
        nonlocal stop
        if stop is not None:
            abort.set()
            return
        stop = Stop(code, why, label)
        feeding.cancel()
        if code == DEADLINE_EXCEEDED:
            abort.set()

    await check_queue_url(args.queue, args.endpoint_url, args.region)
    async with SqsProducer(**producer_settings(args)) as producer:
        feeding = asyncio.create_task(feed(producer))
        ctrl_c = functools.partial(
            interrupted, INTERRUPTED, "the command was interrupted", "interrupted"
        )
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, ctrl_c)
        deadline = None
        if args.deadline is not None:
            late = f"the deadline ({args.deadline:g} s) passed"
            deadline = loop.call_later(
                args.deadline, interrupted, DEADLINE_EXCEEDED, late, "deadline passed"
            )
        try:
            await asyncio.wait({feeding})
            if not feeding.cancelled() and feeding.exception() is not None:
                raise feeding.exception()  # type: ignore[misc]
            if stop is not None:
                for line in reader.rest():  # read and not sent (for a file: unread, too)
                    if line.text.strip():
                        message = parse_line(line)[0]
                        why = NOT_SENT.format(why=stop.why) if stop.error is None else stop.why
                        outcomes.failed(line.number, message, stop.code, why, False)
            if stop is None or stop.error is None:
                flushed = asyncio.create_task(producer.flush())
                aborted = asyncio.create_task(abort.wait())
                await asyncio.wait({flushed, aborted}, return_when=asyncio.FIRST_COMPLETED)
                aborted.cancel()
                flushed.cancel()
                await asyncio.gather(flushed, aborted, return_exceptions=True)
            if abort.is_set():
                assert stop is not None
                for number, message in sorted(unconfirmed.items()):
                    why = UNCONFIRMED.format(why=stop.why)
                    outcomes.failed(number, message, stop.code, why, False)
                unconfirmed.clear()
                producer.close_timeout = 0  # close without waiting
        finally:
            if deadline is not None:
                deadline.cancel()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
    stats = getattr(producer, "stats", None)  # the producer's counters (a SendResult)
    if stats is not None:
        outcomes.tally.counters = stats.counters()
    await asyncio.sleep(0)  # the futures resolved by closing settle their lines
    for number, message in sorted(unconfirmed.items()):  # none, unless a bug: still recorded
        outcomes.failed(number, message, "Unconfirmed", "no outcome was reported", False)
    return stop


def producer_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        **queue_settings(args.queue),
        "endpoint_url": args.endpoint_url,
        "region_name": args.region,
        "max_in_flight": args.max_in_flight,
        "max_trials": args.max_trials,
        "payload_stage": offload_stage(args),
    }


def command_send(args: argparse.Namespace) -> int:
    offload_stage(args)  # a mistake in the --s3-* flags, before anything is read
    if args.file == "-":
        source: IO[bytes] = sys.stdin.buffer
    else:
        try:
            source = open(args.file, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    try:
        reader = LineReader(source.fileno())
        failed_out = None
        created = False
        if args.failed is not None:
            check_output(args.failed, args.overwrite, reading=args.file)
            created = not os.path.exists(args.failed)
            failed_out = open_output(args.failed)  # now: a path that cannot be written fails first
        tally = Tally()
        progress = Progress(tally, sys.stderr, total=reader.count_lines())
        outcomes = Outcomes(failed_out, progress)
        try:
            stop = asyncio.run(send_lines(args, reader, outcomes))
        except BaseException:
            if created and tally.failed == 0:  # a set-up error: leave nothing behind
                os.remove(args.failed)
            raise
        finally:
            progress.close()
            if failed_out is not None:
                failed_out.close()
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    print(
        f"sent {tally.delivered}, failed {tally.failed} in {tally.elapsed:.1f}s "
        f"({tally.delivered / tally.elapsed:.0f} msg/s)"
        + (f" ({stop.label})" if stop is not None and stop.label else ""),
        file=sys.stderr,
    )
    counters = counters_line(tally.counters)
    if counters:
        print(counters, file=sys.stderr)
    # Lines the queue's refusal failed are told by the error line below, once.
    summary = outcomes.summary(args.failed, told=stop.code if stop and stop.error else None)
    if summary:
        print(summary, file=sys.stderr)
    if stop is not None and stop.error is not None:
        raise CliError(stop.why)
    if stop is not None and stop.code == INTERRUPTED:
        return Status.INTERRUPTED
    return Status.OK if tally.failed == 0 else Status.FAILED
