"""Large payloads through S3, interoperable with AWS's extended clients (issue 24), on the
local server, which serves S3 on the same port as SQS.

AWS's Python library (`amazon-sqs-extended-client`) runs in a subprocess
(`extended_client_peer.py`): importing it replaces `boto3.Session` process-wide. Java's
format is written with plain boto3, byte for byte as the Java library writes it. Every
test reads the messages back and compares bodies (non-ASCII text, 100 KiB to 3 MiB) and
attributes exactly, and looks in the queue and the bucket afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from sqs_async import SqsReceiver, SqsSender
from sqs_async.offload import (
    LEGACY_POINTER_CLASS,
    LEGACY_SIZE_ATTRIBUTE,
    POINTER_CLASS,
    SIZE_ATTRIBUTE,
    S3Offload,
    S3Pointer,
    marked_receipt_handle,
    original_receipt_handle,
    read_pointer,
)
from sqs_async.receive import ReceivedMessage
from sqs_async.testing import LOCAL_CREDENTIALS, LocalSqsServer

from .conftest import make_queue, queue_counts, stored_bodies

# Runs subprocesses (`make test-quick` skips it).
pytestmark = pytest.mark.integration

PEER = Path(__file__).with_name("extended_client_peer.py")
# AWS's libraries offload above 256 KiB (fixed in the Python one).
AWS_THRESHOLD = 262_144
KIB, MIB = 1024, 1024 * 1024
# Several scripts and widths of UTF-8 (1 to 4 bytes a character).
SAMPLE = "Grüße aus Köln, 東京の夜 🙂 «ça va» ελληνικά ½ — "
_bucket_numbers = itertools.count()


def text(label: str, characters: int) -> str:
    """`characters` characters of non-ASCII text, starting with `label` (bodies differ)."""
    return (f"{label}|" + SAMPLE * (characters // len(SAMPLE) + 1))[:characters]


def utf8_size(body: str) -> int:
    return len(body.encode("utf-8"))


def string_attribute(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def plain(attributes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Message attributes as sent (SQS's answers add empty list fields)."""
    return {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in attributes.items()
    }


@pytest.fixture
def s3(server: LocalSqsServer) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        config=Config(s3={"addressing_style": "path"}),
        **LOCAL_CREDENTIALS,
    )


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"payloads-{next(_bucket_numbers)}"
    s3.create_bucket(Bucket=name)
    return name


def objects(s3: Any, bucket: str) -> dict[str, bytes]:
    """Every object in `bucket`: key -> content."""
    listing = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in listing
    }


async def peer(server: LocalSqsServer, bucket: str, steps: list[dict[str, Any]]) -> list[Any]:
    """Run `steps` with AWS's Python library in a subprocess (see `extended_client_peer`)."""
    request = {**server.client_settings, "bucket": bucket, "steps": steps}
    # No user's AWS set-up reaches the peer: the request carries everything it needs.
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    completed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(PEER)],
        input=json.dumps(request, ensure_ascii=False).encode("utf-8"),
        capture_output=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode("utf-8", "replace")
    results: list[Any] = json.loads(completed.stdout.decode("utf-8"))["results"]
    return results


async def receive_all(
    settings: dict[str, Any], queue_url: str, stage: S3Offload, count: int, **config: Any
) -> list[ReceivedMessage]:
    """`count` messages read by an SqsReceiver with `stage`, then acked; the receiver must
    have handed every one out whole and deleted it."""
    async with SqsReceiver(
        queue_url=queue_url, wait_time_seconds=0, payload_stage=stage, **config, **settings
    ) as receiver:
        messages = [m async for m in receiver.messages(max_messages=count, max_time=60)]
        ack = await receiver.ack(messages)
        stats = receiver.stats
    assert len(messages) == count, (len(messages), stats)
    assert not ack.failed and stats.stage_failures == 0 and stats.ack_stage_failures == 0
    return messages


async def send_all(
    settings: dict[str, Any], queue_url: str, stage: S3Offload, records: list[Any]
) -> None:
    async with SqsSender(queue_url=queue_url, payload_stage=stage, **settings) as sender:
        result = await sender.send(records)
    assert not result.failed, result.failed
    assert result.delivered_count == len(records)


def stored_pointers(queue_url: str) -> list[str]:
    """The bodies the server holds for `queue_url` (each must be a pointer)."""
    held = [body for body, _ in stored_bodies(queue_url)]
    assert all(read_pointer(body) is not None for body in held), [b[:80] for b in held]
    return held


# 1. AWS's Python library sends, ours receives.


async def test_ours_receives_what_aws_python_library_sent(
    server: LocalSqsServer, settings: dict[str, Any], sync_client: Any, s3: Any, bucket: str
) -> None:
    queue_url = make_queue(sync_client)
    by_size, beyond_sqs, small = text("size", 300 * KIB), text("3MiB", 3 * MIB), text("s", 200)
    own = {"origin": string_attribute("Ünïcode ✓")}
    assert AWS_THRESHOLD < utf8_size(by_size) < MIB < utf8_size(beyond_sqs)
    await peer(
        server,
        bucket,
        [
            {"send": queue_url, "body": by_size, "attributes": own},
            {"send": queue_url, "body": beyond_sqs},
            {"send": queue_url, "body": small, "attributes": own, "always_through_s3": True},
        ],
    )
    # All three went through S3, pointed at in the library's own (spaced) JSON.
    stored = objects(s3, bucket)
    assert sorted(stored.values()) == sorted(b.encode() for b in (by_size, beyond_sqs, small))
    for body in stored_pointers(queue_url):
        assert ", " in body and body.startswith(f'["{POINTER_CLASS}", {{"s3BucketName": ')

    messages = await receive_all(
        settings, queue_url, S3Offload(bucket=bucket, cleanup=True), count=3
    )

    got = {m.body: m for m in messages}
    assert sorted(got) == sorted([by_size, beyond_sqs, small])
    assert plain(got[by_size].message_attributes) == own  # ExtendedPayloadSize is gone
    assert plain(got[small].message_attributes) == own
    assert got[beyond_sqs].message_attributes == {}
    assert {m.payload_location for m in messages} == {f"s3://{bucket}/{key}" for key in stored}
    assert queue_counts(sync_client, queue_url) == (0, 0)
    assert objects(s3, bucket) == {}  # cleanup=True: deleted with their messages


# 2. Ours sends, AWS's Python library receives.


async def test_aws_python_library_receives_and_deletes_what_ours_sent(
    server: LocalSqsServer, settings: dict[str, Any], sync_client: Any, s3: Any, bucket: str
) -> None:
    queue_url = make_queue(sync_client)
    by_size, beyond_sqs, small = text("size", 300 * KIB), text("3MiB", 3 * MIB), text("s", 200)
    own = {"origin": string_attribute("Ünïcode ✓")}
    assert AWS_THRESHOLD < utf8_size(by_size) < MIB < utf8_size(beyond_sqs)
    records = [{"MessageBody": by_size, "MessageAttributes": own}, beyond_sqs]
    await send_all(settings, queue_url, S3Offload(bucket=bucket, threshold=AWS_THRESHOLD), records)
    await send_all(settings, queue_url, S3Offload(bucket=bucket, always=True), [small])
    # The objects are the bodies' UTF-8 bytes; the pointers compact JSON, as Java writes them.
    assert sorted(objects(s3, bucket).values()) == sorted(
        b.encode() for b in (by_size, beyond_sqs, small)
    )
    for body in stored_pointers(queue_url):
        assert body.startswith(f'["{POINTER_CLASS}",{{"s3BucketName":"{bucket}","s3Key":"')

    [received] = await peer(
        server,
        bucket,
        [
            {
                "receive": queue_url,
                "count": 3,
                "message_attribute_names": ["All"],
                "delete": True,
                "delete_payload_from_s3": True,
            }
        ],
    )

    got = {m["body"]: m for m in received["messages"]}
    assert sorted(got) == sorted([by_size, beyond_sqs, small])
    assert plain(got[by_size]["attributes"]) == own  # the library took ExtendedPayloadSize out
    assert got[beyond_sqs]["attributes"] == {} and got[small]["attributes"] == {}
    assert [m["delete_error"] for m in received["messages"]] == [None] * 3
    assert objects(s3, bucket) == {}
    assert queue_counts(sync_client, queue_url) == (0, 0)


# 3. Java's format, and the legacy attribute.


async def test_ours_reads_every_variant_of_the_pointer(
    settings: dict[str, Any], sync_client: Any, s3: Any, bucket: str
) -> None:
    """Written with plain boto3 as each library writes it: Java's compact JSON with
    SQSLargePayloadSize (its default) in either class name, and the Python library's spaced
    JSON with either attribute. The receiver asks for one attribute of its own only: it must
    still ask for both reserved ones (the Python library misses Java's messages so)."""
    queue_url = make_queue(sync_client)
    variants = {
        "java": ('["{c}",{{"s3BucketName":"{b}","s3Key":"{k}"}}]', POINTER_CLASS),
        "java-v1": ('["{c}",{{"s3BucketName":"{b}","s3Key":"{k}"}}]', LEGACY_POINTER_CLASS),
        "python": ('["{c}", {{"s3BucketName": "{b}", "s3Key": "{k}"}}]', POINTER_CLASS),
        "python-legacy": (
            '["{c}", {{"s3BucketName": "{b}", "s3Key": "{k}"}}]',
            LEGACY_POINTER_CLASS,
        ),
    }
    size_attribute = {
        "java": LEGACY_SIZE_ATTRIBUTE,
        "java-v1": LEGACY_SIZE_ATTRIBUTE,
        "python": SIZE_ATTRIBUTE,
        "python-legacy": LEGACY_SIZE_ATTRIBUTE,
    }
    sent: dict[str, tuple[str, str, dict[str, Any]]] = {}  # body -> variant, location, own
    for number, (variant, (template, pointer_class)) in enumerate(variants.items()):
        body = text(variant, 100 * KIB + number)
        key = f"{variant}/{uuid.uuid4()}"
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"))
        own = {"origin": string_attribute(variant)} if number % 2 else {}
        attributes = {
            **own,
            size_attribute[variant]: {"DataType": "Number", "StringValue": str(utf8_size(body))},
        }
        sync_client.send_message(
            QueueUrl=queue_url,
            MessageBody=template.format(c=pointer_class, b=bucket, k=key),
            MessageAttributes=attributes,
        )
        sent[body] = (variant, f"s3://{bucket}/{key}", own)

    messages = await receive_all(
        settings,
        queue_url,
        S3Offload(bucket=bucket),
        count=len(variants),
        message_attribute_names=("origin",),
    )

    assert sorted(m.body for m in messages) == sorted(sent)
    for message in messages:
        variant, location, own = sent[message.body]
        assert (message.payload_location, plain(message.message_attributes)) == (location, own)
    assert queue_counts(sync_client, queue_url) == (0, 0)
    assert len(objects(s3, bucket)) == len(variants)  # cleanup is off by default


async def test_aws_python_library_reads_the_legacy_attribute_ours_wrote(
    server: LocalSqsServer, settings: dict[str, Any], sync_client: Any, s3: Any, bucket: str
) -> None:
    queue_url = make_queue(sync_client)
    body = text("legacy", 300 * KIB)
    stage = S3Offload(bucket=bucket, threshold=AWS_THRESHOLD, legacy_attribute=True)
    await send_all(settings, queue_url, stage, [body])
    # As sent: SQSLargePayloadSize (Java's default) with the payload's UTF-8 size, nothing else.
    [raw] = sync_client.receive_message(
        QueueUrl=queue_url, MessageAttributeNames=["All"], VisibilityTimeout=0
    )["Messages"]
    assert plain(raw["MessageAttributes"]) == {
        LEGACY_SIZE_ATTRIBUTE: {"DataType": "Number", "StringValue": str(utf8_size(body))}
    }
    assert read_pointer(raw["Body"]) is not None

    [received] = await peer(
        server,
        bucket,
        [
            {
                "receive": queue_url,
                "count": 1,
                "message_attribute_names": ["All"],
                "delete": True,
                "delete_payload_from_s3": True,
            }
        ],
    )

    [message] = received["messages"]
    assert (message["body"], message["attributes"], message["delete_error"]) == (body, {}, None)
    assert objects(s3, bucket) == {}
    assert queue_counts(sync_client, queue_url) == (0, 0)


# 4. A queue that takes at most 256 KiB.


async def test_a_body_over_the_queues_maximum_goes_through_s3_by_default(
    settings: dict[str, Any], sync_client: Any, s3: Any, bucket: str
) -> None:
    queue_url = make_queue(sync_client, MaximumMessageSize=str(AWS_THRESHOLD))
    too_large, fits = text("large", 300 * KIB), text("fits", 100 * KIB)
    assert utf8_size(fits) < AWS_THRESHOLD < len(too_large)
    # The server refuses the large body as it is (moto counts characters, SQS bytes).
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        sync_client.send_message(QueueUrl=queue_url, MessageBody=too_large)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"

    # The default threshold is the queue's MaximumMessageSize: only the large body moves.
    await send_all(settings, queue_url, S3Offload(bucket=bucket), [too_large, fits])
    assert list(objects(s3, bucket).values()) == [too_large.encode("utf-8")]
    held = [body for body, _ in stored_bodies(queue_url)]
    assert [b for b in held if read_pointer(b) is None] == [fits] and len(held) == 2

    messages = await receive_all(settings, queue_url, S3Offload(bucket=bucket), count=2)
    assert sorted(m.body for m in messages) == sorted([too_large, fits])
    assert queue_counts(sync_client, queue_url) == (0, 0)


# 5. Receipt handles marked by AWS's libraries.


@pytest.fixture
def handles_with_dashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server hands out receipt handles with '-' in them, as SQS does (moto's are
    letters only)."""
    from moto.sqs import models

    letters = vars(models)["generate_receipt_handle"]
    monkeypatch.setitem(
        vars(models),
        "generate_receipt_handle",
        lambda: f"AQEB-{letters()[:60]}-{letters()[:60]}==",
    )
    yield


async def test_a_handle_marked_by_aws_python_library_unwraps_to_the_real_one(
    server: LocalSqsServer,
    settings: dict[str, Any],
    sync_client: Any,
    bucket: str,
    handles_with_dashes: None,
) -> None:
    queue_url = make_queue(sync_client)
    body = text("handle", 1000)
    await send_all(settings, queue_url, S3Offload(bucket=bucket, always=True), [body])
    [pointer_body] = stored_pointers(queue_url)
    pointer = read_pointer(pointer_body)
    assert pointer is not None and "-" in pointer.key  # a UUID key

    [received] = await peer(server, bucket, [{"receive": queue_url, "count": 1, "delete": False}])

    [message] = received["messages"]
    assert message["body"] == body
    marked = message["receipt_handle"]
    real = original_receipt_handle(marked)
    assert real.startswith("AQEB-") and real.count("-") == 2
    assert marked == marked_receipt_handle(real, S3Pointer(bucket, pointer.key))
    assert marked.split("-")[-1] != real  # what the Python library's own delete sends
    assert original_receipt_handle(real) == real  # an unmarked handle is left as it is
    # SQS takes the unwrapped handle and only it.
    with pytest.raises(botocore.exceptions.ClientError):
        sync_client.delete_message(QueueUrl=queue_url, ReceiptHandle=marked)
    sync_client.change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=real, VisibilityTimeout=300
    )
    sync_client.delete_message(QueueUrl=queue_url, ReceiptHandle=real)
    assert queue_counts(sync_client, queue_url) == (0, 0)
