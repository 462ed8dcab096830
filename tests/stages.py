"""Toy payload stages for the tests: gzip+base64 of the body, marked by an attribute."""

from __future__ import annotations

import asyncio
import base64
import gzip
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqs_async import PayloadStage, ReceivedMessage
from sqs_async.wire import QueueTraits

MARK = "content-encoding"
GZIP = {"DataType": "String", "StringValue": "gzip+base64"}


def compress(body: str) -> str:
    return base64.b64encode(gzip.compress(body.encode("utf-8"))).decode("ascii")


def decompress(text: str) -> str:
    return gzip.decompress(base64.b64decode(text)).decode("utf-8")


class Gzip(PayloadStage):
    """Sends each body gzipped and base64-encoded, with a `content-encoding` attribute; hands
    received messages out decoded and without it. `deleted` appends each deleted body to
    `deleted_log` (a file: a Beam worker's copy of the stage writes where the test reads).
    `jitter` (seconds) makes each call end after a random wait, so calls end out of order."""

    def __init__(self, deleted_log: Path | None = None, jitter: float = 0.0) -> None:
        self.deleted_log = deleted_log
        self.jitter = jitter
        self.queues: list[QueueTraits] = []

    async def outgoing(self, entry: dict[str, Any], queue: QueueTraits) -> dict[str, Any]:
        self.queues.append(queue)
        if self.jitter:
            await asyncio.sleep(random.uniform(0, self.jitter))
        attributes = {**(entry.get("MessageAttributes") or {}), MARK: GZIP}
        return {
            **entry,
            "MessageBody": compress(entry["MessageBody"]),
            "MessageAttributes": attributes,
        }

    async def incoming(self, message: ReceivedMessage) -> ReceivedMessage:
        attributes = dict(message.message_attributes)
        if attributes.pop(MARK, None) is None:
            return message
        return replace(message, body=decompress(message.body), message_attributes=attributes)

    async def deleted(self, message: ReceivedMessage) -> None:
        if self.deleted_log is not None:
            with self.deleted_log.open("a", encoding="utf-8") as log:
                log.write(message.body.replace("\n", "\\n") + "\n")


class Refuses(PayloadStage):
    """Fails the records (outgoing) or messages (incoming) whose body starts with "bad"."""

    async def outgoing(self, entry: dict[str, Any], queue: QueueTraits) -> dict[str, Any]:
        if entry["MessageBody"].startswith("bad"):
            raise StageRefusal("no bad records")
        return entry

    async def incoming(self, message: ReceivedMessage) -> ReceivedMessage:
        if message.body.startswith("bad"):
            raise ValueError("no bad messages")
        return message


class StageRefusal(Exception):
    code = "ToyRefusal"
