"""The visibility keeper: the messages a receiver holds, and the task that keeps them
invisible while it holds them.

A message is held from the answer that brought it until it is acked, released, given up
(`max_hold`), or refused by SQS (its receipt handle no longer names a message we hold), or
until the payload stage failed on it. Every sixth of `visibility_timeout` the keeper extends,
by `visibility_timeout`, each held message with less than half of it left: one
`ChangeMessageVisibilityBatch` per 10 of them about every `visibility_timeout / 2` seconds.
A message held `max_hold` seconds or more is no longer extended, so that a consumer that never
acks gives it back to the queue.

The extensions themselves are the receiver's batch calls (`_acks`); a queue that refuses them
for good ends the keeper with that error, which the receiver raises to its readers, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from ..errors import Kind, kind_of
from ._messages import AckResult, ReceivedMessage, ReceiverStats

Extend = Callable[[list[ReceivedMessage]], Awaitable[AckResult]]


@dataclass(slots=True)
class Held:
    """A message received and neither acked nor released."""

    message: ReceivedMessage  # as handed out (after the payload stage, when there is one)
    received_at: float
    visible_until: float
    handed_out: bool = False
    ready: bool = True  # through the payload stage's `incoming` (always, without one)


class Keeper:
    """The held messages of one receiver, by receipt handle, and their extension (`run`)."""

    def __init__(
        self,
        *,
        visibility_timeout: int,
        max_hold: float | None,
        extend: Extend,
        stats: ReceiverStats,
        clock: Callable[[], float],
    ) -> None:
        self._timeout = visibility_timeout
        self._max_hold = max_hold
        self._extend = extend
        self._stats = stats
        self._clock = clock
        self._held: dict[str, Held] = {}

    def __len__(self) -> int:
        return len(self._held)

    def hold(
        self,
        messages: list[ReceivedMessage],
        *,
        received_at: float,
        visible_until: float,
        ready: bool = True,
    ) -> None:
        """Hold `messages`, received at `received_at` and invisible until `visible_until`."""
        held = self._held
        for message in messages:
            held[message.receipt_handle] = Held(message, received_at, visible_until, False, ready)

    def staged(self, message: ReceivedMessage) -> None:
        """`message` (its receipt handle the original one) came through the payload stage."""
        held = self._held.get(message.receipt_handle)
        if held is not None:
            held.message, held.ready = message, True

    def hand_out(self, message: ReceivedMessage) -> ReceivedMessage:
        """`message`, marked as handed out to the caller."""
        held = self._held.get(message.receipt_handle)
        if held is not None:
            held.handed_out = True
            if message.payload_location is not None:  # the caller has the body now
                held.message = message.without_payload()
        return message

    def drop(self, messages: Iterable[ReceivedMessage]) -> None:
        """Hold `messages` no longer: they are not extended, nor released on close."""
        held = self._held
        for message in messages:
            held.pop(message.receipt_handle, None)

    def messages(self) -> list[ReceivedMessage]:
        """Every message held."""
        return [held.message for held in self._held.values()]

    def take_not_handed_out(self) -> list[Held]:
        """The messages held and not handed out, now marked as handed out."""
        rest = [held for held in self._held.values() if not held.handed_out]
        for held in rest:
            held.handed_out = True
        return rest

    def oldest_sent_timestamp(self) -> float | None:
        """The earliest sent time (seconds since the epoch) of a message held now, if any."""
        # A copy taken at once: the Beam adapter asks from another thread than the loop's.
        held = tuple(self._held.values())
        stamps = [t for h in held if (t := h.message.sent_timestamp) is not None]
        return min(stamps, default=None)

    async def run(self) -> None:
        """Extend the visibility of held messages before it runs out; ends only with an
        error (the queue refused an extension for good) or when cancelled."""
        while True:
            await asyncio.sleep(self._timeout / 6)
            await self.extend_due()

    async def extend_due(self) -> None:
        """One round: give up what was held `max_hold`, extend what has less than half of
        its visibility timeout left, and drop what SQS says is no longer ours."""
        timeout = self._timeout
        now = self._clock()
        due = []
        for held in list(self._held.values()):
            if self._max_hold is not None and now - held.received_at >= self._max_hold:
                self._held.pop(held.message.receipt_handle, None)
                continue
            if held.visible_until - now < timeout / 2:
                due.append(held.message)
        if not due:
            return
        result = await self._extend(due)
        if result.refused is not None:
            raise result.refused  # the queue is gone or closed to us: stop, once
        self._stats.extensions += len(result.done)
        self._stats.extension_failures += len(result.failed)
        for message in result.done:
            held_now = self._held.get(message.receipt_handle)
            if held_now is not None:
                held_now.visible_until = now + timeout
        for message, code, _ in result.failed:
            if kind_of(code) is Kind.RECEIPT_HANDLE:
                self._held.pop(message.receipt_handle, None)  # SQS will not keep it for us
