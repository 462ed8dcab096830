"""The lean wire path sends the request aiobotocore would send and reads every answer as
botocore reads it (`sqs_async.wire`).

Requests: the same calls go through aiobotocore (captured by its `before-send` event) and
through the lean path (captured where both hand the request to aiohttp: the session
aiobotocore's HTTP session keeps), with the same credentials, region and a frozen clock;
method, URL, the body's JSON document and every signed header must be equal, and the signature
must be what the client's own signer makes of the lean body. What reaches aiohttp (proxy,
headers, options) and what reaches a server on 127.0.0.1 are compared too.

Answers: a server on 127.0.0.1 gives canned answers (errors of every shape the engine
classifies, malformed bodies, partial successes) or none (a closed connection, a cut answer,
silence, an untrusted certificate, a proxy that refuses); both paths must end in the same
exception or the same parsed answer, and the engine must classify them alike.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.httpsession import AIOHTTPSession
from aiobotocore.session import get_session
from aiohttp import web
from botocore.awsrequest import AWSRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from benchmarks.harness import self_signed_certificate
from sqs_async.errors import classify, error_code
from sqs_async.send._validation import prepare
from sqs_async.wire import QueueTraits
from sqs_async.wire._lean import LeanSqsClient, can_go_lean, on_wire

FROZEN = datetime.datetime(2026, 11, 27, 12, 34, 56)
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
CREDENTIALS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG"}


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda *args, **kwargs: FROZEN)


class _Captured(Exception):
    pass


class _Answer:
    """What aiohttp's `ClientSession.request` returns, as far as either path reads it."""

    def __init__(self, url: Any, body: bytes) -> None:
        self.url, self.status, self.raw_headers, self.body = url, 200, (), body

    async def read(self) -> bytes:
        return self.body


class _Recorder:
    """Stands in for the aiohttp session aiobotocore's HTTP session keeps: records each
    request handed to it, answers an empty success."""

    def __init__(self) -> None:
        self.calls: list[SimpleNamespace] = []
        self.proxy_url: str | None = None  # the proxy the session was asked for

    async def request(self, method: str, url: Any, **options: Any) -> _Answer:
        self.calls.append(
            SimpleNamespace(
                method=method,
                url=str(url),
                headers=options["headers"],
                body=options["data"],
                options=options,
            )
        )
        return _Answer(url, b'{"Successful": [], "Failed": []}')


@contextmanager
def recorded(client: Any) -> Iterator[_Recorder]:
    """Requests the client's HTTP session would give aiohttp, recorded instead of sent."""
    recorder = _Recorder()
    session = client._endpoint.http_session

    async def get_session(proxy_url: str | None) -> _Recorder:
        recorder.proxy_url = proxy_url
        return recorder

    original = session._get_session
    session._get_session = get_session
    try:
        yield recorder
    finally:
        session._get_session = original


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
    """The request the lean path hands to aiohttp."""
    with recorded(client) as recorder:
        await getattr(LeanSqsClient(client), call)(**params)
    return recorder.calls[0]


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
        (
            "receive_message",
            {
                "MaxNumberOfMessages": 10,
                "WaitTimeSeconds": 20,
                "VisibilityTimeout": 30,
                "MessageSystemAttributeNames": ["All"],
                "MessageAttributeNames": ["All"],
                "ReceiveRequestAttemptId": "attempt-1",
            },
        ),
    ],
)
async def test_the_receiving_calls_are_the_requests_botocore_sends(
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
async def canned(
    answer: tuple[int, dict[str, str], bytes], seen: list[tuple[Any, bytes]] | None = None
) -> AsyncIterator[str]:
    """A server on 127.0.0.1 that gives `answer` to every request (and puts the headers and
    body of each request it receives in `seen`)."""
    status, headers, body = answer

    async def handle(request: web.Request) -> web.Response:
        received = await request.read()
        if seen is not None:
            seen.append((request.headers.copy(), received))
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


async def both_answers(
    answer: tuple[int, dict[str, str], bytes], call: str = "send_message_batch"
) -> tuple[Any, Any]:
    """What each path makes of `answer` to `call`: the parsed answer, or the exception
    raised."""
    params = {
        "send_message_batch": {
            "Entries": [{"Id": str(i), "MessageBody": "m"} for i in range(3)],
        },
        "receive_message": {"MaxNumberOfMessages": 10, "MessageAttributeNames": ["All"]},
    }[call]
    outcomes = []
    async with canned(answer) as url, sqs_client(endpoint_url=url) as client:
        for path in (LeanSqsClient(client), client):
            try:
                outcomes.append(await getattr(path, call)(QueueUrl=QUEUE, **params))
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


RECEIVED = {
    "Messages": [
        {
            "MessageId": "m-0",
            "ReceiptHandle": "AQEB+/=0",
            "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
            "Body": "héllo \U0001f600",
            "Attributes": {"SentTimestamp": "1764247296000", "ApproximateReceiveCount": "2"},
            "MD5OfMessageAttributes": "0cc175b9c0f1b6a831c399e269772661",
            "MessageAttributes": {
                "text": {"DataType": "String", "StringValue": "ünïcode"},
                "number": {"DataType": "Number", "StringValue": "-12.5e3"},
                "blob": {"DataType": "Binary", "BinaryValue": "AAEC/f7/"},
                "blobs": {"DataType": "Binary", "BinaryListValues": ["AA==", "/w=="]},
            },
        },
        {"MessageId": "m-1", "ReceiptHandle": "AQEB1", "MD5OfBody": "x", "Body": "plain"},
    ]
}


def with_binary_value(value: Any) -> bytes:
    """An answer whose one message's binary attribute carries `value`."""
    message = {**RECEIVED["Messages"][1], "MessageAttributes": {"b": {"BinaryValue": value}}}
    return json.dumps({"Messages": [message]}).encode()


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(RECEIVED).encode(),
        b"{}",
        with_binary_value("abc"),  # not base64: padding missing
        with_binary_value(5),  # not text
        with_binary_value("abcé"),  # not ASCII
        b'{"Messages": {"not": "a list"}}',
    ],
    ids=["messages", "no-messages", "bad-base64", "not-text", "not-ascii", "not-a-list"],
)
async def test_received_messages_read_as_botocore_reads_them(body: bytes) -> None:
    ours, theirs = await both_answers((200, {"x-amzn-RequestId": "r"}, body), "receive_message")
    if isinstance(theirs, Exception):  # botocore itself cannot read it: the same failure
        assert type(ours) is type(theirs) and str(ours) == str(theirs)
        return
    assert not isinstance(ours, Exception), ours
    assert {k: v for k, v in ours.items() if k != "ResponseMetadata"} == {
        k: v for k, v in theirs.items() if k != "ResponseMetadata"
    }
    assert _metadata(ours["ResponseMetadata"]) == _metadata(theirs["ResponseMetadata"])
    if ours.get("Messages"):  # binary values come as bytes, as botocore gives them
        assert ours["Messages"][0]["MessageAttributes"]["blob"]["BinaryValue"] == bytes(
            [0, 1, 2, 253, 254, 255]
        )


async def closed_port() -> str:
    """An http URL on 127.0.0.1 where nothing listens any more."""
    async with canned(SUCCESSES["partial"]) as url:
        pass
    return url


async def both_failures(url: str, **settings: Any) -> tuple[Exception, Exception]:
    """The exception each path raises for a request to `url` that gets no answer."""
    raised = []
    async with sqs_client(endpoint_url=url, **settings) as client:
        for path in (LeanSqsClient(client), client):
            with pytest.raises(Exception) as error:
                await path.send_message_batch(
                    QueueUrl=QUEUE, Entries=[{"Id": "0", "MessageBody": "m"}]
                )
            raised.append(error.value)
    return raised[0], raised[1]


def assert_same_failure(ours: Exception, theirs: Exception) -> None:
    assert type(ours) is type(theirs), (ours, theirs)
    assert str(ours) == str(theirs)
    assert type(ours.__context__) is type(theirs.__context__)  # aiohttp's own error
    assert (classify(ours), error_code(ours)) == (classify(theirs), error_code(theirs))


async def test_a_closed_port_raises_the_connection_error_botocore_raises() -> None:
    ours, theirs = await both_failures(await closed_port(), config={"connect_timeout": 1})
    assert_same_failure(ours, theirs)


@asynccontextmanager
async def faulty(fault: str, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """A server on 127.0.0.1 that reads a request and then fails it as `fault` says:
    closes the connection, answers something that is not HTTP, cuts its answer short, or
    says nothing until the client gives up."""
    handlers: list[asyncio.Task[Any]] = []
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            if fault == "not-http":
                writer.write(b"HELLO THERE\r\n\r\n")
            elif fault == "cut-short":
                writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"Succ')
            elif fault == "silent":
                await done.wait()
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client went first (a TLS client that refuses the certificate)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        done.set()
        server.close()
        await asyncio.gather(*handlers)
        await server.wait_closed()


@pytest.mark.parametrize("fault", ["disconnect", "not-http", "cut-short", "silent"])
async def test_requests_without_an_answer_raise_what_aiobotocore_raises(fault: str) -> None:
    async with faulty(fault) as url:
        ours, theirs = await both_failures(url, config={"read_timeout": 0.2})
    assert_same_failure(ours, theirs)


async def test_an_untrusted_certificate_raises_the_ssl_error_botocore_raises(
    tmp_path: Path,
) -> None:
    certificate, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    async with faulty("disconnect", tls=context) as url:
        ours, theirs = await both_failures(url)  # verified against the system's CAs
    assert_same_failure(ours, theirs)
    assert type(ours).__name__ == "SSLError"


async def test_the_proxy_from_the_config_is_used_and_its_failure_is_botocores() -> None:
    proxy = await closed_port()
    async with canned(SUCCESSES["partial"]) as url:  # reachable, but not through the proxy
        ours, theirs = await both_failures(url, config={"proxies": {"http": proxy}})
    assert_same_failure(ours, theirs)
    assert type(ours).__name__ == "ProxyConnectionError"


# Headers that differ by design: the signature and length of bodies written differently (the
# signature is compared above), and botocore's retry bookkeeping (unsigned; an invocation id
# and attempt number for botocore's own retries, which the engine does not use).
NOT_COMPARED = ("authorization", "content-length", "amz-sdk-invocation-id", "amz-sdk-request")


@pytest.mark.parametrize("proxies", [None, {"https": "http://user:secret@127.0.0.1:3128"}])
async def test_aiohttp_gets_the_request_aiobotocore_gives_it(
    proxies: dict[str, str] | None,
) -> None:
    """The same proxy, the same headers (less the signature and length of bodies that are
    written differently), the same options."""
    params = {"QueueUrl": QUEUE, "Entries": MESSAGES["attributes"]}
    async with sqs_client(config={"proxies": proxies} if proxies else {}) as client:
        with recorded(client) as recorder:
            await LeanSqsClient(client).send_message_batch(**params)
            await client.send_message_batch(**params)
    ours, theirs = recorder.calls
    assert (ours.method, ours.url) == (theirs.method, theirs.url)
    assert ours.options["proxy"] == theirs.options["proxy"] == recorder.proxy_url
    assert ours.options["proxy_headers"] == theirs.options["proxy_headers"]
    assert theirs.options["chunked"] is None  # aiohttp's default, which the lean path keeps
    assert {k for k in ours.options if k != "chunked"} == {
        k for k in theirs.options if k != "chunked"
    }
    our_headers = {k.lower(): v for k, v in ours.headers.items() if k.lower() not in NOT_COMPARED}
    # The lean path sets the Host header the signer signs; aiohttp derives the same from the URL.
    assert our_headers.pop("host") == URL(theirs.url).host_port_subcomponent
    assert our_headers == {
        k.lower(): v for k, v in theirs.headers.items() if k.lower() not in NOT_COMPARED
    }
    assert json.loads(ours.body) == json.loads(theirs.body)


async def test_a_server_receives_the_same_request_from_both_paths() -> None:
    seen: list[tuple[Any, bytes]] = []
    params = {"QueueUrl": QUEUE, "Entries": MESSAGES["non-ascii"]}
    async with canned(SUCCESSES["partial"], seen) as url, sqs_client(endpoint_url=url) as client:
        await LeanSqsClient(client).send_message_batch(**params)
        await client.send_message_batch(**params)
    (ours, our_body), (theirs, their_body) = seen
    assert sorted((k.lower(), v) for k, v in ours.items() if k.lower() not in NOT_COMPARED) == (
        sorted((k.lower(), v) for k, v in theirs.items() if k.lower() not in NOT_COMPARED)
    )
    assert ours["Content-Length"] == str(len(our_body))
    assert json.loads(our_body) == json.loads(their_body)


async def test_only_aiobotocore_sqs_clients_that_sign_go_lean() -> None:
    from botocore import UNSIGNED

    async with sqs_client() as client:
        assert can_go_lean(client) and isinstance(on_wire(client, "lean"), LeanSqsClient)
        assert on_wire(client, "botocore") is client
    async with sqs_client(config={"signature_version": UNSIGNED}) as unsigned:
        assert on_wire(unsigned, "lean") is unsigned

    class OwnHttpSession(AIOHTTPSession):  # a user's HTTP client: it may send differently
        pass

    async with sqs_client(config={"http_session_cls": OwnHttpSession}) as own:
        assert on_wire(own, "lean") is own
    stub: Callable[[], None] = lambda: None  # noqa: E731 - anything that is not a client
    assert on_wire(stub, "lean") is stub
