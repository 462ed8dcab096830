"""The payload stage on the receive side (`sqs_async.stages`): `incoming` between an answer
and the buffer, `deleted` after SQS confirmed a delete.

The receiver calls these only when its stage overrides the method (`stages.overrides`), so a
receiver without a stage does no work here. The calls for one answer (or one ack) run
concurrently; a call that fails costs its own message alone, and is logged and counted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from ..stages import Discard, PayloadStage
from ._messages import ReceivedMessage, ReceiverStats

log = logging.getLogger("sqs_async")


async def incoming(
    stage: PayloadStage, received: list[ReceivedMessage], stats: ReceiverStats
) -> list[ReceivedMessage | Discard | None]:
    """Per message of `received` (one answer), in order: what to hand out instead (with the
    original receipt handle, whatever the stage did to it), the stage's `Discard` (the
    message is to be deleted: logged at info), or None when the stage failed on it (logged
    at warning, counted in `stats.stage_failures`)."""
    outcomes = await asyncio.gather(
        *(stage.incoming(message) for message in received), return_exceptions=True
    )
    handed: list[ReceivedMessage | Discard | None] = []
    for message, outcome in zip(received, outcomes, strict=True):
        if isinstance(outcome, Discard):
            log.info("deleting received message %s: %s", message.message_id, outcome)
            handed.append(outcome)
        elif not isinstance(outcome, ReceivedMessage):
            error = (
                outcome
                if isinstance(outcome, BaseException)
                else TypeError(f"incoming returned {type(outcome).__name__}, not a message")
            )
            stats.stage_failures += 1
            log.warning(
                "payload stage failed on received message %s: %s: %s (not handed out; SQS "
                "gives it out again after its visibility timeout)",
                message.message_id,
                type(error).__name__,
                error,
            )
            handed.append(None)
        elif outcome.receipt_handle != message.receipt_handle:
            handed.append(replace(outcome, receipt_handle=message.receipt_handle))
        else:
            handed.append(outcome)
    return handed


async def deleted(
    stage: PayloadStage, messages: list[ReceivedMessage], stats: ReceiverStats
) -> None:
    """Tell `stage` of each of `messages` (deleted: SQS confirmed it); a failure is logged at
    warning and counted in `stats.ack_stage_failures`, the delete stands."""
    outcomes = await asyncio.gather(
        *(stage.deleted(message) for message in messages), return_exceptions=True
    )
    for message, outcome in zip(messages, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            stats.ack_stage_failures += 1
            log.warning(
                "payload stage failed after the delete of message %s: %s: %s",
                message.message_id,
                type(outcome).__name__,
                outcome,
            )
