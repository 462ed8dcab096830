"""Large payloads through S3 (`sqs_async.offload`) on the local server, which serves S3 on the
SQS port: the format, both directions through the engine, and each fault the issue names
(a missing bucket, access denied, an object gone before the receive, a pointer message that
fails for good, bodies that only look like pointers). Interop with AWS's own library:
`test_offload_interop.py`; Beam: `test_beam_offload.py`."""

from __future__ import annotations

import asyncio
import json
from http.server import BaseHTTPRequestHandler
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from sqs_async import RetryPolicy, SqsProducer, SqsReceiver, SqsSender
from sqs_async.errors import never_reached
from sqs_async.offload import (
    LEGACY_POINTER_CLASS,
    POINTER_CLASS,
    S3Offload,
    S3Pointer,
    marked_receipt_handle,
    offload_from,
    original_receipt_handle,
    read_pointer,
)
from sqs_async.offload._s3 import S3Transfers
from sqs_async.testing import LOCAL_CREDENTIALS, LocalSqsServer

from .conftest import drain, make_queue, queue_counts
from .faults import FaultyClient, client_error, loopback_http, no_sleep

BUCKET = "payloads"
BIG = "größer ✓ " * 350_000  # 3.85 MB of UTF-8: over SQS's 1 MiB
TAG = {"kind": {"DataType": "String", "StringValue": "report"}}
BLOB = {"raw": {"DataType": "Binary", "BinaryValue": b"\x00\xffbytes"}}


@pytest.fixture
def s3(server: LocalSqsServer) -> Any:
    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        config=Config(s3={"addressing_style": "path"}),
        **LOCAL_CREDENTIALS,
    )
    client.create_bucket(Bucket=BUCKET)
    return client


def stored(s3: Any) -> dict[str, bytes]:
    listing = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listing}


async def read_all(settings: dict[str, Any], queue_url: str, stage: S3Offload) -> Any:
    """Every message of the queue through a receiver with `stage`, acked; and its stats."""
    async with SqsReceiver(
        queue_url=queue_url, payload_stage=stage, wait_time_seconds=1, **settings
    ) as receiver:
        got = [m async for m in receiver.messages(until_empty=True)]
        await receiver.ack(got)
    return got, receiver.stats


# The format


def test_pointer_bodies_are_written_as_java_writes_them_and_read_in_every_variant() -> None:
    pointer = S3Pointer("my-bucket", "prefix/0f1e-key")
    assert pointer.body == (
        '["software.amazon.payloadoffloading.PayloadS3Pointer",'
        '{"s3BucketName":"my-bucket","s3Key":"prefix/0f1e-key"}]'
    )
    spaced = json.dumps([POINTER_CLASS, {"s3BucketName": "my-bucket", "s3Key": "prefix/0f1e-key"}])
    legacy = json.dumps([LEGACY_POINTER_CLASS, {"s3BucketName": "my-bucket", "s3Key": "k"}])
    assert read_pointer(pointer.body) == read_pointer(spaced) == pointer
    assert read_pointer(legacy) == S3Pointer("my-bucket", "k")
    for text in (
        "plain text",
        "[not json",
        "[]",
        json.dumps([POINTER_CLASS]),
        json.dumps(["other.Class", {"s3BucketName": "b", "s3Key": "k"}]),
        json.dumps([POINTER_CLASS, {"s3BucketName": "b"}]),
        json.dumps([POINTER_CLASS, {"s3BucketName": "b", "s3Key": 7}]),
        json.dumps([POINTER_CLASS, {"s3BucketName": "b", "s3Key": "k"}, "extra"]),
        json.dumps([POINTER_CLASS, {"s3BucketName": "b", "s3Key": "k" + " " * 9000}]),
    ):
        assert read_pointer(text) is None, text


def test_marked_receipt_handles_unwrap_as_java_does_even_with_dashes_in_the_handle() -> None:
    handle = "AQEB-x9-k2--Zm8=-end"  # SQS handles contain "-"
    pointer = S3Pointer("b-1", "pre-fix/a-b-c")
    marked = marked_receipt_handle(handle, pointer)
    assert (
        marked
        == f"-..s3BucketName..-b-1-..s3BucketName..--..s3Key..-pre-fix/a-b-c-..s3Key..-{handle}"
    )
    assert original_receipt_handle(marked) == handle
    assert original_receipt_handle(handle) == handle


def test_settings_are_checked_and_flags_need_a_bucket() -> None:
    with pytest.raises(ValueError, match="key_prefix"):
        S3Offload(bucket=BUCKET, key_prefix="bad prefix!")
    with pytest.raises(ValueError, match="missing_payload"):
        S3Offload(bucket=BUCKET, missing_payload="ignore")
    for prefix in ("/abs", ".hidden", "a/../b"):  # as the Java library refuses them
        with pytest.raises(ValueError, match="key_prefix"):
            S3Offload(bucket=BUCKET, key_prefix=prefix)
    assert offload_from({"s3_bucket": "b", "s3_threshold": 0}) == S3Offload(bucket="b", threshold=0)
    with pytest.raises(ValueError, match=r"^--s3-concurrent-transfers must be >= 1, got 0$"):
        offload_from({"s3_bucket": "b", "s3_concurrent_transfers": 0})
    with pytest.raises(ValueError, match=r"^--s3_threshold needs --s3_bucket \("):  # Beam's
        offload_from({"s3_threshold": 5}, "_")
    for url in ("not-a-url", "127.0.0.1:9324", "ftp://host"):
        with pytest.raises(ValueError, match="endpoint_url must be a whole URL"):
            S3Offload(bucket="b", endpoint_url=url)
    with pytest.raises(ValueError, match="--s3-always and --s3-cleanup need --s3-bucket"):
        offload_from({"s3_cleanup": True, "s3_always": True})
    assert offload_from({"s3_bucket": None, "s3_cleanup": False}) is None
    assert offload_from({"s3_bucket": "b", "s3_threshold": 10}) == S3Offload(
        bucket="b", threshold=10
    )


# Both directions


async def test_a_large_body_goes_through_s3_and_comes_back_exactly(
    settings: dict[str, Any], sync_client: Any, s3: Any
) -> None:
    queue_url = make_queue(sync_client)
    records: list[Any] = [
        {"MessageBody": BIG, "MessageAttributes": {**TAG, **BLOB}},
        BIG[:1000],  # small: stays in SQS
    ]
    async with SqsSender(
        queue_url=queue_url, payload_stage=S3Offload(bucket=BUCKET), **settings
    ) as s:
        result = await s.send(records)
    assert not result.failed and len(result.delivered) == 2
    objects = stored(s3)
    assert list(objects.values()) == [BIG.encode()]
    raw = {m["Body"]: m for m in drain(sync_client, queue_url)}  # made visible again below
    pointer_body = next(body for body in raw if body != BIG[:1000])
    pointer = read_pointer(pointer_body)
    assert pointer is not None and pointer.key in objects
    attributes = raw[pointer_body]["MessageAttributes"]
    assert attributes["ExtendedPayloadSize"] == {
        "DataType": "Number",
        "StringValue": str(len(BIG.encode())),
    }
    assert attributes["kind"]["StringValue"] == "report"

    async with SqsSender(
        queue_url=queue_url, payload_stage=S3Offload(bucket=BUCKET), **settings
    ) as s:
        assert not (await s.send(records)).failed
    got, stats = await read_all(settings, queue_url, S3Offload(bucket=BUCKET, cleanup=True))
    by_body = {m.body: m for m in got}
    assert sorted(by_body) == sorted([BIG, BIG[:1000]]) and len(got) == 2
    large = by_body[BIG]
    assert large.message_attributes == {**TAG, **BLOB}  # the reserved attribute removed
    assert large.payload_location is not None and large.payload_location.startswith("s3://")
    assert large.as_record()["PayloadLocation"] == large.payload_location
    assert by_body[BIG[:1000]].payload_location is None
    assert stats.deleted == 2 and stats.stage_failures == 0
    # cleanup: the object of the message deleted is gone; the first send's stays
    assert list(stored(s3)) == [pointer.key]


async def test_the_producer_offloads_and_the_default_threshold_is_the_queues_limit(
    settings: dict[str, Any], sync_client: Any, s3: Any
) -> None:
    queue_url = make_queue(sync_client, MaximumMessageSize="262144")
    just_over = "y" * 262_145  # SQS would refuse it on this queue
    async with SqsProducer(
        queue_url=queue_url, payload_stage=S3Offload(bucket=BUCKET), **settings
    ) as producer:
        outcomes = await asyncio.gather(
            *[await producer.put(body) for body in (just_over, "z" * 262_000)]
        )
    assert [type(o).__name__ for o in outcomes] == ["Delivered", "Delivered"]
    assert list(stored(s3).values()) == [just_over.encode()]
    got, _ = await read_all(settings, queue_url, S3Offload(bucket=BUCKET))
    assert sorted(m.body for m in got) == sorted([just_over, "z" * 262_000])


async def test_always_and_legacy_attribute(
    settings: dict[str, Any], sync_client: Any, s3: Any
) -> None:
    queue_url = make_queue(sync_client)
    stage = S3Offload(bucket=BUCKET, always=True, legacy_attribute=True, key_prefix="in/")
    async with SqsSender(queue_url=queue_url, payload_stage=stage, **settings) as sender:
        assert not (await sender.send(["tiny"])).failed
    (raw,) = drain(sync_client, queue_url)
    assert raw["MessageAttributes"]["SQSLargePayloadSize"]["StringValue"] == "4"
    assert [key.startswith("in/") for key in stored(s3)] == [True]
    # A body that only goes to S3 may hold what SQS refuses in a body (S3 stores any text).
    async with SqsSender(queue_url=queue_url, payload_stage=stage, **settings) as sender:
        assert not (await sender.send(["nul\x00byte"])).failed
    got, _ = await read_all(settings, queue_url, S3Offload(bucket=BUCKET))
    assert [m.body for m in got] == ["nul\x00byte"]


# Faults


async def test_a_missing_bucket_fails_each_offloaded_record_with_its_code(
    settings: dict[str, Any], sync_client: Any, s3: Any
) -> None:
    queue_url = make_queue(sync_client)
    stage = S3Offload(bucket="no-such-bucket")
    async with SqsSender(queue_url=queue_url, payload_stage=stage, **settings) as sender:
        result = await sender.send([BIG, "small", BIG])
    assert [f.index for f in result.failed] == [0, 2]
    failed = result.failed[0]
    assert failed.code == "NoSuchBucket" and failed.sender_fault and failed.record == BIG
    assert "s3://no-such-bucket/" in failed.message and "does not exist" in failed.message
    assert [m["Body"] for m in drain(sync_client, queue_url)] == ["small"]


class _DenyingS3(BaseHTTPRequestHandler):
    """An S3 endpoint that refuses everything, as S3 does without permission (an upload that
    asks `Expect: 100-continue` is refused before its body is sent)."""

    protocol_version = "HTTP/1.1"

    def handle_expect_100(self) -> bool:
        self._deny(read_body=False)
        return False

    def _deny(self, read_body: bool = True) -> None:
        if read_body:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
            b"<Message>Access Denied</Message></Error>"
        )
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_GET = do_DELETE = do_HEAD = do_POST = _deny

    def log_message(self, *args: Any) -> None:
        pass


async def test_access_denied_names_the_permission_and_loses_nothing(
    settings: dict[str, Any], sync_client: Any
) -> None:
    queue_url = make_queue(sync_client)
    with loopback_http(_DenyingS3) as denying_s3:
        stage = S3Offload(bucket=BUCKET, endpoint_url=denying_s3)
        async with SqsSender(queue_url=queue_url, payload_stage=stage, **settings) as sender:
            result = await sender.send([BIG, "small"])
    (failed,) = result.failed
    assert failed.code == "AccessDenied" and failed.record == BIG and failed.attempts == 0
    assert "s3:PutObject" in failed.message
    assert [d.record for d in result.delivered] == ["small"]


class _SilentS3(BaseHTTPRequestHandler):
    """An endpoint that takes an upload's headers and never answers (nor says 100 Continue)."""

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))  # the body never comes

    def log_message(self, *args: Any) -> None:
        pass


async def test_an_upload_to_a_silent_endpoint_fails_in_bounded_time(
    settings: dict[str, Any], sync_client: Any
) -> None:
    with loopback_http(_SilentS3) as silent:
        stage = S3Offload(bucket=BUCKET, endpoint_url=silent)
        async with SqsSender(
            queue_url=make_queue(sync_client),
            payload_stage=stage,
            max_trials=1,
            connect_timeout=0.5,
            read_timeout=0.5,
            **settings,
        ) as sender:
            async with asyncio.timeout(60):  # the bound: 1 s + 1.1 MB at 1 MB/s
                result = await sender.send(["x" * 1_100_000])
    (failed,) = result.failed
    assert failed.code == "TimeoutError" and not failed.sender_fault
    assert "S3 refused requests to s3://payloads/" in failed.message


async def _send_large(settings: dict[str, Any], queue_url: str) -> S3Pointer:
    async with SqsSender(
        queue_url=queue_url, payload_stage=S3Offload(bucket=BUCKET), **settings
    ) as s:
        assert not (await s.send([BIG])).failed
    return S3Pointer(BUCKET, "")


@pytest.mark.parametrize("policy", ["leave", "delete"])
async def test_an_object_gone_before_the_receive(
    settings: dict[str, Any], sync_client: Any, s3: Any, policy: str
) -> None:
    queue_url = make_queue(sync_client)
    await _send_large(settings, queue_url)
    for key in stored(s3):
        s3.delete_object(Bucket=BUCKET, Key=key)
    stage = S3Offload(bucket=BUCKET, missing_payload=policy)
    got, stats = await read_all(settings, queue_url, stage)
    assert got == []  # never handed out as if whole
    if policy == "leave":  # held by SQS until its visibility timeout: it comes back, to a DLQ
        assert stats.stage_failures == 1 and stats.discarded == 0
        assert queue_counts(sync_client, queue_url) == (0, 1)
    else:
        assert stats.discarded == 1 and stats.stage_failures == 0
        assert queue_counts(sync_client, queue_url) == (0, 0)


async def test_bodies_that_only_look_like_pointers_are_ordinary_messages(
    settings: dict[str, Any], sync_client: Any, s3: Any
) -> None:
    queue_url = make_queue(sync_client)
    size = {"ExtendedPayloadSize": {"DataType": "Number", "StringValue": "5"}}
    odd = ["not json at all", json.dumps(["other", {"s3BucketName": "b", "s3Key": "k"}])]
    for body in odd:
        sync_client.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=size)
    got, stats = await read_all(settings, queue_url, S3Offload(bucket=BUCKET))
    assert sorted(m.body for m in got) == sorted(odd)
    assert all(m.message_attributes == size and m.payload_location is None for m in got)
    assert stats.stage_failures == 0


async def _send_refused(settings: dict[str, Any], queue_url: str, record: Any) -> list[str]:
    """The codes of `record`'s failure, sent with offload where SQS refuses every entry."""
    refusing = lambda inner: FaultyClient(  # noqa: E731
        inner, entry_fault=lambda body, tries: ("InvalidParameterValue", True)
    )
    async with SqsSender(
        queue_url=queue_url,
        payload_stage=S3Offload(bucket=BUCKET),
        client_wrapper=refusing,
        **settings,
    ) as sender:
        result = await sender.send([record])
    return [f.code for f in result.failed]


async def test_the_object_of_a_pointer_that_fails_for_good_is_deleted(
    settings: dict[str, Any], sync_client: Any, s3: Any
) -> None:
    codes = await _send_refused(settings, make_queue(sync_client), BIG)
    assert codes == ["InvalidParameterValue"]
    assert stored(s3) == {}  # deleted by the time the sender closed


@pytest.mark.parametrize(
    "error",
    [
        ReadTimeoutError(endpoint_url="http://127.0.0.1"),
        EndpointConnectionError(endpoint_url="http://127.0.0.1"),  # also a reset once sent
        client_error("InternalError", 500),
    ],
    ids=["timeout", "connection", "5xx"],
)
async def test_the_object_is_kept_when_the_pointer_may_have_reached_sqs(
    settings: dict[str, Any], sync_client: Any, s3: Any, error: Exception
) -> None:
    queue_url = make_queue(sync_client)
    async with SqsSender(
        queue_url=queue_url,
        payload_stage=S3Offload(bucket=BUCKET),
        client_wrapper=lambda inner: FaultyClient(inner, request_fault=lambda n: error),
        max_trials=1,
        **settings,
    ) as sender:
        result = await sender.send([BIG])
    assert [f.index for f in result.failed] == [0]
    assert len(stored(s3)) == 1  # it may be delivered: its payload must stay


def test_what_surely_never_reached_sqs() -> None:
    assert never_reached(client_error("ThrottlingException", 400))
    assert never_reached(ConnectTimeoutError(endpoint_url="http://127.0.0.1"))
    for error in (
        client_error("InternalError", 500),
        ReadTimeoutError(endpoint_url="http://127.0.0.1"),
        EndpointConnectionError(endpoint_url="http://127.0.0.1"),
        TimeoutError(),
    ):
        assert not never_reached(error), error


async def test_a_pointer_the_caller_sends_on_keeps_its_object_when_it_fails(
    settings: dict[str, Any], sync_client: Any, s3: Any
) -> None:
    queue_url = make_queue(sync_client)
    s3.put_object(Bucket=BUCKET, Key="shared", Body=b"payload")
    forwarded = {
        "MessageBody": S3Pointer(BUCKET, "shared").body,
        "MessageAttributes": {"ExtendedPayloadSize": {"DataType": "Number", "StringValue": "7"}},
    }
    assert await _send_refused(settings, queue_url, forwarded) == ["InvalidParameterValue"]
    assert stored(s3) == {"shared": b"payload"}  # not ours to delete


def _pointer_to(sync_client: Any, queue_url: str, bucket: str, key: str, **fields: Any) -> None:
    sync_client.send_message(
        QueueUrl=queue_url,
        MessageBody=S3Pointer(bucket, key).body,
        MessageAttributes={"ExtendedPayloadSize": {"DataType": "Number", "StringValue": "7"}},
        **fields,
    )


async def test_a_wrong_bucket_is_not_a_missing_payload_and_cleanup_stays_in_its_bucket(
    settings: dict[str, Any], sync_client: Any, s3: Any
) -> None:
    queue_url = make_queue(sync_client)
    s3.create_bucket(Bucket="elsewhere")
    s3.put_object(Bucket="elsewhere", Key="k", Body=b"payload")
    _pointer_to(sync_client, queue_url, "no-such-bucket", "k")
    _pointer_to(sync_client, queue_url, "elsewhere", "k")
    stage = S3Offload(bucket=BUCKET, missing_payload="delete", cleanup=True)
    got, stats = await read_all(settings, queue_url, stage)
    assert [(m.body, m.payload_location) for m in got] == [("payload", "s3://elsewhere/k")]
    assert stats.discarded == 0 and stats.stage_failures == 1  # the wrong bucket's is kept
    assert queue_counts(sync_client, queue_url) == (0, 1)
    assert s3.get_object(Bucket="elsewhere", Key="k")["Body"].read() == b"payload"


async def test_on_a_fifo_queue_a_group_waits_behind_a_message_not_handed_out(
    settings: dict[str, Any], sync_client: Any, s3: Any
) -> None:
    queue_url = make_queue(sync_client, FifoQueue="true")
    for n in range(3):
        s3.put_object(Bucket=BUCKET, Key=f"k{n}", Body=f"payload {n}".encode())
        _pointer_to(
            sync_client,
            queue_url,
            BUCKET,
            f"k{n}",
            MessageGroupId="g",
            MessageDeduplicationId=str(n),
        )
    s3.delete_object(Bucket=BUCKET, Key="k0")  # the first of the group cannot be fetched
    got, stats = await read_all(settings, queue_url, S3Offload(bucket=BUCKET))
    assert got == [] and stats.stage_failures == 1  # 1 and 2 do not overtake 0
    assert queue_counts(sync_client, queue_url) == (0, 3)


async def test_a_record_that_cannot_carry_the_reserved_attribute_fails_before_any_upload(
    settings: dict[str, Any], sync_client: Any, s3: Any
) -> None:
    queue_url = make_queue(sync_client)
    ten = {f"a{n}": {"DataType": "String", "StringValue": "v"} for n in range(10)}
    reserved = {"ExtendedPayloadSize": {"DataType": "Number", "StringValue": "1"}}
    records = [
        {"MessageBody": BIG, "MessageAttributes": ten},
        {"MessageBody": BIG, "MessageAttributes": reserved},
    ]
    stage = S3Offload(bucket=BUCKET)
    async with SqsSender(queue_url=queue_url, payload_stage=stage, **settings) as sender:
        result = await sender.send(records)
    assert [(f.code, f.sender_fault) for f in result.failed] == [
        ("InvalidAttributes", True),
        ("InvalidRecord", True),
    ]
    assert "at most 9" in result.failed[0].message and "reserved" in result.failed[1].message
    assert stored(s3) == {}


# The S3 calls, on a stub client (no server): bounded, and slowed by S3's throttling


class _StubS3:
    """Answers put_object after a loop turn, `SlowDown` for the first `throttled` calls."""

    def __init__(self, throttled: int = 0) -> None:
        self.throttled = throttled
        self.calls = 0
        self.in_flight = 0
        self.peak = 0
        self.in_flight_at_start: list[int] = []

    async def put_object(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.in_flight_at_start.append(self.in_flight)
        try:
            await asyncio.sleep(0)
            if self.calls <= self.throttled:
                raise client_error("SlowDown", 503, "PutObject")
            return {}
        finally:
            self.in_flight -= 1


def _transfers(client: _StubS3, concurrent: int) -> S3Transfers:
    return S3Transfers(
        client,
        retry=RetryPolicy(max_trials=5),
        sleep=no_sleep,
        concurrent_transfers=concurrent,
        kms_key_id=None,
        request_timeout=10,
    )


async def test_transfers_are_bounded() -> None:
    client = _StubS3()
    transfers = _transfers(client, concurrent=4)
    await asyncio.gather(*(transfers.put(S3Pointer("b", str(n)), b"x") for n in range(40)))
    assert client.calls == 40 and client.peak == 4


async def test_s3_throttling_halves_the_transfers_and_is_retried() -> None:
    paces = []
    for throttled in (0, 8):  # none; the first round of 8
        client = _StubS3(throttled=throttled)
        transfers = _transfers(client, concurrent=8)
        await asyncio.gather(*(transfers.put(S3Pointer("b", str(n)), b"x") for n in range(24)))
        assert client.calls == 24 + throttled  # each throttled put retried once
        paces.append(max(client.in_flight_at_start[8:16]))  # the round after the first
    assert paces == [8, 4]  # halved after the throttled round
