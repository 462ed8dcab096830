"""The engine that `SqsSender` and `SqsProducer` each own.

- The client: borrowed, or opened on the running loop (`wire.client_for`), with a connection
  pool as large as `max_in_flight`; closed with the engine when the engine opened it.
- Destinations: the configured queue, found when the engine opens; with routing, each
  record's queue (a URL or a name), found once (URL and traits) and cached for the engine's
  life. A queue that cannot be found, or that refused a request during a send, fails only the
  records bound for it, each with its own `Failed`.
- Admission (`admit`): the record functions (`_entries`), the payload stage (`_staging`, only
  when the config's stage overrides `outgoing`), validation (`_validation`: the stage's result
  is what is validated, measured and packed) and, on a FIFO queue, the groups its ledger has
  halted. A record comes out as a `Pending` for its queue's accumulator, or as its `Failed`.
- The dispatcher (`_dispatcher`), which drains the accumulators.
- The payload stage's session (`PayloadStage.session`), open while the engine is, and its
  `undelivered` calls (in the background; awaited before the engine closes).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any

from ..config import SenderConfig
from ..errors import INVALID_RECORD, SqsAsyncError
from ..results import Failed
from ..retry import Sleep
from ..stages import PayloadStage, overrides
from ..wire import QueueTraits, SqsClient, client_for, read_queue_traits, resolve_queue_url
from ._accumulator import Accumulator, Pending
from ._dispatcher import Dispatcher
from ._entries import EntryBuilder, QueueField
from ._fifo import group_of
from ._ledger import Ledger, SendLedger
from ._staging import Staged
from ._validation import Rejection, prepare

log = logging.getLogger("sqs_async")

_BUILD: Any = object()  # `admit`'s entry when the record functions are still to run


class Engine:
    """One client, the destinations, admission and the dispatcher (see the module doc)."""

    def __init__(
        self,
        config: SenderConfig,
        *,
        client: SqsClient | None,
        client_wrapper: Callable[[SqsClient], SqsClient] | None,
        sleep: Sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.route = config.route
        # The payload stage's session, when it does something on the way out (else admission
        # skips it), and when it wants to hear of entries it made that were not delivered.
        self.stage: PayloadStage | None = None
        self._undelivered_stage: PayloadStage | None = None
        self._undelivered_calls: set[asyncio.Task[None]] = set()
        self._borrowed_client = client
        self._client_wrapper = client_wrapper
        self._sleep = sleep
        self._clock = clock
        self._stack: AsyncExitStack | None = None
        self._client: SqsClient | None = None
        self._dispatcher: Dispatcher | None = None
        self._destinations: dict[str, tuple[str, QueueTraits]] = {}
        self._entries = EntryBuilder(
            serializer=config.serializer,
            message_group_id=config.message_group_id,
            message_deduplication_id=config.message_deduplication_id,
            queue_field=self.route.name if isinstance(self.route, QueueField) else None,
        )
        self.queue_url: str | None = None  # the configured queue (None: routing)
        self.traits: QueueTraits | None = None

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            raise RuntimeError("the engine is not open")
        return self._dispatcher

    @property
    def is_open(self) -> bool:
        return self._dispatcher is not None

    async def open(self) -> None:
        """Open the client and find the configured queue; a no-op when already open."""
        if self._dispatcher is not None:
            return
        config = self.config
        stack = AsyncExitStack()
        try:
            self._client = await client_for(
                config,
                stack,
                borrowed=self._borrowed_client,
                wrapper=self._client_wrapper,
                pool_size=config.max_in_flight,
            )
            if config.payload_stage is not None:
                stage = await stack.enter_async_context(config.payload_stage.session(config))
                self.stage = stage if overrides(stage, "outgoing") else None
                self._undelivered_stage = stage if overrides(stage, "undelivered") else None
            queue = config.queue_url or config.queue_name
            if isinstance(queue, str):
                self.queue_url, self.traits = await self.destination(queue)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        self._dispatcher = Dispatcher(
            client=self._client,
            policy=config.retry,
            max_in_flight=config.max_in_flight,
            max_request_bytes=config.max_request_bytes,
            request_timeout=config.request_timeout,
            sleep=self._sleep,
            adaptive=config.adaptive_concurrency,
            fifo_messages_per_group=config.fifo_messages_per_group,
            fifo_requests_per_second=config.fifo_requests_per_second,
            clock=self._clock,
        )

    async def close(self) -> None:
        """Stop what is still being sent and close the client if the engine opened it."""
        stack, self._stack = self._stack, None
        dispatcher, self._dispatcher = self._dispatcher, None
        try:
            if dispatcher is not None:
                await dispatcher.close()
            while self._undelivered_calls:
                await asyncio.gather(*self._undelivered_calls)
        finally:
            self.stage = self._undelivered_stage = None
            if stack is not None:
                await stack.aclose()

    def undelivered(self, entry: dict[str, Any]) -> None:
        """Tell the stage, in the background, that `entry` (which it made) will never be
        delivered; a failure there is logged (the record's `Failed` stands)."""
        stage = self._undelivered_stage
        if stage is None:
            return
        task = asyncio.get_running_loop().create_task(self._tell_undelivered(stage, entry))
        self._undelivered_calls.add(task)
        task.add_done_callback(self._undelivered_calls.discard)

    @staticmethod
    async def _tell_undelivered(stage: PayloadStage, entry: dict[str, Any]) -> None:
        try:
            await stage.undelivered(entry)
        except Exception as exc:
            log.warning("payload stage failed on an undelivered entry: %r", exc)

    async def destination(self, queue: str) -> tuple[str, QueueTraits]:
        """URL and traits of `queue` (a URL or a name, as configured), found once and cached."""
        found = self._destinations.get(queue)
        if found is None:
            config = self.config
            assert self._client is not None, "opened before use"
            queue_url = queue
            if config.queue_url is None:
                queue_url = await resolve_queue_url(
                    self._client,
                    queue,
                    config.retry,
                    self._sleep,
                    owner_account_id=config.queue_owner_account_id,
                )
            traits = await read_queue_traits(
                self._client, queue_url, config.max_message_bytes, config.max_request_bytes
            )
            found = self._destinations[queue] = (queue_url, traits)
        return found

    async def accumulator_for(
        self, record: Any, index: int, ledger: SendLedger
    ) -> Accumulator | Failed:
        """The accumulator of a routed record's queue, or the record's `Failed` when it cannot
        be routed, or its queue cannot be found or refused this send."""
        route = self.route
        assert route is not None, "only routed records are looked up"
        try:
            key = route(record)
            if not isinstance(key, str) or not key:
                raise ValueError(f"it gave {key!r}, not a queue")
        except Exception as exc:
            why = f"the queue function failed on this record: {type(exc).__name__}: {exc}"
            return rejected(record, index, Rejection(INVALID_RECORD, why))
        error = ledger.unreachable.get(key)
        if error is None:
            try:
                queue_url, traits = await self.destination(key)
            except SqsAsyncError as exc:
                error = ledger.unreachable[key] = exc
        if error is None:
            error = ledger.refused.get(queue_url)
        if error is not None:
            return stopped(record, index, error)
        return self.dispatcher.accumulator(queue_url, traits)

    def admit(
        self,
        record: Any,
        index: int,
        ledger: Ledger,
        accumulator: Accumulator,
        entry: Any = _BUILD,
    ) -> Pending | Failed:
        """The one way of a record towards an accumulator: the record functions (unless
        `entry`, what they and the stage made of it, is given), validation and, on a FIFO
        queue, the halted groups of `ledger`. A `Pending` for `accumulator`, or its `Failed`."""
        if entry is _BUILD:
            entries = self._entries
            entry = record if entries.is_identity else entries.build(record, fifo=accumulator.fifo)
        prepared = entry
        if not isinstance(entry, Rejection):
            prepared = prepare(entry, index, accumulator.traits, record=record)
        if isinstance(prepared, Rejection):
            if accumulator.fifo and isinstance(entry, Mapping):
                why = f"message #{index} was {prepared.code}"
                ledger.halt(accumulator.queue_url, entry.get("MessageGroupId"), why)
            return rejected(record, index, prepared)
        pending = Pending(prepared, ledger)
        if accumulator.fifo and ledger.halted:
            halted = ledger.halted.get((accumulator.queue_url, group_of(pending)))
            if halted is not None:
                return pending.halted(halted)
        return pending

    def staged(self, record: Any, index: int, accumulator: Accumulator) -> Staged:
        """`record` with the record functions applied, for the payload stage: a str entry goes
        to the stage as `{"MessageBody": entry}`, a mapping as a copy of its own."""
        entry = self._entries.build(record, fifo=accumulator.fifo)
        fields: dict[str, Any] | None = None
        if isinstance(entry, str):
            fields = {"MessageBody": entry}
        elif isinstance(entry, Mapping):
            fields = dict(entry)
        return Staged(record, index, accumulator, entry, fields)

    def admit_staged(self, staged: Staged, ledger: Ledger) -> Pending | Failed:
        """`admit` for a record back from the stage (in its turn). A stage that raised fails
        the record alone (and, for a ledger that halts groups, halts its FIFO group, as a
        rejection does)."""
        outcome = staged.outcome
        accumulator = staged.accumulator
        if isinstance(outcome, BaseException):
            failed = stopped(staged.record, staged.index, outcome)
            if accumulator.fifo and isinstance(staged.entry, Mapping):
                why = f"message #{staged.index} was {failed.code}"
                ledger.halt(accumulator.queue_url, staged.entry.get("MessageGroupId"), why)
            return failed
        admitted = self.admit(staged.record, staged.index, ledger, accumulator, outcome)
        # Only an entry the stage made (a new mapping) is its to hear about: one it passed
        # through unchanged (a pointer the caller sends on, say) is not.
        if (
            self._undelivered_stage is not None
            and isinstance(outcome, Mapping)
            and outcome is not staged.fields
        ):
            if isinstance(admitted, Failed):
                self.undelivered(dict(outcome))
            else:
                admitted.undelivered = self.undelivered
        return admitted

    def abandoned(self, staged: Staged) -> None:
        """`staged` will not be admitted (its send ended first): if the stage had already
        made its entry, the stage hears it was not delivered."""
        task = staged.task
        if task is not None and task.done() and not task.cancelled():
            entry = None if task.exception() is not None else task.result()
            if isinstance(entry, Mapping) and entry is not staged.fields:
                self.undelivered(dict(entry))


def rejected(record: Any, index: int, rejection: Rejection) -> Failed:
    """The `Failed` result of a record that validation (or a record function) rejected."""
    return Failed(
        record=record,
        index=index,
        code=rejection.code,
        message=rejection.reason,
        sender_fault=True,
        attempts=0,
    )


def stopped(record: Any, index: int, error: BaseException) -> Failed:
    """The `Failed` result of a record that `error` stopped before any request (its queue
    cannot be found or refused the send, its payload stage raised): the error's `code`
    attribute (else its class name), its text; the sender's fault unless it is `retryable`."""
    code = getattr(error, "code", None)
    return Failed(
        record=record,
        index=index,
        code=code if isinstance(code, str) and code else type(error).__name__,
        message=str(error),
        sender_fault=not getattr(error, "retryable", False),
        attempts=0,
    )
