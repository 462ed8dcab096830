"""Prints the configuration reference of the README from the code itself.

    python scripts/config_reference.py

Names and defaults come from `SenderConfig`, `ReceiverConfig`, `S3Offload`, the signatures of
`SqsSender`, `SqsProducer`, `WriteToSqs`, `SqsReceiver` and `ReadFromSqs`, and the CLI's
parser; descriptions come from DESCRIPTIONS below (those of `S3Offload` and its flags from
`sqs_async.offload.FLAGS`). A test checks that the README holds exactly this
output, and that every option has a description.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
from collections.abc import Iterator
from typing import Any

from beam_adapter import ReadFromSqs, WriteToSqs
from sqs_async import ReceiverConfig, SenderConfig, SqsProducer, SqsReceiver, SqsSender
from sqs_async.cli import parser as cli_parser
from sqs_async.config import ConnectionConfig
from sqs_async.offload import FLAGS, S3Offload

# S3Offload's fields, and their flags (`--s3-bucket`, `--s3_bucket`), described once.
OFFLOAD = {f"offload {flag.field}": flag.help for flag in FLAGS} | {
    f"s3-{flag.field.replace('_', '-')}": flag.help for flag in FLAGS
}

DESCRIPTIONS = {
    "queue_url": "URL of the queue (give this or `queue_name`), or a function of the record "
    "giving its queue's URL, or `QueueField(name)`",
    "queue_name": "name of the queue, resolved to its URL once; or a function of the record "
    "giving its queue's name, or `QueueField(name)` (each queue resolved once)",
    "serializer": "turns each record into a body (str) or an entry mapping, e.g. `json.dumps`",
    "message_group_id": "FIFO group id where the entry has none: a str, or a function of the "
    "record",
    "message_deduplication_id": "FIFO deduplication id where the entry has none: a function of "
    "the record, e.g. `stable_hash`",
    "fifo_messages_per_group": "consecutive messages of one FIFO group per request (1-10); "
    "above 1, faster for few groups, but an entry failing alone reorders its group",
    "fifo_requests_per_second": "request rate cap per FIFO queue without high throughput "
    "(quota 300); None: no cap",
    "endpoint_url": "SQS endpoint, for a local server or a VPC endpoint",
    "region_name": "AWS region (default: the standard AWS configuration)",
    "aws_access_key_id": "credentials; default: the standard AWS credential chain",
    "aws_secret_access_key": "credentials; never shown in `repr`, logs or display data",
    "aws_session_token": "credentials (temporary); never shown",
    "verify": "TLS certificate verification: true, false or a CA bundle path",
    "use_ssl": "use https",
    "api_version": "SQS API version for botocore",
    "max_in_flight": "most SendMessageBatch requests at once (and the connection pool size)",
    "adaptive_concurrency": "halve concurrency on throttling or 5xx, grow it back after",
    "max_trials": "attempts per message, the first included (shortcut for `retry`)",
    "retry": "`RetryPolicy(max_trials, initial_backoff, max_backoff, jitter)`",
    "max_message_bytes": "message size limit; None: the queue's MaximumMessageSize, else 1 MiB",
    "max_request_bytes": "request size limit (sum of message sizes)",
    "connect_timeout": "seconds to connect, per attempt",
    "read_timeout": "seconds to wait for an answer, per attempt",
    "wire": '`"lean"`: batch calls and ReceiveMessage built and signed as botocore would, '
    "with less CPU; "
    '`"botocore"`: its generic call path',
    "payload_stage": "a `PayloadStage`: turns entries into what is sent, received messages "
    "into what is handed out (`sqs_async.stages`)",
    "config": "a `SenderConfig` (keywords given as well override its fields)",
    "client": "an open aiobotocore SQS client to borrow (never closed by the sender)",
    "client_wrapper": "wraps the client in use (fault injection in tests)",
    "sleep": "replaces `asyncio.sleep` between retries (tests)",
    "clock": "monotonic clock for deadlines and latencies (tests)",
    "settings": "any `SenderConfig` field",
    "sender_settings": "any other `SenderConfig` field",
    "linger": "seconds a partly filled batch waits for more messages",
    "max_buffered": "messages accepted and not yet resolved before `put` waits",
    "close_timeout": "seconds `close` waits before failing what is unconfirmed",
    "append_error": "pair each failed record with its own error (see `error_shape`)",
    "error_shape": '`"tuple"`: `(record, error)`, as sqs_pyio 0.1.0; `"key"`: an `error` key',
    "poll_on_open": "start polling when opened; False: at the first `start_receiving()`",
    "delete_after": '`"commit"`: on bundle finalization; `"output"`: once emitted',
    "owner_acc_id": "account id of the queue's owner (a queue shared from another account)",
    "queue_owner_account_id": "account id of the queue's owner, with `queue_name` (a shared queue)",
    "failed_output": "tag of the failed output",
    "emit_delivered": "emit `{record, MessageId}` on the main output",
    "buffer_size": "messages buffered per DoFn before a flush; None: max(1000, 100 x mif)",
    "bundle_deadline": "seconds after a bundle starts when what is unsent fails",
    "queue": "queue name or queue URL",
    "file": "JSON-lines file; - reads standard input",
    "endpoint-url": "SQS endpoint",
    "region": "AWS region",
    "max-in-flight": "concurrent requests",
    "max-trials": "attempts per message",
    "failed": "file for failed lines (JSON lines)",
    "port": "port of the local server (0: a free one)",
    "receiver queue_url": "URL of the queue to read (give this or `queue_name`)",
    "receiver queue_name": "name of the queue to read, resolved to its URL once",
    "receiver max_trials": "attempts per delete or visibility change (shortcut for `retry`)",
    "receiver retry": "`RetryPolicy` for deletes and visibility changes; receives retry "
    "transient errors without end",
    "wait_time_seconds": "long polling: seconds a receive waits on an empty queue (0-20); "
    "1 near the end of a read (see `SqsReceiver`)",
    "concurrent_receives": "ReceiveMessage calls at once, 10 messages each",
    "prefetch": "received messages that may wait in the buffer",
    "visibility_timeout": "seconds a received message stays hidden; extended by as much while held",
    "max_hold": "seconds after which a held message is no longer extended (None: no limit)",
    "attribute_names": "system attributes to receive",
    "message_attribute_names": "message attributes to receive",
    "max_messages": "bounded read: stop after this many messages",
    "max_read_time": "bounded read: stop after this many seconds",
    "until_empty": "bounded read: stop when a poll finds the queue empty",
    "with_receipt_handle": "add `ReceiptHandle` to each element",
    "bundle_size": "most messages per bundle",
    "readers": "parts the read is split into, for runners to read on several workers",
    "bundle_seconds": "most seconds a bundle waits for messages",
    "read max_hold": "seconds a bundle's messages stay hidden waiting for its commit",
    "receiver_settings": "any other `ReceiverConfig` field",
    "receiver config": "a `ReceiverConfig` (keywords given as well override its fields)",
    "receiver client": "an open aiobotocore SQS client to borrow (never closed by the receiver)",
    "receiver settings": "any `ReceiverConfig` field",
    "receiver clock": "monotonic clock for holding times and latencies (tests)",
    "read queue_name": "name of the queue to read (give this or `queue_url`)",
    "read queue_url": "URL of the queue to read",
    "output": "JSON-lines file; - is standard output",
    "max-messages": "stop after this many messages",
    "max-time": "stop after this many seconds",
    "until-empty": "stop when a poll finds the queue empty",
    "delete": "delete each message once written (default: keep them)",
    "wait": "long-polling seconds (0-20)",
    "visibility-timeout": "seconds a message stays hidden while held",
    "local queue": "create this queue when starting (repeatable)",
    "bucket": "create this S3 bucket when starting, served on the same endpoint (repeatable)",
    "read format": "schema'd rows instead of dicts: `STRING`, `RAW` or `JSON` (with `schema`)",
    "read schema": 'JSON schema of the body, for `format="JSON"`',
    "read error_output": "with `format`: the output for bodies JSON cannot parse (error rows)",
    "deadline": "stop after this many seconds: what is not confirmed by then fails",
    "overwrite": "replace a `--failed` file that holds data (refused otherwise)",
    "receive overwrite": "replace an `--output` file that holds data (refused otherwise)",
    "detach": "run in the background; return once the server is ready",
    "stop": "stop the server that `--detach` started on `--port`",
} | OFFLOAD


def _config_rows(cls: Any, skip: set[str] = set()) -> Iterator[tuple[str, str]]:  # noqa: B006
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        if field.default is not dataclasses.MISSING:
            yield field.name, f"`{field.default!r}`"
        elif field.default_factory is not dataclasses.MISSING:
            yield field.name, f"`{field.default_factory.__name__}()`"
        else:
            yield field.name, "required"


def _signature_rows(callable_: Any, skip: set[str]) -> Iterator[tuple[str, str]]:
    for name, parameter in inspect.signature(callable_).parameters.items():
        if name in skip:
            continue
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            yield f"**{name}", "-"
        elif parameter.default is inspect.Parameter.empty:
            yield name, "required"
        elif callable(parameter.default):
            yield name, f"`{parameter.default.__name__}`"
        else:
            yield name, f"`{parameter.default!r}`"


def _cli_rows() -> Iterator[tuple[str, str, str, str]]:
    """(command, option as typed, default, description key) for each CLI option."""
    subparsers = next(a for a in cli_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command, sub in subparsers.choices.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            if action.option_strings:
                option = action.option_strings[-1]
                yield command, option, f"`{action.default!r}`", option.lstrip("-")
            else:
                yield command, str(action.metavar), "required", action.dest


def _describe(name: str, context: str) -> str:
    key = name.lstrip("*").lstrip("-")
    specific = DESCRIPTIONS.get(f"{context} {key}")
    return specific if specific is not None else DESCRIPTIONS[key]


def table(title: str, rows: Iterator[tuple[str, str]], context: str = "") -> list[str]:
    lines = [f"**{title}**", "", "| option | default | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {default} | {_describe(name, context)} |" for name, default in rows]
    return [*lines, ""]


def reference() -> str:
    lines = table(
        "SenderConfig fields (keywords of SqsSender, SqsProducer, WriteToSqs)",
        _config_rows(SenderConfig),
    )
    lines += table("SqsSender", _signature_rows(SqsSender.__init__, {"self"}))
    lines += table("SqsProducer", _signature_rows(SqsProducer.__init__, {"self"}))
    lines += table("WriteToSqs", _signature_rows(WriteToSqs.__init__, {"self"}))
    connection = {field.name for field in dataclasses.fields(ConnectionConfig)}
    lines += table(
        "ReceiverConfig fields (keywords of SqsReceiver and ReadFromSqs), besides the "
        "connection fields above",
        _config_rows(ReceiverConfig, connection),
        "receiver",
    )
    lines += table("SqsReceiver", _signature_rows(SqsReceiver.__init__, {"self"}), "receiver")
    lines += table("ReadFromSqs", _signature_rows(ReadFromSqs.__init__, {"self"}), "read")
    lines += table(
        "S3Offload fields (`payload_stage=S3Offload(...)`; command line `--s3-<field>`, Beam "
        "pipeline options `--s3_<field>`)",
        _config_rows(S3Offload),
        "offload",
    )
    lines += [
        "**sqs-async command line**",
        "",
        "| command | option | default | meaning |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {command} | `{option}` | {default} | "
        f"{DESCRIPTIONS.get(f'{command} {key}', DESCRIPTIONS[key])} |"
        for command, option, default, key in _cli_rows()
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference(), end="")
