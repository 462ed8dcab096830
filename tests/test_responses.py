"""The one reading of batch answers (send, delete, change visibility) and the one number check."""

from __future__ import annotations

import math

import pytest

from sqs_async.checks import check_number
from sqs_async.errors import MISSING_RESULT
from sqs_async.wire import WIRE_IDS, EntryError, read_answer


def test_an_answer_maps_back_to_its_entries_by_position() -> None:
    response = {
        "Successful": [
            {"Id": WIRE_IDS[2], "MessageId": "c"},
            {"Id": WIRE_IDS[0], "MessageId": "a"},
        ],
        "Failed": [
            {"Id": WIRE_IDS[1], "Code": "InternalError", "Message": "later", "SenderFault": False},
            {"Id": WIRE_IDS[3], "Code": "InvalidParameterValue", "SenderFault": True},
        ],
    }
    answers = read_answer(response, 5)
    assert [a["MessageId"] for a in answers if not isinstance(a, EntryError)] == ["a", "c"]
    assert answers[1] == EntryError("InternalError", "later", False)
    assert answers[3] == EntryError("InvalidParameterValue", "", True)
    missing = answers[4]
    assert isinstance(missing, EntryError) and missing.code == MISSING_RESULT
    assert not missing.sender_fault  # retried, like a transient failure


@pytest.mark.parametrize(
    "response",
    [
        {},
        {"Successful": None, "Failed": "nonsense"},
        {"Successful": [{"Id": "7"}, {"Id": "x"}, "junk", {"Id": None}]},  # ids not in the request
    ],
)
def test_a_malformed_answer_leaves_every_entry_missing(response: dict[str, object]) -> None:
    answers = read_answer(response, 3)
    assert all(isinstance(a, EntryError) and a.code == MISSING_RESULT for a in answers)


def test_an_entry_listed_twice_keeps_its_first_answer() -> None:
    response = {
        "Successful": [{"Id": "0", "MessageId": "a"}],
        "Failed": [{"Id": "0", "Code": "InternalError", "SenderFault": False}],
    }
    assert read_answer(response, 1) == [{"Id": "0", "MessageId": "a"}]


@pytest.mark.parametrize(
    ("value", "kwargs", "error"),
    [
        (True, {"integer": True}, TypeError),
        (False, {}, TypeError),
        (math.nan, {}, TypeError),
        ("3", {}, TypeError),
        (2.5, {"integer": True}, TypeError),
        (0, {"low": 1}, ValueError),
        (0, {"above": 0}, ValueError),
        (11, {"high": 10}, ValueError),
    ],
)
def test_the_number_check_refuses_bools_nan_and_out_of_range(
    value: object, kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error, match="setting"):
        check_number("setting", value, **kwargs)  # type: ignore[arg-type]


def test_the_number_check_accepts_what_is_in_range() -> None:
    check_number("setting", 1, low=1, high=10, integer=True)
    check_number("setting", 0.5, above=0)
    check_number("setting", 10, low=1, high=10)
