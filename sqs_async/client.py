"""The SQS client the engine talks to, and how it is opened and pointed at a queue.

`SqsClient` is the interface: anything with these async methods works, so tests can wrap the
real aiobotocore client to inject faults. `open_client` makes the real one, with botocore's
own retries off (tenacity owns retries) and a connection pool as large as the concurrency,
its hot calls on the lean wire path unless `wire="botocore"` (see `wire`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any, Protocol

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import NoRegionError

from .config import SQS_MAX_BYTES, ConnectionConfig
from .errors import SqsClientError, refusal
from .retry import RetryPolicy, Sleep, error_code, is_transient
from .validation import QueueTraits
from .wire import on_wire

log = logging.getLogger("sqs_async")


class SqsClient(Protocol):
    """The async SQS calls the sender uses (a subset of aiobotocore's SQS client)."""

    async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]: ...

    async def get_queue_url(self, **kwargs: Any) -> dict[str, Any]: ...

    async def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]: ...


class SqsReceiveClient(Protocol):
    """The async SQS calls the receiver uses."""

    async def receive_message(self, **kwargs: Any) -> dict[str, Any]: ...

    async def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]: ...

    async def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]: ...

    async def get_queue_url(self, **kwargs: Any) -> dict[str, Any]: ...

    async def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]: ...


async def client_for(
    config: ConnectionConfig,
    stack: AsyncExitStack,
    *,
    borrowed: Any,
    wrapper: Callable[[Any], Any] | None,
    pool_size: int,
) -> Any:
    """The client an engine part talks to: `borrowed` (never closed here) or one opened for
    `config` whose life ends with `stack`, on `config.wire`, then inside `wrapper`."""
    if borrowed is not None:
        client = on_wire(borrowed, config.wire)
    else:
        client = await open_client(config, stack, pool_size=pool_size)
    return client if wrapper is None else wrapper(client)


async def open_client(config: ConnectionConfig, stack: AsyncExitStack, *, pool_size: int) -> Any:
    """Create an aiobotocore SQS client whose life ends with `stack`."""
    aio_config = AioConfig(
        max_pool_connections=pool_size,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        retries={"total_max_attempts": 1, "mode": "standard"},
        # Entries are validated by the engine before any call (validation.py).
        parameter_validation=False,
    )
    session = get_session()
    try:
        client = await stack.enter_async_context(create_client(session, config, aio_config))
    except NoRegionError as exc:
        raise SqsClientError(
            "no AWS region was found: pass region_name (the command line's --region) or set "
            "AWS_DEFAULT_REGION",
            "NoRegionError",
        ) from exc
    except ValueError as exc:  # botocore's words for an endpoint URL it cannot use
        if config.endpoint_url is None or "endpoint" not in str(exc).lower():
            raise
        raise SqsClientError(
            f"invalid endpoint URL {config.endpoint_url!r}: give a whole URL, such as "
            "http://127.0.0.1:9324",
            "InvalidEndpoint",
        ) from exc
    return on_wire(client, config.wire)


def create_client(session: Any, config: ConnectionConfig, aio_config: AioConfig) -> Any:
    """aiobotocore's client context for `config`."""
    return session.create_client(
        "sqs",
        region_name=config.region_name,
        endpoint_url=config.endpoint_url,
        aws_access_key_id=config.aws_access_key_id,
        aws_secret_access_key=config.aws_secret_access_key,
        aws_session_token=config.aws_session_token,
        verify=config.verify,
        use_ssl=config.use_ssl,
        api_version=config.api_version,
        config=aio_config,
    )


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
    queue_limit = SQS_MAX_BYTES
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
