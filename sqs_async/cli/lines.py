"""The lines of the command's input, read only as they are needed.

Standard input is waited on by the event loop, never in a blocking read: Ctrl-C is handled at
once even while a pipe is silent. And the reader knows at every moment which lines it has taken
from the input without handing them out (`taken`), so that an interrupted command can account
for every line it read: the rest of a pipe stays in the pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections import deque
from collections.abc import Iterator
from typing import NamedTuple

CHUNK = 1 << 16


class Line(NamedTuple):
    number: int  # from 1, blank lines counted
    text: str
    problem: str | None  # why the bytes are no text, if they are not


class LineReader:
    """Lines of the file open as `fd`; `regular` when it is a file (whose rest can be read
    after an interruption, and whose lines can be counted up front)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.regular = stat.S_ISREG(os.fstat(fd).st_mode)
        self._lines: deque[bytes] = deque()
        self._partial = b""
        self._eof = False
        self._number = 0

    async def next(self) -> Line | None:
        """The next line, or None at the end of the input."""
        while not self._lines:
            if self._eof:
                return None
            self._take(await self._read())
        return self._hand_out(self._lines.popleft())

    def taken(self) -> list[Line]:
        """Lines read from the input and not handed out yet (handed out now)."""
        lines = [self._hand_out(raw) for raw in self._lines]
        self._lines.clear()
        if self._partial:  # an unfinished line: its rest, if any, is still in the input
            lines.append(self._hand_out(self._partial))
            self._partial = b""
        return lines

    def rest(self) -> Iterator[Line]:
        """Every line not handed out: those taken, then, for a file, those still unread."""
        if self.regular:
            while not self._eof:
                while self._lines:
                    yield self._hand_out(self._lines.popleft())
                self._take(os.read(self._fd, CHUNK))
        yield from self.taken()

    def count_lines(self) -> int | None:
        """Lines in a file (read once, from the start, without moving the reader), or None
        for a pipe or a terminal."""
        if not self.regular:
            return None
        count, offset, last = 0, 0, b"\n"
        while chunk := os.pread(self._fd, CHUNK, offset):
            count += chunk.count(b"\n")
            offset += len(chunk)
            last = chunk[-1:]
        return count + (last != b"\n")

    async def _read(self) -> bytes:
        if not self.regular:
            await _readable(self._fd)
        return os.read(self._fd, CHUNK)

    def _take(self, chunk: bytes) -> None:
        if not chunk:
            self._eof = True
            if self._partial:
                self._lines.append(self._partial)
                self._partial = b""
            return
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        self._lines.extend(complete)

    def _hand_out(self, raw: bytes) -> Line:
        self._number += 1
        try:
            return Line(self._number, raw.decode("utf-8"), None)
        except UnicodeDecodeError as exc:
            text = raw.decode("utf-8", errors="replace")
            return Line(self._number, text, f"line is not UTF-8 text (byte {exc.start + 1})")


async def _readable(fd: int) -> None:
    """Wait until reading `fd` would not block (at once for what epoll cannot watch)."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    try:
        loop.add_reader(fd, wake)
    except (OSError, ValueError, NotImplementedError):  # /dev/null and the like never block
        return
    try:
        await ready
    finally:
        with contextlib.suppress(Exception):
            loop.remove_reader(fd)
