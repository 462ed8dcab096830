"""What the commands share: exit statuses, the error a user mistake becomes, queue and file
arguments."""

from __future__ import annotations

import argparse
import enum
import os
from contextlib import AsyncExitStack
from typing import IO, Any

from ..config import ConnectionConfig
from ..errors import Kind, classify, error_code, is_transient, refusal
from ..offload import S3Offload, offload_from
from ..retry import RetryPolicy, default_sleep
from ..wire import open_client

INTERRUPTED = "Interrupted"


class Status(enum.IntEnum):
    """Exit statuses (documented in the README and in `--help`)."""

    OK = 0  # every message delivered, or received (and deleted when asked)
    FAILED = 1  # some messages failed: each is in --failed (send), or was not deleted (receive)
    USAGE = 2  # a usage or set-up error: bad option, unreadable input, refused queue, no server
    INTERRUPTED = 130  # Ctrl-C or SIGTERM (128 + SIGINT, as shells report it)


class CliError(Exception):
    """A mistake or a set-up problem, told to the user in one sentence (exit status 2)."""


def queue_settings(queue: str) -> dict[str, str]:
    return {"queue_url": queue} if "://" in queue else {"queue_name": queue}


def offload_stage(args: argparse.Namespace) -> S3Offload | None:
    """The `--s3-*` flags' stage (None without `--s3-bucket`); a setting that cannot work is
    a usage mistake."""
    try:
        return offload_from(vars(args))
    except ValueError as exc:
        raise CliError(str(exc)) from None


def check_output(path: str, overwrite: bool, *, reading: str | None = None) -> None:
    """Refuse to write over the input, or over a file that holds something, unless asked."""
    if reading not in (None, "-") and os.path.exists(path) and os.path.samefile(path, reading):
        raise CliError(f"{path} is the input file: write to another file")
    if os.path.isdir(path):
        raise CliError(f"{path} is a folder: name a file")
    if not overwrite and os.path.isfile(path) and os.path.getsize(path) > 0:
        raise CliError(f"{path} already holds data: choose another file, or pass --overwrite")


def open_output(path: str) -> IO[str]:
    try:
        return open(path, "w", encoding="utf-8")  # the caller closes it
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from None


# Codes of a probe that say nothing about the queue: sending or receiving decides.
_NOT_CONCLUSIVE = frozenset({"AccessDenied", "AccessDeniedException"})


async def check_queue_url(queue: str, endpoint_url: str | None, region: str | None) -> None:
    """Ask SQS about a queue given by URL before anything is read or written, so that a queue
    that does not exist or an endpoint that does not answer is a set-up error, as for a queue
    name (whose look-up does the same). Access denied proves nothing: a send-only role may
    lack `sqs:GetQueueAttributes`."""
    if "://" not in queue:
        return
    config = ConnectionConfig(endpoint_url=endpoint_url, region_name=region)
    async with AsyncExitStack() as stack:
        client: Any = await open_client(config, stack, pool_size=1)

        async def ask() -> Any:
            return await client.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])

        try:
            await RetryPolicy().retrying_call(sleep=default_sleep)(ask)
        except Exception as exc:
            code = error_code(exc)
            conclusive = is_transient(exc) or classify(exc) is Kind.FATAL
            if conclusive and code not in _NOT_CONCLUSIVE:
                raise refusal(exc, code, queue, retryable=is_transient(exc)) from exc
