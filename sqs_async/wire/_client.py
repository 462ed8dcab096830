"""The SQS client the engine talks to, and how it is opened.

`SqsClient` is the interface: anything with these async methods works, so tests can wrap the
real aiobotocore client to inject faults. `open_client` makes the real one, with botocore's
own retries off (tenacity owns retries) and a connection pool as large as the concurrency,
its hot calls on the lean wire path unless `wire="botocore"` (see `_lean`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any, Protocol

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import NoRegionError

from ..config import ConnectionConfig
from ..errors import SqsClientError
from ._lean import on_wire

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
        # Entries are validated by the engine before any call (send/_validation.py).
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
        endpoint_url=config.endpoint_url,
        api_version=config.api_version,
        config=aio_config,
        **connection_settings(config),
    )


def connection_settings(config: ConnectionConfig) -> dict[str, Any]:
    """`create_client` keywords any AWS client of the engine takes from `config` (the SQS
    client, and S3's for large payloads): region, credentials, TLS."""
    return {
        "region_name": config.region_name,
        "aws_access_key_id": config.aws_access_key_id,
        "aws_secret_access_key": config.aws_secret_access_key,
        "aws_session_token": config.aws_session_token,
        "verify": config.verify,
        "use_ssl": config.use_ssl,
    }
