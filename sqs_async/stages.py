"""Payload stages: the one place where a message's payload may be transformed on its way.

Awaited steps, each a method of `PayloadStage` that does nothing unless overridden:

    record -> entry --outgoing--> validated, measured, packed, sent        (send path)
        not delivered --undelivered--> (the record failed for good)
    received --incoming--> handed out to the caller                         (receive path)
    deleted --deleted--> (after SQS confirmed the delete)                   (acknowledgement)

`outgoing` runs after the record functions (`serializer`, group and deduplication ids) and
before validation, so what it returns is what is validated, measured and sent (large-payload
offload replaces a body with a pointer there). `incoming` runs before a received message is
handed out (offload resolves the pointer there); `deleted` runs for each message whose delete
SQS confirmed (offload may delete the stored payload there). `undelivered` runs, in the
background, for an entry `outgoing` made whose record then failed for good and surely never
reached SQS (offload deletes the payload it stored for nothing there).

A stage that needs something live (a client) makes it in `session`: each engine (a sender, a
producer, a receiver) opens the stage's session when it opens, on its own event loop, uses
what the session gives for its life, and closes it when it closes. The stage itself stays a
plain value that any number of engines may share.

A stage is given as `payload_stage=` to `SenderConfig` (used by `SqsSender`, `SqsProducer`,
`WriteToSqs`) and to `ReceiverConfig` (`SqsReceiver`, `ReadFromSqs`). It must be picklable for
Beam, which ships configs to workers. Stage calls run concurrently, up to the sender's
`max_in_flight` on the send path and for every message of a receive call on the receive path;
the order of a send's records (FIFO groups) is kept whatever order the calls end in.

Failures are per message. An `outgoing` that raises fails that record alone: its `Failed`
carries the exception's `code` attribute (else its class name), its text, and `sender_fault`
unless the exception is `retryable`. An `incoming` that raises keeps the message from the
caller: it is neither handed out nor extended, so SQS gives it out again after its visibility
timeout (and, through the queue's redrive policy, to its dead-letter queue); it is counted in
`ReceiverStats.stage_failures`. A `deleted` that raises is logged and counted
(`ReceiverStats.ack_stage_failures`); the delete itself stands.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import ConnectionConfig
    from .receive import ReceivedMessage
    from .wire import QueueTraits


class Discard(Exception):
    """Raised by `incoming`: delete this message rather than hand it out (the text says why;
    the receiver logs it)."""


class PayloadStage:
    """Override any of the methods; the others pass messages through unchanged."""

    # Message attributes `incoming` needs: a receiver asks for them whatever else it asks for.
    attribute_names: tuple[str, ...] = ()
    # Most messages a receiver may keep ready to hand out (its `prefetch` at most), and ask
    # for in one call, for a stage whose messages are large (offload: as many as it fetches
    # at once); None: any.
    buffer_limit: int | None = None

    @asynccontextmanager
    async def session(self, connection: ConnectionConfig) -> AsyncIterator[PayloadStage]:
        """The stage an engine uses while it is open (its connection settings: `connection`).
        By default this very stage; a stage with a client of its own opens it here."""
        yield self

    async def outgoing(self, entry: dict[str, Any], queue: QueueTraits) -> dict[str, Any]:
        """The entry to send instead of `entry` (a mapping of SQS entry fields: `MessageBody`,
        `MessageAttributes`, ...; a str record arrives as `{"MessageBody": record}`), bound
        for a queue with `queue`'s limits. Return a new mapping rather than changing `entry`."""
        return entry

    async def incoming(self, message: ReceivedMessage) -> ReceivedMessage:
        """The message to hand out instead of `message` (`dataclasses.replace` it). Its
        receipt handle stays the engine's: acks and releases use the original one."""
        return message

    async def deleted(self, message: ReceivedMessage) -> None:
        """`message` (as `incoming` returned it) was deleted from its queue."""

    async def undelivered(self, entry: dict[str, Any]) -> None:
        """`entry`, which `outgoing` returned, was not delivered and never will be: its record
        failed for good, and no attempt can have reached SQS."""


def overrides(stage: PayloadStage | None, method: str) -> bool:
    """Whether `stage` does something in `method` (the engine skips the call otherwise)."""
    return stage is not None and getattr(type(stage), method) is not getattr(PayloadStage, method)
