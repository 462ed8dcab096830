"""What became of each message: `Delivered` or `Failed`, and the `SendResult` that holds them
with the counters of the requests made.

A counter is declared once, as a `SendResult` field with `metadata=counter(...)`: the name of
the Beam metric it is reported as and what it counts. `SendResult.absorb`, the Beam sink's
metrics and the CLI's summary read the declarations (`COUNTERS`), so a new counter costs its
field here and the line in the engine that counts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class Delivered:
    """A message SQS accepted.

    `record` is the caller's input, untouched; `index` is its position in the input.
    """

    record: Any
    index: int
    message_id: str
    attempts: int
    sequence_number: str | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """A message that was not delivered, and why.

    `attempts` is 0 when the message was rejected by validation, before any request.
    `sender_fault` is True when the message itself is at fault: sending it again unchanged
    will fail again.
    """

    record: Any
    index: int
    code: str
    message: str
    sender_fault: bool
    attempts: int


@dataclass(frozen=True, slots=True)
class Counter:
    """How a `SendResult` counter is added up and reported.

    `name`: the `SendResult` field. `metric`: the Beam metric (namespace `sqs_async`) it is
    reported as. `scale`: metric units per unit of the field (1000 reports seconds as
    milliseconds; the Beam counters are integers and fractions are carried over).
    `distribution`: the field is a list of values, concatenated by `absorb` and reported as a
    Beam distribution, one update per value; otherwise it is a number, summed.
    """

    name: str
    metric: str
    description: str
    scale: int = 1
    distribution: bool = False


_COUNTER = "sqs_async.counter"


def counter(
    metric: str, description: str, *, scale: int = 1, distribution: bool = False
) -> dict[str, Any]:
    """The `metadata` of a `SendResult` field that declares it a counter (see `Counter`)."""
    return {
        _COUNTER: {
            "metric": metric,
            "description": description,
            "scale": scale,
            "distribution": distribution,
        }
    }


@dataclass(slots=True)
class SendResult:
    """The outcome of one `SqsSender.send`: every input message is in exactly one list,
    `delivered` or `failed`, and the counters of the requests made.

    `delivered_count` counts the delivered messages even when `send(keep_delivered=False)`
    leaves `delivered` empty to keep memory flat. The other counters are described where
    they are declared, below (and listed in `COUNTERS`); `counters()` gives their values.
    Every field but `delivered` and `failed` is a counter: a new one is declared with
    `metadata=counter(...)`, and `absorb`, the Beam sink and the CLI's summary pick it up.
    """

    delivered: list[Delivered] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    delivered_count: int = field(
        default=0,
        metadata=counter(
            "messages_sent", "messages SQS accepted (counted even when `delivered` is not kept)"
        ),
    )
    requests: int = field(
        default=0, metadata=counter("batches", "SendMessageBatch calls, retries included")
    )
    retried: int = field(
        default=0,
        metadata=counter("messages_retried", "entries sent again after a transient failure"),
    )
    throttled: int = field(
        default=0, metadata=counter("throttled", "throttling errors, per request or entry")
    )
    bytes_delivered: int = field(
        default=0, metadata=counter("bytes_sent", "message bytes delivered, as SQS counts them")
    )
    latencies: list[float] = field(
        default_factory=list,
        metadata=counter("batch_latency_ms", "seconds per request", scale=1000, distribution=True),
    )
    throttled_seconds: float = field(
        default=0.0,
        metadata=counter(
            "throttled_ms",
            "time the sender ran below `max_in_flight` because SQS throttled or failed with 5xx",
            scale=1000,
        ),
    )
    possible_duplicates: int = field(
        default=0,
        metadata=counter(
            "possible_duplicates",
            "entries sent again after a timeout or a dropped connection, when SQS may already "
            "have accepted them: on a standard queue each may be delivered twice",
        ),
    )
    reordered: int = field(
        default=0,
        metadata=counter(
            "reordered",
            "entries SQS failed on their own while it accepted a later entry of their FIFO "
            "group in the same request (only with `fifo_messages_per_group` above 1): those "
            "groups are out of order in the queue",
        ),
    )

    @property
    def total(self) -> int:
        return self.delivered_count + len(self.failed)

    def absorb(self, part: SendResult, *, keep_delivered: bool = True) -> None:
        """Add the result of one batch: its failures, its delivered messages (if
        `keep_delivered`) and every counter."""
        if keep_delivered:
            self.delivered.extend(part.delivered)
        self.failed.extend(part.failed)
        for name in _SUMMED:
            value = getattr(part, name)
            if value:  # most counters of a part are 0
                setattr(self, name, getattr(self, name) + value)
        for name in _CONCATENATED:
            getattr(self, name).extend(getattr(part, name))

    def counters(self) -> dict[str, int | float]:
        """The summed counters (distributions left out), field name -> value, in declaration
        order."""
        return {c.name: getattr(self, c.name) for c in COUNTERS if not c.distribution}


# Every counter of `SendResult`, in declaration order.
COUNTERS: tuple[Counter, ...] = tuple(
    Counter(f.name, **f.metadata[_COUNTER]) for f in fields(SendResult) if _COUNTER in f.metadata
)
_SUMMED = tuple(c.name for c in COUNTERS if not c.distribution)
_CONCATENATED = tuple(c.name for c in COUNTERS if c.distribution)
