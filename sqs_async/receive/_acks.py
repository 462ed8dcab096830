"""Batch calls on receipt handles: delete (ack), release (visibility 0) and extend (visibility
`visibility_timeout`), `MAX_BATCH_ENTRIES` messages per call, retried with the `RetryPolicy`.

This is the one place where the receive side bounds its batch calls: at most `max_calls` run
at once, deletes, releases and the keeper's extensions together, however many messages one
`ack` is given. The receiver gives it `concurrent_receives + defaults.SPARE_CONNECTIONS` (a
poll's ten messages are acked by one call of ten, and the spare ones) and a connection for
each, beside its polls': as on the send side, never more calls than connections. A call holds
its slot through its retries (its backoffs included), as a connection would be held by a
slower answer.

Per call, the entries that failed transiently (`SenderFault=false`) are tried again, the
whole call if it failed transiently, `retry.max_trials` attempts in all (tenacity's
`retrying_entries`); what is left fails with its last error. A whole call that the queue
refuses for good (it does not exist, access denied) fails its entries and is reported as
`AckResult.refused`. Holding (which messages the keeper extends) is not kept here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from tenacity import RetryCallState

from ..defaults import MAX_BATCH_ENTRIES, SPARE_CONNECTIONS
from ..errors import Kind, classify, error_code, refusal
from ..retry import RetryPolicy, Sleep
from ..wire import WIRE_IDS, EntryError, SqsReceiveClient, read_answer
from ._messages import AckResult, ReceivedMessage
from ._throttling import ThrottleClock, ThrottledTime

BatchCall = Callable[[list[ReceivedMessage]], Awaitable[AckResult]]


class ReceiptCalls:
    """The batch calls on receipt handles of one receiver, on its client (given at `bind`)."""

    def __init__(
        self,
        *,
        retry: RetryPolicy,
        visibility_timeout: int,
        throttled_time: ThrottledTime,
        sleep: Sleep,
        max_calls: int = SPARE_CONNECTIONS,
    ) -> None:
        self._retry = retry
        self._visibility_timeout = visibility_timeout
        self._throttled_time = throttled_time
        self._sleep = sleep
        self.max_calls = max_calls
        self._client: Any = None
        self._queue_url = ""
        self._slots = asyncio.Semaphore(max_calls)

    def bind(self, client: SqsReceiveClient, queue_url: str) -> None:
        """Make the calls on `client`, to `queue_url` (when the receiver opens)."""
        self._client, self._queue_url = client, queue_url
        self._slots = asyncio.Semaphore(self.max_calls)  # on the loop the receiver opens on

    async def delete(self, messages: Iterable[ReceivedMessage]) -> AckResult:
        return await self.in_tens(messages, self.delete_ten)

    async def release(self, messages: Iterable[ReceivedMessage]) -> AckResult:
        return await self.in_tens(messages, self.release_ten)

    async def extend(self, messages: Iterable[ReceivedMessage]) -> AckResult:
        return await self.in_tens(messages, self.extend_ten)

    async def in_tens(self, messages: Iterable[ReceivedMessage], call: BatchCall) -> AckResult:
        """`call` on each `MAX_BATCH_ENTRIES` of `messages`, at most `max_calls` at once."""
        batch = list(messages)

        async def bounded(ten: list[ReceivedMessage]) -> AckResult:
            async with self._slots:
                return await call(ten)

        parts = await asyncio.gather(
            *(
                bounded(batch[i : i + MAX_BATCH_ENTRIES])
                for i in range(0, len(batch), MAX_BATCH_ENTRIES)
            )
        )
        result = AckResult()
        for part in parts:
            result.done += part.done
            result.failed += part.failed
            result.refused = result.refused or part.refused
        return result

    async def delete_ten(self, messages: list[ReceivedMessage]) -> AckResult:
        return await self._call(messages, "delete_message_batch", {})

    async def release_ten(self, messages: list[ReceivedMessage]) -> AckResult:
        return await self._call(
            messages, "change_message_visibility_batch", {"VisibilityTimeout": 0}
        )

    async def extend_ten(self, messages: list[ReceivedMessage]) -> AckResult:
        return await self._call(
            messages,
            "change_message_visibility_batch",
            {"VisibilityTimeout": self._visibility_timeout},
        )

    async def _call(
        self, messages: list[ReceivedMessage], operation: str, extra: dict[str, Any]
    ) -> AckResult:
        """One batch call on receipt handles; the entries (or the whole call) that failed
        transiently are retried, `retry.max_trials` attempts in all."""
        result = AckResult()
        pending = list(messages)
        throttle = ThrottleClock(self._throttled_time, self._sleep)

        async def attempt() -> list[ReceivedMessage]:
            nonlocal pending
            entries = [
                {"Id": wire_id, "ReceiptHandle": m.receipt_handle, **extra}
                for wire_id, m in zip(WIRE_IDS, pending, strict=False)
            ]
            try:
                response = await getattr(self._client, operation)(
                    QueueUrl=self._queue_url, Entries=entries
                )
            except Exception as exc:
                throttle.saw(exc)
                raise
            retry = []
            for message, answer in zip(pending, read_answer(response, len(pending)), strict=True):
                if not isinstance(answer, EntryError):
                    result.done.append(message)
                elif answer.sender_fault:
                    result.failed.append((message, answer.code, answer.reason))
                else:
                    last_error[message.receipt_handle] = (answer.code, answer.reason)
                    throttle.saw_entry(answer.code)
                    retry.append(message)
            pending = retry
            return retry

        def give_up(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            for message in pending:
                code, reason = (
                    (error_code(error), str(error))
                    if error is not None
                    else last_error[message.receipt_handle]
                )
                result.failed.append((message, code, reason))

        last_error: dict[str, tuple[str, str]] = {}
        retrying = self._retry.retrying_entries(sleep=throttle.sleep, on_give_up=give_up)
        try:
            await retrying(attempt)
        except Exception as exc:  # not transient: every entry still pending failed
            code = error_code(exc)
            result.failed += [(m, code, str(exc)) for m in pending]
            if classify(exc) is Kind.FATAL:
                result.refused = refusal(exc, code, self._queue_url, work="receive")
        return result
