"""AWS's Python extended client (`amazon-sqs-extended-client`) as the peer of the interop tests
(`test_offload_interop`), in a process of its own: importing it replaces `boto3.Session`
process-wide, so the test process never does.

    python tests/extended_client_peer.py < request.json > answer.json

The request (UTF-8 JSON on stdin) names the server and the bucket, and lists steps, run in
order with one client::

    {"endpoint_url": URL, "region_name": R, "aws_access_key_id": K, "aws_secret_access_key": S,
     "bucket": BUCKET,
     "steps": [
       {"send": QUEUE_URL, "body": TEXT, "attributes": {NAME: {"DataType": ..., ...}},
        "always_through_s3": false},
       {"receive": QUEUE_URL, "count": N, "message_attribute_names": ["All"],
        "use_legacy_attribute": false, "delete": true, "delete_payload_from_s3": true}
     ]}

The answer (UTF-8 JSON on stdout) has one result per step: `{"message_id": ...}` for a send;
for a receive `{"messages": [{"body", "attributes", "receipt_handle", "delete_error"}]}`, the
receipt handle as the library hands it out (marked with the payload's place) and the error
code of the library's own delete, if it failed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import botocore.exceptions
from botocore.config import Config
from sqs_extended_client.client import SQSExtendedClientSession

# Polls of up to 1 s each: a receive step that gets fewer messages fails, it never hangs.
MAX_POLLS = 60


def main() -> None:
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    session = SQSExtendedClientSession(  # type: ignore[no-untyped-call]
        aws_access_key_id=request["aws_access_key_id"],
        aws_secret_access_key=request["aws_secret_access_key"],
        region_name=request["region_name"],
    )
    endpoint = request["endpoint_url"]
    client: Any = session.client("sqs", endpoint_url=endpoint)
    client.large_payload_support = request["bucket"]
    # The library makes its S3 client with the session's defaults (AWS's endpoint): point it
    # at the local server, which serves S3 path-style on the same port.
    client.s3_client = session.client(
        "s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"})
    )
    results = [run(client, step) for step in request["steps"]]
    sys.stdout.buffer.write(json.dumps({"results": results}, ensure_ascii=False).encode("utf-8"))


def run(client: Any, step: dict[str, Any]) -> dict[str, Any]:
    if "send" in step:
        client.always_through_s3 = bool(step.get("always_through_s3", False))
        response = client.send_message(
            QueueUrl=step["send"],
            MessageBody=step["body"],
            MessageAttributes=dict(step.get("attributes") or {}),
        )
        return {"message_id": response["MessageId"]}
    return receive(client, step)


def receive(client: Any, step: dict[str, Any]) -> dict[str, Any]:
    client.use_legacy_attribute = bool(step.get("use_legacy_attribute", False))
    client.delete_payload_from_s3 = bool(step.get("delete_payload_from_s3", False))
    queue_url, count = step["receive"], int(step["count"])
    messages: list[dict[str, Any]] = []
    for _ in range(MAX_POLLS):
        if len(messages) >= count:
            break
        response = client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, count - len(messages)),
            WaitTimeSeconds=1,
            VisibilityTimeout=120,
            MessageAttributeNames=list(step.get("message_attribute_names", ["All"])),
        )
        for message in response.get("Messages", []):
            messages.append(
                {
                    "body": message["Body"],
                    "attributes": message.get("MessageAttributes", {}),
                    "receipt_handle": message["ReceiptHandle"],
                    "delete_error": delete(client, queue_url, message) if step["delete"] else None,
                }
            )
    return {"messages": messages}


def delete(client: Any, queue_url: str, message: dict[str, Any]) -> str | None:
    """The library's delete of `message` (and of its payload, when so configured); the error
    code if SQS or S3 refused it."""
    try:
        client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    except botocore.exceptions.ClientError as exc:
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return None


if __name__ == "__main__":
    main()
