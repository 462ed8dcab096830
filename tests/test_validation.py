"""Validation rules, one by one (pure), and the same catalogue sent to a real queue."""

from __future__ import annotations

from typing import Any

import pytest

from sqs_async import SqsSender
from sqs_async import errors as v
from sqs_async.send._validation import OutgoingMessage, Rejection, prepare
from sqs_async.wire import QueueTraits

from .conftest import drain, make_queue

STANDARD = QueueTraits(max_message_bytes=1024)
FIFO = QueueTraits(max_message_bytes=1024, fifo=True)
FIFO_CBD = QueueTraits(max_message_bytes=1024, fifo=True, content_based_deduplication=True)


def attr(value: str, data_type: str = "String") -> dict[str, str]:
    return {"DataType": data_type, "StringValue": value}


# (record, queue traits, expected code, a word the reason must contain)
BAD: list[tuple[Any, QueueTraits, str, str]] = [
    (42, STANDARD, v.INVALID_RECORD, "int"),
    (None, STANDARD, v.INVALID_RECORD, "NoneType"),
    (["a"], STANDARD, v.INVALID_RECORD, "list"),
    ({"MessageBody": "x", "Colour": "red"}, STANDARD, v.INVALID_RECORD, "Colour"),
    ({"Id": "1"}, STANDARD, v.INVALID_BODY, "missing"),
    ({"MessageBody": 7}, STANDARD, v.INVALID_BODY, "int"),
    ({"MessageBody": b"bytes"}, STANDARD, v.INVALID_BODY, "bytes"),
    ("", STANDARD, v.INVALID_BODY, "empty"),
    ("nul\x00", STANDARD, v.INVALID_CHARACTERS, "U+0000"),
    ("bell\x07", STANDARD, v.INVALID_CHARACTERS, "U+0007"),
    ("lone \ud800 surrogate", STANDARD, v.INVALID_CHARACTERS, "U+D800"),
    ("not a char \ufffe", STANDARD, v.INVALID_CHARACTERS, "U+FFFE"),
    ("x" * 1025, STANDARD, v.MESSAGE_TOO_LONG, "1025"),
    ("é" * 513, STANDARD, v.MESSAGE_TOO_LONG, "1026"),  # 2 bytes each in UTF-8
    (
        {"MessageBody": "x" * 1000, "MessageAttributes": {"k" * 10: attr("v" * 10)}},
        STANDARD,
        v.MESSAGE_TOO_LONG,
        "1026",  # 1000 + 10 (name) + 6 ("String") + 10 (value)
    ),
    (
        {"MessageBody": "x", "MessageAttributes": {f"a{i}": attr("v") for i in range(11)}},
        STANDARD,
        v.INVALID_ATTRIBUTES,
        "11",
    ),
    (
        {"MessageBody": "x", "MessageAttributes": {"AWS.x": attr("v")}},
        STANDARD,
        v.INVALID_ATTRIBUTES,
        "AWS.",
    ),
    (
        {"MessageBody": "x", "MessageAttributes": {"a b": attr("v")}},
        STANDARD,
        v.INVALID_ATTRIBUTES,
        "a b",
    ),
    (
        {"MessageBody": "x", "MessageAttributes": {"a..b": attr("v")}},
        STANDARD,
        v.INVALID_ATTRIBUTES,
        "a..b",
    ),
    (
        {"MessageBody": "x", "MessageAttributes": {"n": attr("v", "Text")}},
        STANDARD,
        v.INVALID_ATTRIBUTES,
        "Text",
    ),
    (
        {"MessageBody": "x", "MessageAttributes": {"n": attr("ten", "Number")}},
        STANDARD,
        v.INVALID_ATTRIBUTES,
        "not a number",
    ),
    (
        {"MessageBody": "x", "MessageAttributes": {"n": attr("")}},
        STANDARD,
        v.INVALID_ATTRIBUTES,
        "empty",
    ),
    (
        {
            "MessageBody": "x",
            "MessageAttributes": {"n": {"DataType": "Binary", "StringValue": "s"}},
        },
        STANDARD,
        v.INVALID_ATTRIBUTES,
        "bytes",
    ),
    (
        {"MessageBody": "x", "MessageAttributes": {"n": "plain"}},
        STANDARD,
        v.INVALID_ATTRIBUTES,
        "mapping",
    ),
    ({"MessageBody": "x", "MessageAttributes": ["n"]}, STANDARD, v.INVALID_ATTRIBUTES, "mapping"),
    (
        {"MessageBody": "x", "MessageSystemAttributes": {"Other": attr("v")}},
        STANDARD,
        v.INVALID_ATTRIBUTES,
        "AWSTraceHeader",
    ),
    ({"MessageBody": "x", "DelaySeconds": 901}, STANDARD, v.INVALID_DELAY, "901"),
    ({"MessageBody": "x", "DelaySeconds": -1}, STANDARD, v.INVALID_DELAY, "-1"),
    ({"MessageBody": "x", "DelaySeconds": "5"}, STANDARD, v.INVALID_DELAY, "str"),
    ({"MessageBody": "x", "DelaySeconds": True}, STANDARD, v.INVALID_DELAY, "bool"),
    (
        {
            "MessageBody": "x",
            "MessageGroupId": "g",
            "MessageDeduplicationId": "d",
            "DelaySeconds": 5,
        },
        FIFO,
        v.INVALID_DELAY,
        "FIFO",
    ),
    ({"MessageBody": "x"}, FIFO, v.INVALID_FIFO_FIELDS, "MessageGroupId"),
    (
        {"MessageBody": "x", "MessageGroupId": "g"},
        FIFO,
        v.INVALID_FIFO_FIELDS,
        "MessageDeduplicationId",
    ),
    ({"MessageBody": "x", "MessageGroupId": "g" * 129}, FIFO_CBD, v.INVALID_FIFO_FIELDS, "1-128"),
    ({"MessageBody": "x", "MessageGroupId": "ü"}, FIFO_CBD, v.INVALID_FIFO_FIELDS, "1-128"),
]


@pytest.mark.parametrize(("record", "queue", "code", "word"), BAD)
def test_invalid_record_is_rejected_with_reason(
    record: Any, queue: QueueTraits, code: str, word: str
) -> None:
    outcome = prepare(record, 0, queue)
    assert isinstance(outcome, Rejection), outcome
    assert outcome.code == code
    assert word in outcome.reason


GOOD: list[tuple[Any, QueueTraits, int]] = [
    ("hello", STANDARD, 5),
    ("\t\n\r \ud7ff\ue000\ufffd\U0001f600", STANDARD, 4 + 3 + 3 + 3 + 4),
    ("x" * 1024, STANDARD, 1024),
    ({"Id": 5, "MessageBody": "seed"}, STANDARD, 4),  # any caller Id is fine: never sent
    (
        {
            "MessageBody": "b",
            "MessageAttributes": {
                "s": attr("text"),
                "n": attr("-1.5e3", "Number"),
                "bin": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
                "custom": attr("{}", "String.json"),
            },
            "MessageSystemAttributes": {"AWSTraceHeader": attr("Root=1-abc")},
            "DelaySeconds": 0,
        },
        STANDARD,
        1 + (1 + 6 + 4) + (1 + 6 + 6) + (3 + 6 + 2) + (6 + 11 + 2),
    ),
    ({"MessageBody": "x", "MessageGroupId": "g-1", "MessageDeduplicationId": "d#1"}, FIFO, 1),
    ({"MessageBody": "x", "MessageGroupId": "g"}, FIFO_CBD, 1),
]


@pytest.mark.parametrize(("record", "queue", "size"), GOOD)
def test_valid_record_is_measured_as_sqs_counts(record: Any, queue: QueueTraits, size: int) -> None:
    outcome = prepare(record, 3, queue)
    assert isinstance(outcome, OutgoingMessage), outcome
    assert outcome.size == size
    assert outcome.record is record
    assert outcome.index == 3
    assert "Id" not in outcome.fields


def test_record_is_not_modified() -> None:
    record = {"Id": "1", "MessageBody": "x", "DelaySeconds": None}
    before = dict(record)
    outcome = prepare(record, 0, STANDARD)
    assert isinstance(outcome, OutgoingMessage)
    assert record == before
    assert outcome.fields == {"MessageBody": "x"}


async def test_bad_messages_fail_alone_and_good_neighbours_arrive(
    settings: dict[str, Any], sync_client: Any
) -> None:
    queue_url = make_queue(sync_client, MaximumMessageSize="1024")
    standard_cases = [case for case in BAD if case[1] is STANDARD]
    good = [f"good-{i}" for i in range(len(standard_cases) + 1)]
    records: list[Any] = [good[0]]
    for (record, *_), neighbour in zip(standard_cases, good[1:], strict=True):
        records += [record, neighbour]

    async with SqsSender(queue_url=queue_url, **settings) as sender:
        assert sender.traits.max_message_bytes == 1024  # read from the queue
        result = await sender.send(records)

    assert sorted(d.record for d in result.delivered) == sorted(good)
    assert [(f.index, f.code) for f in sorted(result.failed, key=lambda f: f.index)] == [
        (2 * i + 1, case[2]) for i, case in enumerate(standard_cases)
    ]
    assert all(f.sender_fault and f.attempts == 0 and f.message for f in result.failed)
    assert all(f.record is records[f.index] for f in result.failed)
    assert sorted(m["Body"] for m in drain(sync_client, queue_url)) == sorted(good)
