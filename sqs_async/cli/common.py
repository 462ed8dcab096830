"""What the commands share: exit statuses, the error a user mistake becomes, queue and file
arguments."""

from __future__ import annotations

import enum
import os
from typing import IO

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
