"""The one table of error codes (`errors.CODES`): what a code means is what sending, receiving
and the wire do with it. Adding a code is a line in the table; these tests hold every line."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from sqs_async.errors import CODES, Kind, classify, explain, is_congestion, is_transient, kind_of

from .faults import client_error


def call_kinds() -> list[tuple[str, Kind]]:
    return [
        (code, meaning.kind)
        for code, meaning in CODES.items()
        if meaning.kind in (Kind.FATAL, Kind.THROTTLING, Kind.RETRYABLE)
        and not code.endswith("Error")
    ]


@pytest.mark.parametrize(("code", "kind"), call_kinds())
def test_a_call_that_fails_with_a_code_in_the_table_is_what_the_table_says(
    code: str, kind: Kind
) -> None:
    error = client_error(code, status=400)
    assert classify(error) is kind
    assert is_transient(error) is (kind is not Kind.FATAL)
    assert is_congestion(error) is (kind is Kind.THROTTLING)


@pytest.mark.parametrize("code", [c for c, m in CODES.items() if m.kind is Kind.RECEIPT_HANDLE])
def test_receipt_handle_codes_mean_the_message_is_gone_not_the_call(code: str) -> None:
    assert kind_of(code) is Kind.RECEIPT_HANDLE
    assert classify(client_error(code, status=400)) is Kind.REJECTED  # a whole call: rejected


def test_what_sqs_and_s3_answer_is_classified_as_aws_documents_it() -> None:
    assert classify(client_error("AWS.SimpleQueueService.NonExistentQueue")) is Kind.FATAL
    assert classify(client_error("AccessDenied", status=403)) is Kind.FATAL
    assert classify(client_error("ExpiredToken", status=403)) is Kind.FATAL
    assert classify(client_error("KMS.ThrottlingException")) is Kind.THROTTLING
    assert classify(client_error("SlowDown", status=503)) is Kind.THROTTLING
    assert classify(client_error("RequestThrottled", status=403)) is Kind.THROTTLING


def test_codes_outside_the_table_are_read_from_the_answer() -> None:
    assert classify(client_error("Throttling", status=400)) is Kind.THROTTLING  # botocore's list
    assert classify(client_error("SomethingNew", status=429)) is Kind.THROTTLING
    assert classify(client_error("SomethingNew", status=503)) is Kind.RETRYABLE
    assert classify(client_error("InvalidParameterValue", status=400)) is Kind.REJECTED
    assert classify(client_error("", status=429)) is Kind.THROTTLING  # no code: the status
    assert classify(client_error("", status=502)) is Kind.RETRYABLE
    assert classify(client_error("InvalidParameterValue", status=503)) is Kind.RETRYABLE
    assert classify(client_error("SomeThrottled", status=400)) is Kind.REJECTED  # a call's
    assert kind_of("SomeService.ThrottlingException") is Kind.THROTTLING  # an entry's
    assert kind_of("InternalError", status=500) is Kind.RETRYABLE
    assert kind_of("InvalidMessageContents") is Kind.REJECTED


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
        TimeoutError(),
        ConnectionResetError(),
    ],
)
def test_no_answer_is_retried(error: Exception) -> None:
    assert classify(error) is Kind.RETRYABLE


def test_errors_raised_before_any_request_are_fatal() -> None:
    assert classify(NoCredentialsError()) is Kind.FATAL


def test_every_hint_reaches_the_person() -> None:
    for code, meaning in CODES.items():
        if meaning.hint is None:
            continue
        text = explain(code, "detail", "queue q", work="receive")
        assert text.startswith(f"SQS refused requests to queue q: {code}: detail (")
        assert "{" not in text
    assert "sqs:ReceiveMessage" in explain("AccessDenied", "no", "q", work="receive")
