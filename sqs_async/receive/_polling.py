"""Long polling: the `ReceiveMessage` loops of one receiver, the bounded prefetch buffer they
fill, the finding that the queue is empty, and ending the polls without stranding a message.

`concurrent_receives` polls run at once, each asking for up to `MAX_BATCH_ENTRIES` messages
and waiting up to `wait_time_seconds` on an empty queue. What an answer brings is held at once
(the keeper extends it from then on), goes through the payload stage's `incoming` when there
is one, and waits in the buffer (at most `prefetch` messages; a poll waits for room). A
transient error backs off and polls again, without end; any other (the queue is gone, access
denied) ends the poll and is raised to readers.

Ending within about a second. A poll open on SQS cannot be called back (see `Polling.stop`),
so a read that is done must not have a long one open: polls ask for no more messages than the
reader will still take (`Polling.want`), none at all once it has them; and a poll waits
`wait_time_seconds` only while more messages are likely waiting (the last answer was full) or
a reader waits for the queue to be found empty. Otherwise it waits `SHORT_WAIT_SECONDS` (a wait
only matters on a queue with nothing to give), and while nothing came (just started, or the
last answer was empty) one poll at a time: stopping then takes about a second, and an idle
receiver makes about one call a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .. import stages
from ..config import ReceiverConfig
from ..defaults import MAX_BATCH_ENTRIES, SHORT_WAIT_SECONDS
from ..errors import error_code, refusal
from ..retry import Sleep
from ..stages import Discard
from ..wire import SqsReceiveClient
from ._keeper import Keeper
from ._messages import ReceivedMessage, ReceiverStats
from ._stages import incoming
from ._throttling import ThrottleClock, ThrottledTime


class EmptyQueue:
    """Decides when the queue is empty. One empty answer is not enough: a poll open at the
    same time may be bringing the very messages this one could not see (another reader, or
    that poll, held them). The queue counts as empty once every poll open on SQS when an
    empty answer came has come back empty too, and a poll has waited the full
    `wait_time_seconds` in vain since the last message (shorter polls alone never find it
    empty); any messages void that evidence.

    Each finding counts in `stats.found_empty` and sets `found` (a reader waiting for one
    clears it first). `since_start` says whether the queue was found empty since polling last
    started (`restart`) and no poll has brought a message since. What polling last learnt of
    the queue outlasts a restart: `coming`, the last answer was full (more are likely
    waiting); `quiet`, it brought nothing (or none came yet); `waited`, a poll waited the full
    time in vain and none brought a message since."""

    def __init__(self, stats: ReceiverStats) -> None:
        self._stats = stats
        self.found = asyncio.Event()
        self.since_start = False
        self.coming = False
        self.quiet = True
        self.waited = False
        self._evidence: set[asyncio.Task[Any]] | None = None  # polls still to come back empty

    def restart(self) -> None:
        self.since_start = False

    def poll_returned(
        self,
        task: asyncio.Task[Any],
        on_server: set[asyncio.Task[Any]],
        *,
        brought: bool,
        full: bool = False,
        waited: bool = True,
    ) -> None:
        """The poll `task` had an answer (`brought`: with messages; `full`: as many as it
        asked for; `waited`: it was asked to wait the full `wait_time_seconds`); `on_server`
        are the polls with a call open on SQS now."""
        self.coming, self.quiet = full, not brought
        if brought:
            self._evidence = None
            self.since_start = False
            self.waited = False
            return
        self._stats.empty_receives += 1
        self.waited = self.waited or waited
        if self._evidence is None:
            self._evidence = set(on_server)
        # A poll that ended without an answer (cancelled when polling stopped) has no say.
        self._evidence = {t for t in self._evidence if t is not task and not t.done()}
        if not self._evidence:
            self._evidence = None
            if not self.waited:
                return
            self._stats.found_empty += 1
            self.since_start = True
            self.found.set()


class Polling:
    """The polls of one receiver and the buffer they fill (the receiver opens it with `bind`
    and `start`s and `stop`s the polls)."""

    def __init__(
        self,
        config: ReceiverConfig,
        *,
        keeper: Keeper,
        stats: ReceiverStats,
        throttled_time: ThrottledTime,
        fail: Callable[[BaseException], None],
        discard: Callable[[list[ReceivedMessage]], Awaitable[None]],
        sleep: Sleep,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._keeper = keeper
        self._stats = stats
        self._throttled_time = throttled_time
        self._fail = fail
        self._discard = discard
        self._sleep = sleep
        self._clock = clock
        self._stage: stages.PayloadStage | None = None  # the stage's session, given at `bind`
        self._attribute_names = list(config.message_attribute_names)
        self._max_ask = MAX_BATCH_ENTRIES  # messages per call (fewer for a large-message stage)
        self._client: Any = None
        self._queue_url = ""
        self.buffer: asyncio.Queue[ReceivedMessage] = asyncio.Queue()
        self.empty = EmptyQueue(stats)
        self._tasks: list[asyncio.Task[None]] = []
        self._on_server: set[asyncio.Task[Any]] = set()  # polls with a call open on SQS
        self._staging: set[asyncio.Task[Any]] = set()  # polls in the payload stage
        self._stopping = False
        # What the reader wants (`want`), and what is on its way to it: received and not
        # handed out (in a poll's hands, the stage or the buffer), and asked for on SQS.
        self._wanted: int | None = None
        self._until_empty = False
        self._not_out = 0
        self._asked = 0
        self._changed = asyncio.Event()  # an answer came, or what the reader wants changed

    def bind(
        self, client: SqsReceiveClient, queue_url: str, stage: stages.PayloadStage | None
    ) -> None:
        """Poll `queue_url` on `client` (when the receiver opens), into a new buffer, through
        `stage` (the payload stage's session, if any): its attributes are asked for too."""
        self._client, self._queue_url = client, queue_url
        self._stage = stage if stage is not None and stages.overrides(stage, "incoming") else None
        names = list(self._config.message_attribute_names)
        if stage is not None and not {"All", ".*"} & set(names):
            names += [name for name in stage.attribute_names if name not in names]
        self._attribute_names = names
        room, self._max_ask = self._config.prefetch, MAX_BATCH_ENTRIES
        if stage is not None and stage.buffer_limit is not None:  # large messages: few at once
            room = min(room, stage.buffer_limit)
            self._max_ask = min(MAX_BATCH_ENTRIES, stage.buffer_limit)
        self.buffer = asyncio.Queue(maxsize=room)

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def start(self) -> None:
        """Start the polls; a no-op while they run."""
        if not self._tasks:
            self.empty.restart()
            self._not_out = self.buffer.qsize()  # no poll holds any other message now
            self._tasks = [
                asyncio.create_task(self._poll(), name=f"sqs-receive-{n}")
                for n in range(self._config.concurrent_receives)
            ]

    def want(self, limit: int | None, *, until_empty: bool = False) -> None:
        """The reader takes at most `limit` more messages (None: no limit), and (with
        `until_empty`) ends once the queue is found empty. Polls ask for no more than it will
        take beyond what is received or asked for already, and wait the full time while it
        waits for an empty finding (see `_turn`)."""
        self._wanted = limit
        self._until_empty = until_empty
        self._changed.set()

    def take(self) -> ReceivedMessage | None:
        """The next buffered message for the reader, if any, without waiting."""
        if self.buffer.empty():
            return None
        return self._handed(self.buffer.get_nowait())

    def _handed(self, message: ReceivedMessage) -> ReceivedMessage:
        self._not_out -= 1
        if self._wanted is not None:
            self._wanted -= 1
        return message

    async def stop(self) -> None:
        """End the polls without stranding a message. SQS does not learn that a client gave
        up on a long poll: a cancelled `ReceiveMessage` stays open on the server and takes the
        next messages to arrive, which then stay invisible for a visibility timeout and count
        as received. So a poll on the server is left to finish (at most `wait_time_seconds`;
        about a second once the read is done: see the module docstring), and so is one whose
        messages are in the payload stage; what they bring stays held and not handed out (the
        receiver's `stop_*` say who takes it). Polls not on the server (waiting for room in
        the buffer or for their turn, or backing off) are cancelled at once. A poll that
        outlasts its wait by a request timeout is stuck on the network, not waiting on SQS,
        and is cancelled (messages it had in the stage stay held and not `ready`)."""
        polls, self._tasks = self._tasks, []
        self._stopping = True
        try:
            for task in polls:
                if task not in self._on_server and task not in self._staging:
                    task.cancel()
            if polls:
                await asyncio.wait(
                    polls, timeout=self._config.wait_time_seconds + self._config.request_timeout
                )
            for task in polls:
                task.cancel()
            await asyncio.gather(*polls, return_exceptions=True)
        finally:
            self._stopping = False

    def clear_buffer(self) -> None:
        """Empty the buffer (its messages stay held, not handed out)."""
        buffer = self.buffer
        while not buffer.empty():
            buffer.get_nowait()

    async def wait(
        self, wait: float | None, *, until_empty: bool, broken: asyncio.Event
    ) -> ReceivedMessage | None:
        """The next message into the (empty) buffer, waiting up to `wait` seconds (None: no
        limit); None when the wait ends, or (with `until_empty`) the queue is found empty
        during it, or `broken` is set. (A reader takes what is buffered without waiting.)"""
        self.empty.found.clear()
        getter = asyncio.ensure_future(self.buffer.get())
        waiters: set[asyncio.Future[Any]] = {getter}
        if until_empty:
            waiters.add(asyncio.ensure_future(self.empty.found.wait()))
        waiters.add(asyncio.ensure_future(broken.wait()))
        try:
            await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters - {getter}:
                waiter.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return self._handed(getter.result())
        return None

    async def _turn(self) -> tuple[int, int]:
        """(MaxNumberOfMessages, WaitTimeSeconds) of this poll's next call, once it may make
        one: not while the reader needs nothing beyond what is received or asked for, nor,
        while the queue is quiet, while another call is open on SQS."""
        full = self._config.wait_time_seconds
        while True:
            ask = self._max_ask
            if self._wanted is not None:
                ask = min(ask, self._wanted - self._not_out - self._asked)
            empty = self.empty
            if empty.coming or (self._until_empty and not empty.waited):
                wait = full
            else:
                wait = min(full, SHORT_WAIT_SECONDS)
            if ask > 0 and (wait == full or not empty.quiet or not self._on_server):
                return ask, wait
            self._changed.clear()
            await self._changed.wait()

    async def _poll(self) -> None:
        """One long-polling loop: receive, hold, stage, buffer."""
        throttle = ThrottleClock(self._throttled_time, self._sleep)

        async def receive() -> list[ReceivedMessage]:
            ask, wait = await self._turn()
            self._asked += ask
            try:
                received = await self._receive_once(ask, wait)
            except Exception as exc:
                throttle.saw(exc)
                raise
            finally:
                self._asked -= ask
                self._changed.set()
            self._not_out += len(received)
            return received

        while not self._stopping:
            try:
                received: list[ReceivedMessage] = await self._config.retry.retrying_forever(
                    sleep=throttle.sleep
                )(receive)
            except Exception as exc:
                self._fail(refusal(exc, error_code(exc), self._queue_url, work="receive"))
                return
            if received and self._stage is not None:
                staged = await self._through_stage(received)
                if len(staged) < len(received):
                    self._not_out -= len(received) - len(staged)  # not coming after all
                    self._changed.set()
                received = staged
            buffer = self.buffer
            for message in received:
                if self._stopping:
                    return  # the rest stays held: the receiver's stop_* take it
                if buffer.full():
                    await buffer.put(message)
                else:
                    buffer.put_nowait(message)  # without a coroutine per message

    async def _receive_once(self, ask: int, wait: int) -> list[ReceivedMessage]:
        config = self._config
        if self._stopping:
            return []  # no new poll once stopping began
        started = self._clock()
        task = asyncio.current_task()
        assert task is not None
        self._on_server.add(task)
        try:
            response = await self._client.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=ask,
                WaitTimeSeconds=wait,
                VisibilityTimeout=config.visibility_timeout,
                MessageSystemAttributeNames=list(config.attribute_names),
                MessageAttributeNames=self._attribute_names,
            )
        finally:
            self._on_server.discard(task)
        now = self._clock()
        self._stats.receive_calls += 1
        self._stats.receive_seconds += now - started
        received = [ReceivedMessage.from_response(m) for m in response.get("Messages") or []]
        self._stats.received += len(received)
        if received:
            self._keeper.hold(
                received,
                received_at=now,
                visible_until=started + config.visibility_timeout,
                ready=self._stage is None,
            )
        self.empty.poll_returned(
            task,
            self._on_server,
            brought=bool(received),
            # Full: as many as asked, when asking was not held down by a large-message
            # stage's bound (more waiting is likely then, and a long wait costs nothing).
            full=len(received) >= ask and (ask < self._max_ask or ask == MAX_BATCH_ENTRIES),
            waited=wait >= config.wait_time_seconds,
        )
        return received

    async def _through_stage(self, received: list[ReceivedMessage]) -> list[ReceivedMessage]:
        """`received` through the stage's `incoming`: what to hand out. A message it failed
        on is held no longer (neither extended nor released: SQS gives it out again after its
        visibility timeout); one it discarded is deleted. On a FIFO queue, the messages of a
        failed message's group that came after it are not handed out either (they come back
        after it, in order)."""
        assert self._stage is not None
        task = asyncio.current_task()
        assert task is not None
        self._staging.add(task)
        try:
            handed = await incoming(self._stage, received, self._stats)
        finally:
            self._staging.discard(task)
        ready, dropped, discarded = [], [], []
        stopped: set[str | None] = set()  # FIFO groups with a failed message
        fifo = self._queue_url.endswith(".fifo")
        for message, staged in zip(received, handed, strict=True):
            group = message.attributes.get("MessageGroupId") if fifo else None
            if fifo and staged is None:
                stopped.add(group)
            if isinstance(staged, ReceivedMessage) and not (group in stopped or None in stopped):
                self._keeper.staged(staged)
                ready.append(staged)
            else:
                dropped.append(message)
                if isinstance(staged, Discard):
                    discarded.append(message)
        self._keeper.drop(dropped)
        if discarded:
            await self._discard(discarded)
        return ready
