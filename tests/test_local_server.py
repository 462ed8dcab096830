"""The local server (moto's, patched where moto is unlike SQS) as a product part."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sqs_async import testing
from sqs_async.testing import LocalServerError, LocalSqsServer

from .conftest import make_queue, queue_counts

# Runs Beam pipelines, subprocesses or the benchmark endpoint (`make test-quick` skips it).
pytestmark = pytest.mark.integration


def test_concurrent_receives_never_hand_out_one_message_twice(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    # moto checks that a message is visible, then marks it received, without a lock: two polls
    # at once could both get it. SQS never hands out a message twice within its visibility.
    for start in range(0, 600, 10):
        sync_client.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": str(start + i)} for i in range(10)],
        )
    seen: list[str] = []
    lock = threading.Lock()

    def poll() -> None:
        for _ in range(200):  # bounded; 600 messages need 60 full receives among 8 pollers
            reply = sync_client.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600
            )
            batch = [m["Body"] for m in reply.get("Messages", [])]
            if not batch:
                return
            with lock:
                seen.extend(batch)

    threads = [threading.Thread(target=poll) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert [body for body, n in Counter(seen).items() if n > 1] == []
    assert sorted(seen, key=int) == [str(i) for i in range(600)]


def test_an_unsupported_moto_is_refused_with_its_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testing, "MOTO_RANGE", ((4, 0), (4, 1)))
    with pytest.raises(RuntimeError, match=r"supports moto >=4\.0,<4\.1; found moto 5\."):
        testing._check_moto()


def test_local_command_names_the_extra_when_moto_is_missing() -> None:
    program = (
        "import sys\n"
        "for name in ('moto', 'moto.server'): sys.modules[name] = None\n"
        "from sqs_async.cli import main\n"
        "sys.exit(main(['local']))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 2
    assert "pip install 'sqs-async[local]'" in run.stderr


# What the patches for long queues (sqs_async.testing) touch, as a client sees it: deletes and
# visibility by receipt handle, the receive walk (visibility, delay, FIFO groups, redrive),
# the queue's attributes and counts, purge.


def receive(sync_client: Any, queue_url: str, **options: Any) -> list[dict[str, Any]]:
    options = {"MaxNumberOfMessages": 10, "WaitTimeSeconds": 0, **options}
    reply = sync_client.receive_message(
        QueueUrl=queue_url, MessageSystemAttributeNames=["All"], **options
    )
    return list(reply.get("Messages", []))


def send(sync_client: Any, queue_url: str, *bodies: str, **options: Any) -> None:
    for start in range(0, len(bodies), 10):
        sync_client.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "MessageBody": body, **options}
                for i, body in enumerate(bodies[start : start + 10])
            ],
        )


def error_code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return str(raised.value.response["Error"]["Code"])


def test_deletes_take_any_handle_the_message_had_and_refuse_unknown_ones(
    sync_client: Any, queue_url: str
) -> None:
    send(sync_client, queue_url, "a", "b")
    first = {m["Body"]: m for m in receive(sync_client, queue_url, VisibilityTimeout=0)}
    again = {m["Body"]: m for m in receive(sync_client, queue_url, VisibilityTimeout=600)}
    assert first["a"]["ReceiptHandle"] != again["a"]["ReceiptHandle"]
    assert again["a"]["Attributes"]["ApproximateReceiveCount"] == "2"
    reply = sync_client.delete_message_batch(
        QueueUrl=queue_url,
        Entries=[
            {"Id": "stale", "ReceiptHandle": first["a"]["ReceiptHandle"]},
            {"Id": "current", "ReceiptHandle": again["b"]["ReceiptHandle"]},
            {"Id": "unknown", "ReceiptHandle": "x" * 185},
        ],
    )
    assert sorted(entry["Id"] for entry in reply["Successful"]) == ["current", "stale"]
    assert [(f["Id"], f["Code"]) for f in reply["Failed"]] == [
        ("unknown", "ReceiptHandleIsInvalid")
    ]
    assert queue_counts(sync_client, queue_url) == (0, 0)
    # A deleted message's handles: deleting again is accepted, a visibility change is not.
    sync_client.delete_message(QueueUrl=queue_url, ReceiptHandle=again["a"]["ReceiptHandle"])
    code = error_code(
        sync_client.change_message_visibility,
        QueueUrl=queue_url,
        ReceiptHandle=again["a"]["ReceiptHandle"],
        VisibilityTimeout=0,
    )
    assert code == "ReceiptHandleIsInvalid"


def test_visibility_hides_a_message_until_it_lapses_or_is_changed(
    sync_client: Any, queue_url: str
) -> None:
    send(sync_client, queue_url, "a")
    [taken] = receive(sync_client, queue_url, VisibilityTimeout=600)
    assert queue_counts(sync_client, queue_url) == (0, 1)
    assert receive(sync_client, queue_url) == []
    sync_client.change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=taken["ReceiptHandle"], VisibilityTimeout=1
    )
    # Back after a second: a long poll waits for it.
    [back] = receive(sync_client, queue_url, VisibilityTimeout=600, WaitTimeSeconds=5)
    assert back["Attributes"]["ApproximateReceiveCount"] == "2"
    sync_client.change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=back["ReceiptHandle"], VisibilityTimeout=0
    )
    assert queue_counts(sync_client, queue_url) == (1, 0)
    [third] = receive(sync_client, queue_url, VisibilityTimeout=600)
    sync_client.delete_message(QueueUrl=queue_url, ReceiptHandle=third["ReceiptHandle"])
    assert queue_counts(sync_client, queue_url) == (0, 0)


def test_a_delayed_message_is_counted_and_received_once_its_delay_is_over(
    sync_client: Any, queue_url: str
) -> None:
    send(sync_client, queue_url, "now")
    send(sync_client, queue_url, "later", DelaySeconds=1)
    delayed = sync_client.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert delayed == {"ApproximateNumberOfMessagesDelayed": "1"}
    assert [m["Body"] for m in receive(sync_client, queue_url, VisibilityTimeout=600)] == ["now"]
    assert [m["Body"] for m in drain_waiting(sync_client, queue_url)] == ["later"]


def drain_waiting(sync_client: Any, queue_url: str) -> list[dict[str, Any]]:
    """Long-poll once (up to 5 s), then delete what came."""
    messages = receive(sync_client, queue_url, VisibilityTimeout=600, WaitTimeSeconds=5)
    for message in messages:
        sync_client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def test_message_attributes_come_back_whole_however_often_and_however_filtered(
    sync_client: Any, queue_url: str
) -> None:
    attributes = {
        "bin": {"DataType": "Binary", "BinaryValue": b"\x00\x01hello"},
        "s": {"DataType": "String", "StringValue": "v"},
    }
    sync_client.send_message(QueueUrl=queue_url, MessageBody="x", MessageAttributes=attributes)
    for names in (["All"], ["s"], ["All"], ["bin"], ["All"]):
        [message] = receive(
            sync_client, queue_url, VisibilityTimeout=0, MessageAttributeNames=names
        )
        expected = attributes if names == ["All"] else {names[0]: attributes[names[0]]}
        assert message["MessageAttributes"] == expected


def test_fifo_groups_go_in_order_one_batch_in_flight_per_group_and_duplicates_are_dropped(
    sync_client: Any,
) -> None:
    fifo = make_queue(sync_client, FifoQueue="true")
    entries = [("a", "a1"), ("b", "b1"), ("a", "a2"), ("b", "b2"), ("a", "a3")]
    for group, body in [*entries, ("a", "a1")]:  # a1 again, with its deduplication id
        sync_client.send_message(
            QueueUrl=fifo, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=body
        )
    assert queue_counts(sync_client, fifo) == (5, 0)

    def one() -> list[str]:
        return [m["Body"] for m in receive(sync_client, fifo, MaxNumberOfMessages=1)]

    [a1] = receive(sync_client, fifo, MaxNumberOfMessages=1, VisibilityTimeout=600)
    assert a1["Body"] == "a1"
    assert one() == ["b1"]  # group a has a message in flight
    assert one() == []  # so have both groups now
    sync_client.delete_message(QueueUrl=fifo, ReceiptHandle=a1["ReceiptHandle"])
    assert one() == ["a2"]


def test_fifo_batches_keep_each_group_in_order(sync_client: Any) -> None:
    fifo = make_queue(sync_client, FifoQueue="true", ContentBasedDeduplication="true")
    bodies = [f"{group}{i}" for i in range(12) for group in "xyz"]
    for body in bodies:
        sync_client.send_message(QueueUrl=fifo, MessageBody=body, MessageGroupId=body[0])
    received: list[str] = []
    for _ in range(20):  # bounded: 36 messages come in batches of up to 10
        batch = receive(sync_client, fifo, VisibilityTimeout=600)
        if not batch:
            break
        received += [m["Body"] for m in batch]
        for message in batch:
            sync_client.delete_message(QueueUrl=fifo, ReceiptHandle=message["ReceiptHandle"])
    for group in "xyz":
        assert [b for b in received if b[0] == group] == [f"{group}{i}" for i in range(12)]
    assert sorted(received) == sorted(bodies)


def test_redrive_moves_a_message_to_the_dead_letter_queue_at_max_receive_count(
    sync_client: Any,
) -> None:
    dead = make_queue(sync_client)
    dead_arn = sync_client.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": 2})
    source = make_queue(sync_client, RedrivePolicy=policy)
    send(sync_client, source, "poison", "fine", "kept")
    assert receive(sync_client, dead) == []
    for _ in range(2):
        last = {m["Body"]: m for m in receive(sync_client, source, VisibilityTimeout=0)}
    # A third receive moves them all; none is handed out.
    assert receive(sync_client, source, VisibilityTimeout=600) == []
    assert queue_counts(sync_client, source) == (0, 0)
    assert queue_counts(sync_client, dead) == (3, 0)
    # The source's handles no longer reach them there; in the dead-letter queue, moto takes
    # the handles they had (SQS might not), and the patches keep moto's answers.
    code = error_code(
        sync_client.delete_message, QueueUrl=source, ReceiptHandle=last["kept"]["ReceiptHandle"]
    )
    assert code == "ReceiptHandleIsInvalid"
    sync_client.delete_message(QueueUrl=dead, ReceiptHandle=last["kept"]["ReceiptHandle"])
    moved = receive(sync_client, dead, VisibilityTimeout=600)
    assert sorted(m["Body"] for m in moved) == ["fine", "poison"]
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in moved} == {"3"}
    for message in moved:
        sync_client.delete_message(QueueUrl=dead, ReceiptHandle=message["ReceiptHandle"])
    assert queue_counts(sync_client, dead) == (0, 0)
    attributes = sync_client.get_queue_attributes(QueueUrl=source, AttributeNames=["All"])
    assert json.loads(attributes["Attributes"]["RedrivePolicy"]) == json.loads(policy)


def test_counts_attributes_and_purge(sync_client: Any, queue_url: str) -> None:
    send(sync_client, queue_url, *[str(i) for i in range(25)])
    send(sync_client, queue_url, "delayed", DelaySeconds=60)
    taken = receive(sync_client, queue_url, VisibilityTimeout=600)
    assert len(taken) == 10
    attributes = sync_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    assert {name: attributes[name] for name in attributes if "Approximate" in name} == {
        "ApproximateNumberOfMessages": "15",
        "ApproximateNumberOfMessagesNotVisible": "10",
        "ApproximateNumberOfMessagesDelayed": "1",
    }
    assert attributes["VisibilityTimeout"] == "30"
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert "FifoQueue" not in attributes and "RedrivePolicy" not in attributes
    sync_client.purge_queue(QueueUrl=queue_url)
    assert queue_counts(sync_client, queue_url) == (0, 0)
    code = error_code(
        sync_client.delete_message, QueueUrl=queue_url, ReceiptHandle=taken[0]["ReceiptHandle"]
    )
    assert code == "ReceiptHandleIsInvalid"  # purged, as moto answered before the patches
    send(sync_client, queue_url, "after")
    assert [m["Body"] for m in drain_waiting(sync_client, queue_url)] == ["after"]


def test_concurrent_receives_and_deletes_read_each_message_once(
    sync_client: Any, queue_url: str
) -> None:
    send(sync_client, queue_url, *[str(i) for i in range(500)])
    seen: list[str] = []
    lock = threading.Lock()

    def read() -> None:
        for _ in range(100):  # bounded; 500 messages need 50 full receives among 4 readers
            batch = receive(sync_client, queue_url, VisibilityTimeout=600)
            if not batch:
                return
            reply = sync_client.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
            assert not reply.get("Failed")
            with lock:
                seen.extend(m["Body"] for m in batch)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(seen, key=int) == [str(i) for i in range(500)]
    assert queue_counts(sync_client, queue_url) == (0, 0)


@pytest.mark.timeout(60)
def test_a_port_in_use_fails_at_once(server: LocalSqsServer) -> None:
    port = int(server.endpoint_url.rsplit(":", 1)[1])
    with pytest.raises(
        LocalServerError, match=rf"^cannot listen on 127\.0\.0\.1:{port}: address already in use$"
    ):
        LocalSqsServer(port=port).start()


def test_a_stopped_server_starts_again_on_its_port_with_its_queues() -> None:
    local = LocalSqsServer()
    with local:
        url = local.endpoint_url
        client = boto3.client("sqs", **local.client_settings)
        queue = client.create_queue(QueueName="restarted")["QueueUrl"]
    with local:
        assert local.endpoint_url == url
        client = boto3.client("sqs", **local.client_settings)
        assert client.get_queue_url(QueueName="restarted")["QueueUrl"] == queue
        client.delete_queue(QueueUrl=queue)


def test_aiohttp_in_dev_mode_accepts_the_servers_answers() -> None:
    # `python -X dev` makes aiohttp's parser strict: two Server headers (moto's and
    # werkzeug's) failed every call with "Duplicate 'Server' header found".
    program = (
        "import asyncio\n"
        "from aiobotocore.session import get_session\n"
        "from sqs_async.testing import LocalSqsServer\n"
        "async def main(url):\n"
        "    async with get_session().create_client('sqs', endpoint_url=url,\n"
        "            region_name='us-east-1', aws_access_key_id='testing',\n"
        "            aws_secret_access_key='testing') as sqs:\n"
        "        queue = (await sqs.create_queue(QueueName='dev'))['QueueUrl']\n"
        "        await sqs.send_message(QueueUrl=queue, MessageBody='hello')\n"
        "        reply = await sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)\n"
        "        print(reply['Messages'][0]['Body'])\n"
        "with LocalSqsServer() as server:\n"
        "    asyncio.run(main(server.endpoint_url))\n"
    )
    run = subprocess.run(
        [sys.executable, "-X", "dev", "-c", program], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "hello"
