"""The lean wire path sends the request aiobotocore would send and reads every answer as
botocore reads it (`sqs_async.wire`).

Requests: the same calls go through aiobotocore (captured by its `before-send` event, the last
step before the network) and through the lean path (captured at the HTTP session both share),
with the same credentials, region and a frozen clock; method, URL, body bytes and every signed
header (the signature included) must be equal. Answers: a server on 127.0.0.1 gives canned
answers (errors of every shape the engine classifies, malformed bodies, partial successes);
both paths must end in the same exception or the same parsed answer, and the engine must
classify them alike.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiobotocore.awsrequest import AioAWSResponse
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from aiohttp import web
from botocore.awsrequest import AWSRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqs_async.retry import classify, error_code
from sqs_async.validation import QueueTraits, prepare
from sqs_async.wire import LeanSqsClient, can_go_lean, on_wire

FROZEN = datetime.datetime(2026, 11, 27, 12, 34, 56)
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
CREDENTIALS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG"}


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda *args, **kwargs: FROZEN)


class _Captured(Exception):
    pass


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    async def read(self) -> bytes:
        return self.body


@asynccontextmanager
async def sqs_client(**settings: Any) -> AsyncIterator[Any]:
    config = AioConfig(
        retries={"total_max_attempts": 1, "mode": "standard"},
        parameter_validation=False,
        **settings.pop("config", {}),
    )
    settings = {"region_name": "us-east-1", **CREDENTIALS, **settings}
    async with get_session().create_client("sqs", config=config, **settings) as client:
        yield client


async def botocore_request(client: Any, call: str, params: dict[str, Any]) -> Any:
    """The request aiobotocore sends for `call`, as its `before-send` event sees it."""
    seen: list[Any] = []

    def capture(request: Any, **kwargs: Any) -> None:
        seen.append(request)
        raise _Captured

    operation = client.meta.service_model.operation_model(
        client.meta.method_to_api_mapping[call]
    ).name
    client.meta.events.register(f"before-send.sqs.{operation}", capture)
    try:
        with pytest.raises(_Captured):
            await getattr(client, call)(**params)
    finally:
        client.meta.events.unregister(f"before-send.sqs.{operation}", capture)
    return seen[0]


async def lean_request(client: Any, call: str, params: dict[str, Any]) -> Any:
    """The request the lean path hands to the client's HTTP session."""
    seen: list[Any] = []
    session = client._endpoint.http_session
    original = session.send

    async def capture(request: Any) -> Any:
        seen.append(request)
        return AioAWSResponse(request.url, 200, {}, _Raw(b'{"Successful": [], "Failed": []}'))

    session.send = capture
    try:
        await getattr(LeanSqsClient(client), call)(**params)
    finally:
        session.send = original
    return seen[0]


def signed_headers(request: Any) -> dict[str, str]:
    authorization = _text(request.headers["Authorization"])
    names = authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    headers = {k.lower(): _text(v) for k, v in request.headers.items()}
    assert "host" in names
    return {name: headers.get(name, "") for name in names if name != "host"}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def assert_same_request(client: Any, call: str, params: dict[str, Any]) -> None:
    """The lean request is aiobotocore's: method, URL, the JSON document of the body, every
    signed header; its signature is what the client's own signer makes of it."""
    ours = await lean_request(client, call, params)
    theirs = await botocore_request(client, call, params)
    assert (ours.method, ours.url) == (theirs.method, theirs.url)
    assert json.loads(ours.body) == json.loads(theirs.body)  # orjson writes it compactly
    ours_signed, theirs_signed = signed_headers(ours), signed_headers(theirs)
    assert ours_signed == theirs_signed
    assert _text(ours.headers["Authorization"]) == await botocore_signature(
        client, theirs, ours.body
    )


async def botocore_signature(client: Any, captured: Any, body: bytes) -> str:
    """The Authorization header the client's own signer gives aiobotocore's request with
    `body` in place of its own (the same clock, credentials, region and headers)."""
    target = _text(captured.headers["X-Amz-Target"]).split(".", 1)[1]  # the operation
    headers = {  # what was signed, less what the signer adds itself
        name: value
        for name, value in signed_headers(captured).items()
        if name not in ("x-amz-date", "x-amz-security-token")
    }
    request = AWSRequest(method=captured.method, url=captured.url, data=body, headers=headers)
    await client._request_signer.sign(target, request)
    return _text(request.headers["Authorization"])


def entries(*fields: dict[str, Any]) -> list[dict[str, Any]]:
    """Entries as the engine sends them: its wire Id first, then the validated fields."""
    traits = QueueTraits(max_message_bytes=1_048_576, fifo=QUEUE.endswith(".fifo"))
    wire = []
    for i, record in enumerate(fields):
        prepared = prepare(record, i, traits, record=record)
        assert not hasattr(prepared, "code"), prepared
        wire.append({"Id": str(i), **prepared.fields})
    return wire


MESSAGES = {
    "plain": entries({"MessageBody": "hello"}, {"MessageBody": "world"}),
    "non-ascii": entries(
        {"MessageBody": "héllo wörld ✓ 日本語 \U0001f600 tab\tline\nend"},
        {"MessageBody": '"quotes" and \\backslashes\\ and </script>'},
    ),
    "attributes": entries(
        {
            "MessageBody": "with attributes",
            "DelaySeconds": 5,
            "MessageAttributes": {
                "text": {"DataType": "String", "StringValue": "ünïcode"},
                "number": {"DataType": "Number", "StringValue": "-12.5e3"},
                "custom": {"DataType": "String.json", "StringValue": '{"a": 1}'},
                "blob": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
                "small": {"DataType": "Binary.gz", "BinaryValue": b"\x00"},
            },
            "MessageSystemAttributes": {
                "AWSTraceHeader": {
                    "DataType": "String",
                    "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
                }
            },
        }
    ),
}


@pytest.mark.parametrize("case", sorted(MESSAGES))
@pytest.mark.parametrize("token", [None, "IQoJb3JpZ2luX2VjE//session+token="])
async def test_send_message_batch_is_the_request_botocore_sends(
    case: str, token: str | None
) -> None:
    async with sqs_client(aws_session_token=token) as client:
        await assert_same_request(
            client, "send_message_batch", {"QueueUrl": QUEUE, "Entries": MESSAGES[case]}
        )


async def test_fifo_fields_are_sent_as_botocore_sends_them() -> None:
    fifo = QUEUE + ".fifo"
    wire = [
        {"Id": "0", "MessageBody": "a", "MessageGroupId": "g-1", "MessageDeduplicationId": "d1"},
        {"Id": "1", "MessageBody": "b", "MessageGroupId": "g/2!", "MessageDeduplicationId": "d2"},
    ]
    async with sqs_client() as client:
        await assert_same_request(client, "send_message_batch", {"QueueUrl": fifo, "Entries": wire})


@pytest.mark.parametrize(
    "settings",
    [
        {"endpoint_url": "http://127.0.0.1:4566"},
        {"endpoint_url": "https://sqs.example.internal:8443/some/prefix"},  # a path-style URL
        {"region_name": "eu-central-2"},
        {"region_name": "us-gov-west-1", "config": {"use_fips_endpoint": True}},
        {"region_name": "cn-north-1"},
    ],
    ids=["local", "path-style", "other-region", "fips", "china"],
)
async def test_endpoints_resolve_as_botocore_resolves_them(settings: dict[str, Any]) -> None:
    async with sqs_client(**settings) as client:
        await assert_same_request(
            client, "send_message_batch", {"QueueUrl": QUEUE, "Entries": MESSAGES["plain"]}
        )


@pytest.mark.parametrize(
    ("call", "params"),
    [
        (
            "delete_message_batch",
            {
                "Entries": [
                    {"Id": "0", "ReceiptHandle": "AQEB+/=rh0"},
                    {"Id": "1", "ReceiptHandle": "x"},
                ]
            },
        ),
        (
            "change_message_visibility_batch",
            {"Entries": [{"Id": "0", "ReceiptHandle": "AQEBrh", "VisibilityTimeout": 0}]},
        ),
    ],
)
async def test_the_receipt_handle_calls_are_the_requests_botocore_sends(
    call: str, params: dict[str, Any]
) -> None:
    async with sqs_client(aws_session_token="token") as client:
        await assert_same_request(client, call, {"QueueUrl": QUEUE, **params})


_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]).filter(
        lambda c: (
            c in "\t\n\r" or "\x20" <= c <= "\ud7ff" or "\ue000" <= c <= "\ufffd" or c > "\uffff"
        )
    ),
    min_size=1,
    max_size=40,
)
_ATTRIBUTE = st.one_of(
    st.builds(lambda t: {"DataType": "String", "StringValue": t}, _TEXT),
    st.builds(
        lambda n: {"DataType": "Number", "StringValue": str(n)}, st.integers(-(10**9), 10**9)
    ),
    st.builds(
        lambda b: {"DataType": "Binary", "BinaryValue": b}, st.binary(min_size=1, max_size=40)
    ),
)
_RECORD = st.builds(
    lambda body, attributes, delay: {
        "MessageBody": body,
        **({"MessageAttributes": attributes} if attributes else {}),
        **({"DelaySeconds": delay} if delay is not None else {}),
    },
    _TEXT,
    st.dictionaries(
        st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True), _ATTRIBUTE, max_size=3
    ),
    st.none() | st.integers(0, 900),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_RECORD, min_size=1, max_size=10))
async def test_any_valid_batch_is_the_request_botocore_sends(records: list[dict[str, Any]]) -> None:
    async with sqs_client(aws_session_token="t") as client:
        await assert_same_request(
            client, "send_message_batch", {"QueueUrl": QUEUE, "Entries": entries(*records)}
        )


# Canned answers, as SQS (JSON protocol) gives them. The header `x-amzn-query-error` carries the
# code of the older query protocol, which botocore reports as `Error.Code`.
ANSWERS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "throttling": (
        400,
        {"x-amzn-query-error": "ThrottlingException;Sender"},
        b'{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate exceeded"}',
    ),
    "request-throttled": (
        403,
        {"x-amzn-query-error": "RequestThrottled;Sender"},
        b'{"__type":"com.amazonaws.sqs#RequestThrottled","message":"slow down"}',
    ),
    "queue-does-not-exist": (
        400,
        {"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"},
        b'{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"no such queue"}',
    ),
    "access-denied": (
        400,
        {"x-amzn-query-error": "AccessDenied;Sender"},
        b'{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"not authorized"}',
    ),
    "bad-signature": (
        403,
        {},
        b'{"__type":"com.amazon.coral.service#InvalidSignatureException","message":"no match"}',
    ),
    "kms-throttling": (
        400,
        {"x-amzn-query-error": "KMS.ThrottlingException;Sender"},
        b'{"__type":"com.amazonaws.sqs#KmsThrottled","message":"KMS throttled"}',
    ),
    "internal-error": (500, {}, b'{"__type":"InternalError","message":"try again"}'),
    "unavailable-empty": (503, {}, b""),
    "bad-gateway-html": (502, {"Content-Type": "text/html"}, b"<html><h1>502</h1></html>"),
    "malformed-error": (400, {}, b"{not json"),
    "batch-too-long": (
        400,
        {"x-amzn-query-error": "AWS.SimpleQueueService.BatchRequestTooLong;Sender"},
        b'{"__type":"com.amazonaws.sqs#BatchRequestTooLong","message":"too long"}',
    ),
}
PARTIAL = json.dumps(
    {
        "Successful": [
            {"Id": "0", "MessageId": "m-0", "MD5OfMessageBody": "x", "SequenceNumber": "18850"}
        ],
        "Failed": [
            {"Id": "1", "SenderFault": False, "Code": "KMS.ThrottlingException", "Message": "kms"},
            {"Id": "2", "SenderFault": True, "Code": "InvalidParameterValue", "Message": "bad"},
        ],
    }
).encode()
SUCCESSES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "partial": (200, {"x-amzn-RequestId": "req-1"}, PARTIAL),
    "malformed-success": (200, {}, b"<html>proxy says hi</html>"),
    "empty-success": (200, {}, b""),
    "json-but-not-an-object": (200, {}, b"[1, 2]"),
}


@asynccontextmanager
async def canned(answer: tuple[int, dict[str, str], bytes]) -> AsyncIterator[str]:
    """A server on 127.0.0.1 that gives `answer` to every request."""
    status, headers, body = answer

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, headers=headers, body=body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def both_answers(answer: tuple[int, dict[str, str], bytes]) -> tuple[Any, Any]:
    """What each path makes of `answer`: the parsed answer, or the exception raised."""
    outcomes = []
    async with canned(answer) as url, sqs_client(endpoint_url=url) as client:
        for path in (LeanSqsClient(client), client):
            try:
                outcomes.append(
                    await path.send_message_batch(
                        QueueUrl=QUEUE,
                        Entries=[{"Id": str(i), "MessageBody": "m"} for i in range(3)],
                    )
                )
            except Exception as exc:
                outcomes.append(exc)
    return outcomes[0], outcomes[1]


def _metadata(parsed: dict[str, Any]) -> dict[str, Any]:
    """Response metadata without botocore's retry bookkeeping (its retries are off: the
    engine's own retry policy reads none of it) and without the server's `Date` header (the
    two answers may come a second apart)."""
    kept = {k: v for k, v in parsed.items() if k not in ("RetryAttempts", "MaxAttemptsReached")}
    if "HTTPHeaders" in kept:
        kept["HTTPHeaders"] = {k: v for k, v in kept["HTTPHeaders"].items() if k != "date"}
    return kept


@pytest.mark.parametrize("case", sorted(ANSWERS))
async def test_errors_are_botocores_exceptions_and_classified_alike(case: str) -> None:
    ours, theirs = await both_answers(ANSWERS[case])
    assert isinstance(ours, Exception) and isinstance(theirs, Exception), (ours, theirs)
    assert type(ours) is type(theirs)
    assert ours.response["Error"] == theirs.response["Error"]  # type: ignore[attr-defined]
    assert _metadata(ours.response["ResponseMetadata"]) == _metadata(  # type: ignore[attr-defined]
        theirs.response["ResponseMetadata"]  # type: ignore[attr-defined]
    )
    assert (classify(ours), error_code(ours)) == (classify(theirs), error_code(theirs))


@pytest.mark.parametrize("case", sorted(SUCCESSES))
async def test_successful_answers_read_as_botocore_reads_them(case: str) -> None:
    ours, theirs = await both_answers(SUCCESSES[case])
    if isinstance(theirs, Exception):  # botocore itself cannot read it: the same failure
        assert type(ours) is type(theirs) and str(ours) == str(theirs)
        return
    assert not isinstance(ours, Exception), ours
    for key in ("Successful", "Failed"):
        assert ours.get(key) == theirs.get(key)
    assert (
        ours["ResponseMetadata"]["HTTPStatusCode"] == theirs["ResponseMetadata"]["HTTPStatusCode"]
    )
    assert ours["ResponseMetadata"].get("RequestId") == theirs["ResponseMetadata"].get("RequestId")


async def test_a_closed_port_raises_the_connection_error_botocore_raises() -> None:
    async with canned(SUCCESSES["partial"]) as url:
        pass  # the server is gone: nothing listens on its port any more
    async with sqs_client(endpoint_url=url, config={"connect_timeout": 1}) as client:
        raised = []
        for path in (LeanSqsClient(client), client):
            with pytest.raises(Exception) as error:
                await path.send_message_batch(
                    QueueUrl=QUEUE, Entries=[{"Id": "0", "MessageBody": "m"}]
                )
            raised.append(error.value)
    assert type(raised[0]) is type(raised[1])
    assert classify(raised[0]) == classify(raised[1])


async def test_only_aiobotocore_sqs_clients_that_sign_go_lean() -> None:
    from botocore import UNSIGNED

    async with sqs_client() as client:
        assert can_go_lean(client) and isinstance(on_wire(client, "lean"), LeanSqsClient)
        assert on_wire(client, "botocore") is client
    async with sqs_client(config={"signature_version": UNSIGNED}) as unsigned:
        assert on_wire(unsigned, "lean") is unsigned
    stub: Callable[[], None] = lambda: None  # noqa: E731 - anything that is not a client
    assert on_wire(stub, "lean") is stub
