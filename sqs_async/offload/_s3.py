"""The S3 calls of large-payload offload: one client per session, on the connection settings
of the engine that opened it, every call retried by the engine's `RetryPolicy` and throttled
as the sender is.

Every attempt is bounded in time: the connection's request timeout, plus a second per MB
moved (an upload waits on no read timeout, and a server that never answers an
`Expect: 100-continue` would hold it forever). Transfers share an adaptive limit
(`AdaptiveLimit`, as the dispatcher's requests do): at most
`concurrent_transfers` at once, halved when S3 throttles (`SlowDown`, 503) and grown back as
calls succeed. A call that fails for good raises the `SqsClientError` (or, transient,
`SqsUnavailableError`) that `errors.refusal` words for S3, naming the object and, for access
errors, the permission.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, TypeVar

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from ..config import ConnectionConfig
from ..errors import error_code, is_congestion, is_transient, refusal
from ..retry import RetryPolicy, Sleep
from ..send._concurrency import AdaptiveLimit
from ..wire import connection_settings
from ._pointer import S3Pointer

T = TypeVar("T")

# Slower than this, a transfer counts as stuck (its attempt times out and is retried).
SLOWEST_BYTES_PER_SECOND = 1_000_000


async def open_s3_client(
    connection: ConnectionConfig,
    stack: AsyncExitStack,
    *,
    endpoint_url: str | None,
    pool_size: int,
) -> Any:
    """An aiobotocore S3 client with `connection`'s region, credentials, TLS and timeouts,
    at `endpoint_url` (else the connection's), whose life ends with `stack`. A custom endpoint
    is addressed path-style (local servers and most S3-compatible stores need it)."""
    endpoint = endpoint_url or connection.endpoint_url
    aio_config = AioConfig(
        max_pool_connections=pool_size,
        connect_timeout=connection.connect_timeout,
        read_timeout=connection.read_timeout,
        retries={"total_max_attempts": 1, "mode": "standard"},
        s3={"addressing_style": "path"} if endpoint else None,
    )
    return await stack.enter_async_context(
        get_session().create_client(
            "s3", endpoint_url=endpoint, config=aio_config, **connection_settings(connection)
        )
    )


class S3Transfers:
    """Puts, gets and deletes of payload objects on one client."""

    def __init__(
        self,
        client: Any,
        *,
        retry: RetryPolicy,
        sleep: Sleep,
        concurrent_transfers: int,
        kms_key_id: str | None,
        request_timeout: float,
    ) -> None:
        self._client = client
        self._retry = retry
        self._request_timeout = request_timeout
        self._sleep = sleep
        self._kms_key_id = kms_key_id
        self.limit = AdaptiveLimit(concurrent_transfers)
        self._room = asyncio.Condition()

    async def put(self, pointer: S3Pointer, payload: bytes) -> None:
        extra: dict[str, Any] = {}
        if self._kms_key_id is not None:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self._kms_key_id}

        async def put() -> None:
            await self._client.put_object(
                Bucket=pointer.bucket, Key=pointer.key, Body=payload, **extra
            )

        await self._call(put, pointer, "store", len(payload))

    async def get(self, pointer: S3Pointer) -> bytes:
        async def get() -> bytes:
            response = await self._client.get_object(Bucket=pointer.bucket, Key=pointer.key)
            async with response["Body"] as body:
                data: bytes = await body.read()
            return data

        return await self._call(get, pointer, "fetch", None)

    async def delete(self, pointer: S3Pointer) -> None:
        async def delete() -> None:
            await self._client.delete_object(Bucket=pointer.bucket, Key=pointer.key)

        await self._call(delete, pointer, "delete", 0)

    async def _call(
        self, call: Callable[[], Awaitable[T]], pointer: S3Pointer, work: str, size: int | None
    ) -> T:
        """`call`, each attempt in a slot of the limit and bounded in time (`size`: bytes it
        moves, None when unknown: a download, bounded by its read timeout per read), retried
        while transient."""
        limit = None
        if size is not None:
            limit = self._request_timeout + size / SLOWEST_BYTES_PER_SECOND

        async def attempt() -> T:
            sent_at = await self._acquire()
            try:
                async with asyncio.timeout(limit):
                    outcome = await call()
            except Exception as exc:
                if is_congestion(exc):
                    self.limit.congested(sent_at)
                raise
            finally:
                await self._release()
            self.limit.succeeded()
            return outcome

        try:
            return await self._retry.retrying_call(sleep=self._sleep)(attempt)
        except Exception as exc:
            code = error_code(exc)
            raise refusal(
                exc, code, pointer.location, work=work, retryable=is_transient(exc), service="S3"
            ) from exc

    async def _acquire(self) -> float:
        async with self._room:
            await self._room.wait_for(self.limit.has_room)
            return self.limit.acquire()

    async def _release(self) -> None:
        async with self._room:
            self.limit.release()
            self._room.notify_all()
