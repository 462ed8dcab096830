"""Queue look-ups: a queue's URL from its name, and what the queue allows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .. import defaults
from ..errors import SqsClientError, error_code, is_transient, refusal
from ..retry import RetryPolicy, Sleep
from ._client import SqsClient, SqsReceiveClient

log = logging.getLogger("sqs_async")


@dataclass(frozen=True, slots=True)
class QueueTraits:
    """What the engine needs to know about the destination queue.

    `high_throughput`: a FIFO queue whose throughput limit is per message group
    (`FifoThroughputLimit=perMessageGroupId`), so the 300 requests/s queue quota does not apply.
    """

    max_message_bytes: int
    fifo: bool = False
    content_based_deduplication: bool = False
    high_throughput: bool = False


async def resolve_queue_url(
    client: SqsClient | SqsReceiveClient,
    name: str,
    retry: RetryPolicy,
    sleep: Sleep,
    *,
    owner_account_id: str | None = None,
    work: str = "send",
) -> str:
    """Look the queue URL up by name (in `owner_account_id`'s account when given: a queue
    shared from another account), with the same retries as a send. `work` ("send" or
    "receive") is what the queue is for: an access error names its permissions.

    Raises `SqsClientError` (the queue does not exist, access denied, an answer without a
    URL) or `SqsUnavailableError` (transient trouble outlasted the retries).
    """
    retrying = retry.retrying_call(sleep=sleep)
    request = {"QueueName": name}
    if owner_account_id is not None:
        request["QueueOwnerAWSAccountId"] = owner_account_id
    queue = f"queue {name!r}" + (f" of account {owner_account_id}" if owner_account_id else "")

    async def look_up() -> dict[str, Any]:
        return await client.get_queue_url(**request)

    try:
        response: dict[str, Any] = await retrying(look_up)
    except Exception as exc:
        raise refusal(exc, error_code(exc), queue, work=work, retryable=is_transient(exc)) from exc
    url = response.get("QueueUrl") if isinstance(response, dict) else None
    if not isinstance(url, str) or not url:
        raise SqsClientError(
            f"GetQueueUrl for {queue} answered without a QueueUrl: {response!r} "
            "(check the endpoint: it may not be an SQS endpoint)",
            "MissingQueueUrl",
        )
    return url


async def read_queue_traits(
    client: SqsClient, queue_url: str, max_message_bytes: int | None, max_request_bytes: int
) -> QueueTraits:
    """What the queue allows; falls back to documented defaults when it cannot be read.

    Reading attributes needs `sqs:GetQueueAttributes`, which a send-only role may lack, and
    the endpoint may be briefly down: neither should stop a sender from opening, so sending
    decides instead.
    """
    fifo = queue_url.endswith(".fifo")
    content_based = high_throughput = False
    queue_limit = defaults.MAX_MESSAGE_BYTES
    try:
        response = await client.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=[
                "MaximumMessageSize",
                "FifoQueue",
                "ContentBasedDeduplication",
                "FifoThroughputLimit",
            ],
        )
        attributes = response.get("Attributes", {})
        queue_limit = int(attributes.get("MaximumMessageSize", queue_limit))
        fifo = attributes.get("FifoQueue", str(fifo)).lower() == "true"
        content_based = attributes.get("ContentBasedDeduplication", "false").lower() == "true"
        high_throughput = attributes.get("FifoThroughputLimit") == "perMessageGroupId"
    except Exception as exc:  # any failure means: use the defaults
        log.info(
            "could not read attributes of %s (%s); assuming a %d-byte message limit",
            queue_url,
            type(exc).__name__,
            queue_limit,
        )
    limit = max_message_bytes if max_message_bytes is not None else queue_limit
    return QueueTraits(
        max_message_bytes=min(limit, max_request_bytes),
        fifo=fifo,
        content_based_deduplication=content_based,
        high_throughput=high_throughput,
    )
