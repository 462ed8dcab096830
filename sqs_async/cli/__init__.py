"""The `sqs-async` command line: load a file of messages into a queue, read a queue into a
file, or start a local server.

sqs-async send QUEUE FILE     each line a JSON message (a string body or an entry object)
sqs-async receive QUEUE       messages as JSON lines; deleted only with --delete
sqs-async local               an SQS-compatible server on 127.0.0.1, for trying things out

A user's mistake ends in one `error:` line and a documented exit status (`Status`), never a
traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from .._version import __version__
from ..config import ReceiverConfig
from ..defaults import MAX_IN_FLIGHT, MAX_VISIBILITY_SECONDS, MAX_WAIT_SECONDS
from ..errors import SqsAsyncError
from ..offload import add_flags
from ..retry import RetryPolicy
from .common import CliError, Status
from .local import command_local
from .receive import command_receive
from .send import command_send

# The engine's defaults, not restated.
DEFAULT_MAX_TRIALS = RetryPolicy.max_trials
DEFAULT_WAIT = ReceiverConfig.wait_time_seconds
DEFAULT_VISIBILITY = ReceiverConfig.visibility_timeout


def exit_statuses(done: str, failed: str) -> str:
    return f"""\
exit status:
  0    {done}
  1    {failed}
  2    a usage or set-up error: a bad option, an unreadable file, no region, a queue that
       does not exist or refuses, an unreachable endpoint
  130  interrupted (Ctrl-C or SIGTERM)
"""


SEND_EXAMPLE = """\
examples:
  sqs-async send my-queue messages.jsonl --region eu-west-1 --failed failed.jsonl
  cat messages.jsonl | sqs-async send https://sqs.eu-west-1.amazonaws.com/123456789012/q -
  sqs-async send q messages.jsonl --endpoint-url http://127.0.0.1:9324 --region us-east-1

Each line is a JSON string (the body) or an object of SQS entry fields, for example
  "hello"
  {"MessageBody": "hello", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}}
Binary attribute values are base64 text (as `receive` writes them).
Failed lines go to --failed as {"line": N, "message": ..., "error": {...}}; the "message"
values can be sent again. Ctrl-C stops reading and sends what was read; a second Ctrl-C stops
waiting for SQS. Lines not sent go to --failed too (those of a pipe not read yet stay in it).

""" + exit_statuses("every line delivered", "some lines failed (each is in --failed)")

RECEIVE_EXAMPLE = """\
examples:
  sqs-async receive my-queue --until-empty > messages.jsonl          # a copy; the queue keeps them
  sqs-async receive my-queue --max-messages 100 --delete --output taken.jsonl

Each line is {"MessageId", "Body", "Attributes", "MessageAttributes"} (Binary attribute values
in base64), and "PayloadLocation" for a body fetched from S3 (--s3-bucket). Without --delete
every message read is made visible again at the end, for other readers; with --delete a
message is deleted once its line is written, and on Ctrl-C every line written is deleted
before the command ends. Without a limit it runs until Ctrl-C.

""" + exit_statuses(
    "every message written (and deleted, with --delete)",
    "some written messages could not be deleted (their ids are listed), or some could not be\n"
    "       read whole (their body in S3 could not be fetched)",
)

LOCAL_EXAMPLE = """\
examples:
  sqs-async local --port 9324 --queue demo            # in the foreground; Ctrl-C stops it
  sqs-async local --port 9324 --queue demo --detach   # returns once ready
  sqs-async local --port 9324 --stop

exit status: 0 started (and stopped); 2 the port is taken, moto is missing, or no server
runs on that port (--stop)
"""


class _Parser(argparse.ArgumentParser):
    """A usage mistake in one `error:` line (argparse prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(Status.USAGE, f"error: {message} (see '{self.prog} --help')\n")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; each option's default shown where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, [], argparse.SUPPRESS) and action.option_strings:
            text += " (default: %(default)s)"
        return text


def _number(kind: Callable[[str], Any], low: float, high: float | None = None) -> Any:
    """An argparse type: a number of `kind` from `low` to `high`."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < low or (high is not None and value > high):
            span = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
            raise argparse.ArgumentTypeError(f"must be {span} (got {text})")
        return value

    return parse


def _queue_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("queue", metavar="QUEUE", help="queue name or queue URL")
    command.add_argument("--endpoint-url", help="SQS endpoint (a local server, for example)")
    command.add_argument("--region", help="AWS region (default: the standard AWS configuration)")


def _offload_arguments(command: argparse.ArgumentParser, side: str) -> None:
    group = command.add_argument_group(
        "large messages", "bodies over the queue's limit through S3, as AWS's extended clients do"
    )
    add_flags(group.add_argument, "-", side)


def parser() -> argparse.ArgumentParser:
    main = _Parser(
        prog="sqs-async",
        description="Move messages to and from Amazon SQS, fast.",
        epilog="run 'sqs-async COMMAND --help' for a command's options and examples",
    )
    main.add_argument("--version", action="version", version=f"sqs-async {__version__}")
    commands = main.add_subparsers(dest="command", required=True)
    send = commands.add_parser(
        "send",
        help="send a file of JSON-lines messages to a queue",
        epilog=SEND_EXAMPLE,
        formatter_class=_HelpFormatter,
        description="Send each line of FILE (JSON) as a message to QUEUE.",
    )
    _queue_arguments(send)
    send.add_argument("file", metavar="FILE", help="JSON-lines file; - reads standard input")
    send.add_argument(
        "--max-in-flight",
        type=_number(int, 1),
        default=MAX_IN_FLIGHT,
        help="concurrent requests",
    )
    send.add_argument(
        "--max-trials",
        type=_number(int, 1),
        default=DEFAULT_MAX_TRIALS,
        help="attempts per message",
    )
    send.add_argument("--failed", metavar="FILE", help="write failed lines here (JSON lines)")
    send.add_argument(
        "--deadline",
        type=_number(float, 0.001),
        metavar="SECONDS",
        help="stop after this many seconds: what is not confirmed by then fails",
    )
    send.add_argument(
        "--overwrite", action="store_true", help="replace a --failed file that holds data"
    )
    _offload_arguments(send, "send")
    send.set_defaults(run=command_send)
    receive = commands.add_parser(
        "receive",
        help="write a queue's messages as JSON lines",
        epilog=RECEIVE_EXAMPLE,
        formatter_class=_HelpFormatter,
        description="Read messages from QUEUE and write them as JSON lines.",
    )
    _queue_arguments(receive)
    receive.add_argument("--output", default="-", help="JSON-lines file; - is standard output")
    receive.add_argument(
        "--overwrite", action="store_true", help="replace an --output file that holds data"
    )
    receive.add_argument(
        "--max-messages", type=_number(int, 1), help="stop after this many messages"
    )
    receive.add_argument(
        "--max-time", type=_number(float, 0.001), help="stop after this many seconds"
    )
    receive.add_argument(
        "--until-empty", action="store_true", help="stop when a poll finds the queue empty"
    )
    receive.add_argument(
        "--delete", action="store_true", help="delete each message once written (default: keep)"
    )
    receive.add_argument(
        "--wait",
        type=_number(int, 0, MAX_WAIT_SECONDS),
        default=DEFAULT_WAIT,
        help=f"long-polling seconds (0-{MAX_WAIT_SECONDS})",
    )
    receive.add_argument(
        "--visibility-timeout",
        type=_number(int, 0, MAX_VISIBILITY_SECONDS),
        default=DEFAULT_VISIBILITY,
        help="seconds a message is hidden while held",
    )
    _offload_arguments(receive, "receive")
    receive.set_defaults(run=command_receive)
    local = commands.add_parser(
        "local",
        help="start a local SQS server on 127.0.0.1",
        epilog=LOCAL_EXAMPLE,
        formatter_class=_HelpFormatter,
        description="Start moto's SQS server on 127.0.0.1 (needs sqs-async[local]).",
    )
    local.add_argument(
        "--port", type=_number(int, 0, 65535), default=0, help="port (0: a free one)"
    )
    local.add_argument("--queue", action="append", default=[], help="create this queue")
    local.add_argument(
        "--bucket", action="append", default=[], help="create this S3 bucket (large messages)"
    )
    mode = local.add_mutually_exclusive_group()
    mode.add_argument(
        "--detach", action="store_true", help="run in the background; return once ready"
    )
    mode.add_argument("--stop", action="store_true", help="stop the server --detach started")
    local.add_argument("--serve-detached", action="store_true", help=argparse.SUPPRESS)
    local.set_defaults(run=command_local)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # a usage mistake: argparse's message, status 2
    try:
        return int(args.run(args))
    except (CliError, SqsAsyncError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return Status.USAGE
    except KeyboardInterrupt:  # before the command's own handler was in place
        return Status.INTERRUPTED


__all__ = ["Status", "main", "parser"]
