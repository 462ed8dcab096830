"""`WriteToSqs`: the Beam sink. A thin adapter: the engine does validation, batching,
concurrency and retries; this module maps Beam's DoFn lifecycle onto it and routes what could
not be delivered to a tagged output.

Cost model: each DoFn instance opens one `SqsSender` (one aiobotocore client with
`max_in_flight` connections) in `setup` and reuses it for every bundle. It buffers up to
`buffer_size` messages, then sends them as concurrent 10-message requests, and sends the rest
in `finish_bundle`. Concurrency multiplies: a worker running T threads with this transform can
have T x `max_in_flight` requests in flight; size `max_in_flight` against that and the queue's
quotas. One client per DoFn instance, not one per process: instances never wait on each
other's requests or share a connection pool's limit, and nothing needs reference counting
across threads (Beam does not promise `teardown`). The buffer defaults to
max(1000, 100 x `max_in_flight`) messages: a flush waits for its slowest request, and 100
messages (ten full requests) per slot keep that tail short.

Metrics (namespace `sqs_async`) are updated once per flush: one counter per `SendResult`
counter, under the metric name it declares (`sqs_async.results.COUNTERS`), and
`messages_failed` and `failed_<code>`.
"""

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import apache_beam as beam
from apache_beam.io.components.adaptive_throttler import ThrottlingSignaler
from apache_beam.metrics.metric import Metrics
from apache_beam.pvalue import PCollection, TaggedOutput
from apache_beam.transforms.display import DisplayDataItem
from apache_beam.utils.windowed_value import WindowedValue

from sqs_async import Delivered, Failed, SenderConfig, SendResult, SqsSender, defaults
from sqs_async.checks import check_number
from sqs_async.results import COUNTERS
from sqs_async.wire import SqsClient

from . import runtime
from .options import SqsOptions

log = logging.getLogger("beam_adapter")

METRICS_NAMESPACE = "sqs_async"
SQS_PYIO_NAMESPACE = "_SqsWriteFn"
# The counter of time spent throttled that the Java SDK names (Metrics.THROTTLE_TIME_NAMESPACE
# and THROTTLE_TIME_COUNTER_NAME) and Dataflow's workers add up for autoscaling.
THROTTLING_NAMESPACE = "beam-throttling-metrics"
THROTTLING_MSECS = "throttling-msecs"
# The default buffer, in messages: at least MIN_BUFFER_SIZE, and BUFFERED_MESSAGES_PER_SLOT
# (ten full requests) per `max_in_flight` slot. A flush waits for its slowest request: ten
# requests per slot keep that tail small.
MIN_BUFFER_SIZE = 1000
BUFFERED_MESSAGES_PER_SLOT = 100


def records_of(element: Any) -> list[Any]:
    """The messages in an element: a list, a `(key, list)` pair, or one message (a schema'd
    row, which Beam hands over as a NamedTuple, is one message)."""
    if hasattr(element, "_fields"):
        return [element]
    if isinstance(element, tuple) and len(element) == 2 and isinstance(element[1], list | tuple):
        return list(element[1])
    if isinstance(element, list | tuple):
        return list(element)
    return [element]


ErrorShape = Literal["tuple", "key"]


def failed_record(failed: Failed, append_error: bool, error_shape: ErrorShape) -> Any:
    """The record as the failed output carries it.

    Without `append_error`, the record itself. With it, the record and its own error
    `{"Id", "SenderFault", "Code", "Message"}` (`Id`: the record's `Id` field, if any): as a
    tuple `(record, error)` (`error_shape="tuple"`, what sqs_pyio 0.1.0 yields), or as a copy
    of the record with the error under an `error` key (`"key"`; a record that is not a
    mapping becomes `{"MessageBody": record}` first).
    """
    record = failed.record
    if not append_error:
        return record
    error = {
        "Id": record.get("Id") if isinstance(record, Mapping) else None,
        "SenderFault": failed.sender_fault,
        "Code": failed.code,
        "Message": failed.message,
    }
    if error_shape == "tuple":
        return (record, error)
    base = dict(record) if isinstance(record, Mapping) else {"MessageBody": record}
    base["error"] = error
    return base


class ThrottlingMetrics:
    """Time spent throttled, as runners read it: Beam Python's convention, a counter
    `cumulativeThrottlingSeconds` (whole seconds, written by Beam's `ThrottlingSignaler`, in
    namespace `sqs_async`), and `beam-throttling-metrics/throttling-msecs` (milliseconds),
    the Java SDK's. Fractions are carried over, so the counters add up to the time itself."""

    def __init__(self) -> None:
        self._signaler = ThrottlingSignaler(METRICS_NAMESPACE)
        self._msecs = Metrics.counter(THROTTLING_NAMESPACE, THROTTLING_MSECS)
        self._seconds = 0.0
        self._counted = (0, 0)  # (whole seconds, milliseconds) counted so far

    def record(self, seconds: float) -> int:
        """Count `seconds` more of throttling; returns the milliseconds counted now."""
        self._seconds += max(0.0, seconds)
        whole, millis = int(self._seconds), int(self._seconds * 1000)
        new_seconds, new_millis = whole - self._counted[0], millis - self._counted[1]
        self._counted = (whole, millis)
        if new_seconds:
            self._signaler.signal_throttled(new_seconds)
        if new_millis:
            self._msecs.inc(new_millis)
        return new_millis


class _ScaledCounter:
    """A Beam counter of a number that may have fractions (seconds reported as
    milliseconds): the total is kept and what it adds in whole units is counted, so fractions
    are carried over and the counter adds up to the total itself."""

    def __init__(self, name: str, scale: int) -> None:
        self._counter = Metrics.counter(METRICS_NAMESPACE, name)
        self._scale = scale
        self._total = 0.0
        self._counted = 0

    def inc(self, value: float) -> None:
        """Count `value` more; the counter is updated even by 0, so that it is reported."""
        if self._scale == 1 and isinstance(value, int):
            self._counter.inc(value)
            return
        self._total += max(0.0, value)
        counted = int(self._total * self._scale)
        self._counter.inc(counted - self._counted)
        self._counted = counted


class _Metrics:
    """The sink's metrics: every `SendResult` counter under its declared metric name, and
    the failures (`messages_failed`, `failed_<code>`, sqs_pyio's three counters)."""

    def __init__(self) -> None:
        self.counters = [
            (c.name, _ScaledCounter(c.metric, c.scale)) for c in COUNTERS if not c.distribution
        ]
        self.distributions = [
            (c.name, c.scale, Metrics.distribution(METRICS_NAMESPACE, c.metric))
            for c in COUNTERS
            if c.distribution
        ]
        self.failed = Metrics.counter(METRICS_NAMESPACE, "messages_failed")
        self.throttling = ThrottlingMetrics()
        # sqs_pyio 0.1.0's counters, same namespace, names and meaning, for existing dashboards.
        released = lambda name: Metrics.counter(SQS_PYIO_NAMESPACE, name)  # noqa: E731
        self.total_elements = released("total_elements_count")
        self.succeeded_elements = released("succeeded_elements_count")
        self.failed_elements = released("failed_elements_count")

    def record(self, result: SendResult) -> None:
        """Count one flush's result."""
        self.total_elements.inc(result.total)
        self.succeeded_elements.inc(result.delivered_count)
        self.failed_elements.inc(len(result.failed))
        self.failed.inc(len(result.failed))
        for code, count in Counter(failed.code for failed in result.failed).items():
            Metrics.counter(METRICS_NAMESPACE, f"failed_{code}").inc(count)
        for name, counter in self.counters:
            counter.inc(getattr(result, name))
        for name, scale, distribution in self.distributions:
            for value in getattr(result, name):
                distribution.update(int(value * scale))
        self.throttling.record(result.throttled_seconds)


@dataclass(frozen=True)
class _SinkSettings:
    """What the DoFn needs beyond the engine's `SenderConfig` (see `WriteToSqs`)."""

    append_error: bool
    error_shape: ErrorShape
    failed_output: str
    emit_delivered: bool
    buffer_size: int
    client_wrapper: Callable[[SqsClient], SqsClient] | None
    bundle_deadline: float | None


class _WriteToSqsFn(beam.DoFn):
    """Buffers messages with their window and timestamp and sends them through the engine."""

    def __init__(self, config: SenderConfig, sink: _SinkSettings) -> None:
        super().__init__()
        self.config = config
        self.sink = sink
        # Live objects are created in setup: the DoFn must stay picklable.
        self._sender: SqsSender | None = None
        self._buffer: list[tuple[Any, Any, Any]] = []
        self._bundle_delivered = 0  # messages of this bundle, for its log line
        self._bundle_failed = 0

    def display_data(self) -> dict[str, Any]:
        return {
            "queue": DisplayDataItem(self.config.destination, label="SQS queue"),
            "max_in_flight": self.config.max_in_flight,
            "max_trials": self.config.retry.max_trials,
        }

    def setup(self) -> None:
        self._metrics = _Metrics()
        sender = SqsSender(self.config, client_wrapper=self.sink.client_wrapper)
        runtime.run(sender.open())
        self._sender = sender

    def start_bundle(self) -> None:
        self._buffer = []
        self._bundle_delivered = self._bundle_failed = 0
        self._started = time.monotonic()

    def process(
        self,
        element: Any,
        timestamp: Any = beam.DoFn.TimestampParam,
        window: Any = beam.DoFn.WindowParam,
    ) -> Iterator[Any]:
        for record in records_of(element):
            self._buffer.append((record, timestamp, window))
            if len(self._buffer) >= self.sink.buffer_size:
                yield from self._flush()

    def finish_bundle(self) -> Iterator[Any]:
        yield from self._flush()
        delivered, failed = self._bundle_delivered, self._bundle_failed
        if delivered or failed:
            log.info(
                "bundle: total %d, succeeded %d, failed %d in %.2fs",
                delivered + failed,
                delivered,
                failed,
                time.monotonic() - self._started,
            )

    def teardown(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            runtime.run(sender.close())

    def _flush(self) -> Iterator[Any]:
        buffer, self._buffer = self._buffer, []
        if not buffer:
            return
        if self._sender is None:
            raise RuntimeError("WriteToSqs: a bundle was flushed before setup opened the sender")
        deadline = None
        if self.sink.bundle_deadline is not None:
            deadline = max(0.0, self._started + self.sink.bundle_deadline - time.monotonic())
        result = runtime.run(
            self._sender.send(
                [record for record, _, _ in buffer],
                keep_delivered=self.sink.emit_delivered,  # else only counted
                deadline=deadline,
                log_level=logging.DEBUG,
            )
        )
        self._metrics.record(result)
        self._bundle_delivered += result.delivered_count
        self._bundle_failed += len(result.failed)
        for failed in result.failed:
            _, timestamp, window = buffer[failed.index]
            value = failed_record(failed, self.sink.append_error, self.sink.error_shape)
            yield TaggedOutput(self.sink.failed_output, WindowedValue(value, timestamp, (window,)))
        if self.sink.emit_delivered:
            for delivered in result.delivered:
                _, timestamp, window = buffer[delivered.index]
                yield WindowedValue(delivery_record(delivered), timestamp, (window,))


def delivery_record(delivered: Delivered) -> dict[str, Any]:
    return {"record": delivered.record, "MessageId": delivered.message_id}


class WriteToSqs(beam.PTransform):  # type: ignore[type-arg]
    """Write messages to an SQS queue; what cannot be delivered goes to a tagged output.

    The first five parameters are sqs_pyio 0.1.0's, in its order: `queue_name`,
    `owner_acc_id` (the account that owns the queue, for a queue shared from another
    account), `max_trials` (attempts per message, the first included), `append_error`,
    `failed_output`. Everything else is keyword-only.

    Elements are lists of messages, `(key, list)` pairs (as `GroupIntoBatches` makes), or
    single messages; a message is a `str` body or a mapping of SQS entry fields. No
    `BatchElements` step is needed: the engine packs requests itself.

    Returns the `with_outputs` result: `output[failed_output]` holds each undeliverable or
    invalid record in its element's window. With `append_error` (default) each is a tuple
    `(record, error)`, `error` being that record's own `{"Id", "SenderFault", "Code",
    "Message"}`, as sqs_pyio 0.1.0 yields; `error_shape="key"` gives the record with the error
    under an `error` key instead (handy for dead-letter routing); without `append_error`, the
    bare record. The main output (`output[None]`) is empty unless `emit_delivered`, in which
    case it carries `{"record": ..., "MessageId": ...}` per delivered message.

    `bundle_deadline` (seconds): messages of a bundle not delivered that long after the bundle
    started go to the failed output with code `DeadlineExceeded`, so a bundle never waits on
    SQS for longer (plus one request timeout).

    Connection settings come from `SqsOptions` flags unless given here; keywords not named
    below are `SenderConfig` fields (`retry`, `max_request_bytes`, `connect_timeout`, ...).
    A queue that refuses every request (missing, access denied) fails the pipeline with
    `SqsClientError`.
    """

    FAILED_OUTPUT = "write-to-sqs-failed-output"

    def __init__(
        self,
        queue_name: str | None = None,
        owner_acc_id: str | None = None,
        max_trials: int = defaults.MAX_TRIALS,
        append_error: bool = True,
        failed_output: str = FAILED_OUTPUT,
        *,
        queue_url: str | None = None,
        error_shape: ErrorShape = "tuple",
        max_in_flight: int = defaults.MAX_IN_FLIGHT,
        max_message_bytes: int | None = None,
        max_request_bytes: int = defaults.MAX_MESSAGE_BYTES,
        emit_delivered: bool = False,
        buffer_size: int | None = None,
        client_wrapper: Callable[[SqsClient], SqsClient] | None = None,
        bundle_deadline: float | None = None,
        **sender_settings: Any,
    ) -> None:
        super().__init__()
        if "fake_config" in sender_settings:
            raise TypeError(
                "WriteToSqs does not take fake_config (sqs_pyio's test double): test against "
                "a real local server (sqs_async.testing.LocalSqsServer), and inject faults "
                "with client_wrapper"
            )
        if error_shape not in ("tuple", "key"):
            raise ValueError(f'error_shape must be "tuple" or "key", got {error_shape!r}')
        if not isinstance(failed_output, str) or not failed_output:
            raise ValueError(f"failed_output must be a non-empty str, got {failed_output!r}")
        if not isinstance(append_error, bool):
            raise TypeError(f"append_error must be a bool, got {append_error!r}")
        if buffer_size is None:
            buffer_size = max(MIN_BUFFER_SIZE, BUFFERED_MESSAGES_PER_SLOT * max_in_flight)
        check_number("buffer_size", buffer_size, low=1, integer=True)
        if owner_acc_id is not None:
            sender_settings["queue_owner_account_id"] = owner_acc_id
        # Checked now, at pipeline construction, not later on a worker.
        self._config = SenderConfig(
            queue_name=queue_name,
            queue_url=queue_url,
            max_trials=max_trials,
            max_in_flight=max_in_flight,
            max_message_bytes=max_message_bytes,
            max_request_bytes=max_request_bytes,
            **sender_settings,
        )
        self._explicit = set(sender_settings)
        self._sink = _SinkSettings(
            append_error=append_error,
            error_shape=error_shape,
            failed_output=failed_output,
            emit_delivered=emit_delivered,
            buffer_size=buffer_size,
            client_wrapper=client_wrapper,
            bundle_deadline=bundle_deadline,
        )

    def expand(self, pcoll: PCollection[Any]) -> Any:
        options = pcoll.pipeline.options
        config = self._config
        if options is not None:
            from_flags = options.view_as(SqsOptions).sender_settings()
            config = replace(
                config, **{k: v for k, v in from_flags.items() if k not in self._explicit}
            )
        # The main output: `emit_delivered`'s records (a dict each).
        send = beam.ParDo(_WriteToSqsFn(config, self._sink)).with_output_types(dict[str, Any])
        return pcoll | "SendToSqs" >> send.with_outputs(self._sink.failed_output, main=None)
