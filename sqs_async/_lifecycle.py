"""`async with` for the engine's objects that open a client and must close it."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class AsyncResource:
    """Something with `open()` and `close()` coroutines, usable as `async with thing:`."""

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
