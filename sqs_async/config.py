"""Settings of senders and receivers: where to send or read, how to authenticate, how hard to
push.

One frozen, keyword-only, picklable value (the Beam adapter ships it to workers) that checks
itself on construction. Secrets are kept out of `repr`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Self

from . import defaults
from .checks import check_number, check_queue
from .retry import RetryPolicy
from .stages import PayloadStage

Route = Callable[[Any], str]


@dataclass(frozen=True, kw_only=True)
class ConnectionConfig:
    """How to reach SQS: shared by senders and receivers.

    `endpoint_url`, `region_name`, credentials (default: the standard AWS chain, which is the
    way to go on a cluster), `verify` (TLS verification, or a CA bundle path), `use_ssl`,
    `api_version`, `connect_timeout` and `read_timeout` (seconds, per request attempt).
    `wire`: "lean" sends the hot calls (the batch calls, `ReceiveMessage`) the lean way
    (`sqs_async.wire`: the same request, signed by botocore's signer, for a third of the
    CPU), "botocore" through aiobotocore's generic call path.
    """

    endpoint_url: str | None = None
    region_name: str | None = None
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    verify: bool | str | None = None
    use_ssl: bool = True
    api_version: str | None = None
    connect_timeout: float = defaults.CONNECT_TIMEOUT
    read_timeout: float = defaults.READ_TIMEOUT
    wire: str = "lean"

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout"):
            check_number(name, getattr(self, name), above=0)
        if self.wire not in ("lean", "botocore"):
            raise ValueError(f'wire must be "lean" or "botocore", got {self.wire!r}')

    @classmethod
    def merge(cls, config: Self | None, settings: dict[str, Any]) -> Self:
        """`config` with `settings` (fields) applied over it."""
        if config is None:
            return cls(**settings)
        return replace(config, **settings) if settings else config

    @property
    def request_timeout(self) -> float:
        """Longest a single request attempt may take before it counts as timed out."""
        return self.connect_timeout + self.read_timeout


@dataclass(frozen=True, kw_only=True)
class SenderConfig(ConnectionConfig):
    """Configuration of an `SqsSender` (and its connection: see `ConnectionConfig`).

    Destination: `queue_url`, or `queue_name` (resolved once when the sender opens, in the
    account `queue_owner_account_id` when the queue is shared from another account). Either
    may instead be a function of the record (or a `QueueField`) giving each record's queue URL
    or name: one sender then writes to many queues, each resolved once and cached, and a queue
    that does not exist fails only its own records.
    Records: `serializer` turns each record into a body (str) or an entry mapping (for
    example `json.dumps`); `message_group_id` (a str, or a function of the record) and
    `message_deduplication_id` (a function of the record, such as `stable_hash`) fill those
    fields where the entry has none. The caller's record is what comes back in results.
    Throughput: at most `max_in_flight` requests at once, which is also the size of the
    connection pool. Several senders (one per Beam worker thread, say) multiply it. With
    `adaptive_concurrency` (default) the sender halves its concurrency when SQS throttles or
    answers 5xx and grows it back one request per round when it stops.
    Limits: `max_message_bytes` (None: the queue's MaximumMessageSize when it can be read,
    else 1 MiB, and SQS decides), `max_request_bytes` (1 MiB, the SendMessageBatch limit).
    Retries: `retry` (a `RetryPolicy`); `max_trials` is a shortcut for `retry.max_trials`.
    FIFO queues: `fifo_requests_per_second` caps requests to a FIFO queue without high
    throughput mode (its quota is 300; None: no cap), so that adaptive concurrency does not
    keep running into the quota. `fifo_messages_per_group` (1-10): consecutive messages of one
    group a request may carry. 1 (default) keeps each group's order whatever fails; above 1 a
    group moves that many messages per round trip, and order holds unless SQS fails an entry on
    its own while accepting a later one of its group in the same request (counted in
    `SendResult.reordered`).
    Payload: `payload_stage` (a `PayloadStage`) may turn each entry into another before it is
    validated and sent (see `sqs_async.stages`).
    """

    queue_url: str | Route | None = None
    queue_name: str | Route | None = None
    queue_owner_account_id: str | None = None
    serializer: Callable[[Any], Any] | None = None
    message_group_id: str | Callable[[Any], str] | None = None
    message_deduplication_id: Callable[[Any], str] | None = None
    max_in_flight: int = defaults.MAX_IN_FLIGHT
    adaptive_concurrency: bool = True
    max_trials: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_message_bytes: int | None = None
    max_request_bytes: int = defaults.MAX_MESSAGE_BYTES
    fifo_requests_per_second: float | None = defaults.FIFO_REQUESTS_PER_SECOND
    fifo_messages_per_group: int = 1
    payload_stage: PayloadStage | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_queue(self.queue_url, self.queue_name, self.queue_owner_account_id, functions=True)
        for name in ("serializer", "message_deduplication_id"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ValueError(f"{name} must be a function of the record, got {value!r}")
        group_id = self.message_group_id
        if (
            group_id is not None
            and not callable(group_id)
            and (not isinstance(group_id, str) or not group_id)
        ):
            raise ValueError(f"message_group_id must be a str or a function, got {group_id!r}")
        check_stage(self.payload_stage)
        check_number(
            "fifo_messages_per_group",
            self.fifo_messages_per_group,
            low=1,
            high=defaults.MAX_BATCH_ENTRIES,
            integer=True,
        )
        if self.fifo_requests_per_second is not None:
            check_number("fifo_requests_per_second", self.fifo_requests_per_second, above=0)
        object.__setattr__(self, "retry", with_max_trials(self.retry, self.max_trials))
        check_number("max_in_flight", self.max_in_flight, low=1, integer=True)
        check_number("max_request_bytes", self.max_request_bytes, low=1, integer=True)
        if self.max_message_bytes is not None:
            check_number("max_message_bytes", self.max_message_bytes, low=1, integer=True)
            if self.max_message_bytes > self.max_request_bytes:
                raise ValueError(
                    f"max_message_bytes ({self.max_message_bytes}) cannot exceed "
                    f"max_request_bytes ({self.max_request_bytes})"
                )

    @property
    def route(self) -> Route | None:
        """The function giving each record's queue, when routing is dynamic."""
        queue = self.queue_url or self.queue_name
        return None if isinstance(queue, str) else queue

    @property
    def destination(self) -> str:
        """The queue as a person reads it: its URL or name, or how records are routed."""
        queue = self.queue_url or self.queue_name
        if isinstance(queue, str):
            return queue
        field_name = getattr(queue, "name", None)
        if isinstance(field_name, str):
            return f"the queue in each record's {field_name!r} field"
        return f"the queue given by {getattr(queue, '__qualname__', repr(queue))}"


@dataclass(frozen=True, kw_only=True)
class ReceiverConfig(ConnectionConfig):
    """Configuration of an `SqsReceiver` (and its connection: see `ConnectionConfig`).

    Source: `queue_url` or `queue_name` (in the account `queue_owner_account_id` when the
    queue is shared from another account). Polling: `wait_time_seconds` (long polling, 0-20;
    shorter near the end of a read: see `SqsReceiver`), `concurrent_receives` calls at once,
    each for up to 10 messages; `prefetch` messages may
    wait in the buffer. Holding: each message is received with `visibility_timeout` seconds
    and extended by as much while held; `max_hold` (seconds, None: no limit) stops extending a
    message held that long, so that a consumer that never acks gives it back to the queue.
    Attributes: `attribute_names` (system attributes) and `message_attribute_names`, "All" by
    default. Acks and releases are retried by `retry` (`max_trials` is a shortcut).
    Payload: `payload_stage` (a `PayloadStage`) may turn each received message into what the
    caller gets, and is told of each delete (see `sqs_async.stages`).
    """

    queue_url: str | None = None
    queue_name: str | None = None
    queue_owner_account_id: str | None = None
    wait_time_seconds: int = defaults.WAIT_SECONDS
    concurrent_receives: int = defaults.CONCURRENT_RECEIVES
    prefetch: int = defaults.PREFETCH
    visibility_timeout: int = defaults.VISIBILITY_SECONDS
    max_hold: float | None = None
    attribute_names: tuple[str, ...] = ("All",)
    message_attribute_names: tuple[str, ...] = ("All",)
    max_trials: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    payload_stage: PayloadStage | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_queue(self.queue_url, self.queue_name, self.queue_owner_account_id, functions=False)
        check_stage(self.payload_stage)
        object.__setattr__(self, "retry", with_max_trials(self.retry, self.max_trials))
        for name, low, high in (
            ("wait_time_seconds", 0, defaults.MAX_WAIT_SECONDS),
            ("concurrent_receives", 1, 100),
            ("prefetch", 1, 1_000_000),
            (
                "visibility_timeout",
                defaults.MIN_VISIBILITY_SECONDS,
                defaults.MAX_VISIBILITY_SECONDS,
            ),
        ):
            check_number(name, getattr(self, name), low=low, high=high, integer=True)
        if self.max_hold is not None:
            check_number("max_hold", self.max_hold, above=0)


def check_stage(stage: object) -> None:
    """A `PayloadStage` whose methods are coroutine functions (the engine awaits them)."""
    if stage is None:
        return
    if not isinstance(stage, PayloadStage):
        raise TypeError(
            f"payload_stage must be a sqs_async.PayloadStage, got {type(stage).__name__}"
        )
    for method in ("outgoing", "incoming", "deleted", "undelivered"):
        if not inspect.iscoroutinefunction(getattr(stage, method)):
            raise TypeError(f"payload_stage.{method} must be an async def method")


def with_max_trials(retry: RetryPolicy, max_trials: int | None) -> RetryPolicy:
    """`retry` with the `max_trials` shortcut applied (it wins over the policy's own)."""
    if max_trials is None or max_trials == retry.max_trials:
        return retry
    return replace(retry, max_trials=max_trials)  # RetryPolicy validates it
