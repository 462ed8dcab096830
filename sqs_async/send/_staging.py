"""The payload stage on the send path: records go through `PayloadStage.outgoing`
concurrently, at most `limit` calls at once, and are handed on in the order they came,
whatever order the calls end in (so FIFO groups keep their order).

The engine comes here only when the sender's stage overrides `outgoing`; without one,
admission never does. A record whose entry the stage has nothing to do with (the record
functions rejected it, or it is no message: validation will say why) is handed on as it is,
in its turn.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..stages import PayloadStage

if TYPE_CHECKING:
    from ._accumulator import Accumulator


class Staged:
    """A record on its way through the stage: `entry` is what the record functions made of
    it, `fields` what the stage is given (None: nothing for it to do), `outcome` the entry
    the stage returned or the exception it raised."""

    __slots__ = ("accumulator", "entry", "fields", "index", "outcome", "record", "task")

    def __init__(
        self,
        record: Any,
        index: int,
        accumulator: Accumulator,
        entry: Any,
        fields: dict[str, Any] | None,
    ) -> None:
        self.record = record
        self.index = index
        self.accumulator = accumulator
        self.entry = entry
        self.fields = fields
        self.outcome: Any = entry if fields is None else None
        self.task: asyncio.Task[dict[str, Any]] | None = None

    @property
    def done(self) -> bool:
        return self.fields is None or (self.task is not None and self.task.done())


class Staging:
    """Runs the stage on records put in, at most `limit` calls at once, and gives the records
    whose turn has come, in order, to `hand_on`."""

    def __init__(
        self, stage: PayloadStage, limit: int, hand_on: Callable[[list[Staged]], None]
    ) -> None:
        self._stage = stage
        self._limit = limit
        self._hand_on = hand_on
        self._order: deque[Staged] = deque()  # every record not yet handed on, in order
        self._queued: deque[Staged] = deque()  # those whose stage call has not started
        self._running = 0

    def __len__(self) -> int:
        """Records in the stage (running, waiting to start, or waiting for their turn)."""
        return len(self._order)

    def put(self, staged: Staged) -> None:
        self._order.append(staged)
        if staged.fields is None:
            if self._order[0] is staged:
                self._hand_on_ready()
            return
        self._queued.append(staged)
        self._start()

    def cancel(self) -> list[Staged]:
        """Stop every stage call; returns the records not handed on (nothing more will be)."""
        gone = list(self._order)
        self._order.clear()
        self._queued.clear()
        for staged in gone:
            task = staged.task
            if task is not None:
                task.cancel()  # no-op when done
        return gone

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queued and self._running < self._limit:
            staged = self._queued.popleft()
            assert staged.fields is not None, "only records with a stage call are queued"
            self._running += 1
            task = loop.create_task(self._stage.outgoing(staged.fields, staged.accumulator.traits))
            staged.task = task
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[dict[str, Any]]) -> None:
        self._running -= 1
        if not task.cancelled():
            task.exception()  # retrieved even for a record given up (see `cancel`)
        self._start()
        self._hand_on_ready()

    def _hand_on_ready(self) -> None:
        order = self._order
        ready: list[Staged] = []
        while order and order[0].done:
            staged = order.popleft()
            task = staged.task
            if task is not None:
                if task.cancelled():  # by the stage itself, not by `cancel`
                    staged.outcome = asyncio.CancelledError("the payload stage was cancelled")
                else:
                    staged.outcome = task.exception() or task.result()
            ready.append(staged)
        if ready:
            self._hand_on(ready)
