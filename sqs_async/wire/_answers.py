"""What the answer to a batch call says about each of its entries: one reading for
SendMessageBatch, DeleteMessageBatch and ChangeMessageVisibilityBatch.

The engine numbers a request's entries itself (`Id` "0" to "9", `WIRE_IDS`), so an answer
maps back to the request by position. An entry that the answer lists neither as successful
nor as failed gets code `MissingResult` and is retried like a transient failure.

Pure logic: no I/O, no asyncio.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..defaults import MAX_BATCH_ENTRIES
from ..errors import MISSING_RESULT

# The `Id` of the entry at each position of a request (a batch holds at most 10).
WIRE_IDS = tuple(str(position) for position in range(MAX_BATCH_ENTRIES))
_POSITIONS = {wire_id: position for position, wire_id in enumerate(WIRE_IDS)}


@dataclass(frozen=True, slots=True)
class EntryError:
    """An entry the batch call did not carry out; `sender_fault`: sending it again as it is
    will fail again."""

    code: str
    reason: str
    sender_fault: bool


MISSING = EntryError(
    MISSING_RESULT, "the response listed this entry neither as successful nor as failed", False
)


def read_answer(response: Mapping[str, Any], count: int) -> list[Mapping[str, Any] | EntryError]:
    """Per entry of a request of `count` entries, in request order: its item of the answer's
    `Successful` list, or an `EntryError`."""
    answers: list[Mapping[str, Any] | EntryError | None] = [None] * count
    for entry in _listed(response, "Successful"):
        position = _POSITIONS.get(str(entry.get("Id")), count)
        if position < count and answers[position] is None:
            answers[position] = entry
    for entry in _listed(response, "Failed"):
        position = _POSITIONS.get(str(entry.get("Id")), count)
        if position < count and answers[position] is None:
            answers[position] = EntryError(
                str(entry.get("Code") or "Unknown"),
                str(entry.get("Message") or ""),
                bool(entry.get("SenderFault")),
            )
    return [MISSING if answer is None else answer for answer in answers]


def _listed(response: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    entries = response.get(key) if isinstance(response, Mapping) else None
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, Mapping)]
