"""`ReadFromSqs`: the Beam source. A thin adapter over `SqsReceiver`: the engine polls, holds
and extends visibility; this module maps it onto a splittable DoFn and bundle finalization.

At least once, losing nothing: a message is deleted only after the runner has committed the
bundle that emitted it (`DoFn.BundleFinalizerParam`); until then the receiver keeps it
invisible. A bundle that fails is never finalized, so its messages are not deleted: they come
back when the receiver releases them (its DoFn is torn down), or once `max_hold` seconds have
passed and their visibility timeout runs out. Runners that do not finalize bundles (portable
Flink in batch mode, portable Spark) need `delete_after="output"`: see `ReadFromSqs`.

Each call of the DoFn reads what arrives within `bundle_seconds` (up to `bundle_size`
messages), emits it with the message's sent time as the element timestamp, and checkpoints
(`defer_remainder`), so bundles stay short and deletes follow closely. A bounded read then
stops polling and emits what its open polls bring too: its next bundle may run in another
worker process, and nothing may wait in this one's prefetch buffer where no bundle will emit
it. A streaming read keeps polling between bundles (a bundle would otherwise wait out its open
long polls); what it prefetched waits for the next bundle of the same worker. The restriction is an
offset range over the count of messages read: bounded by `max_messages` (or stopped by
`max_read_time`, or by a poll that waited `wait_time_seconds` in vain, `until_empty`), or
unbounded for a streaming read. The unbounded read follows Beam's own unbounded sources
(`periodicsequence`): its tracker says it is unbounded, `truncate` drops the rest on drain,
and its size is the queue's backlog as SQS estimates it (`ApproximateNumberOfMessages`, asked
at most every 10 s), for autoscalers. The watermark: see `next_watermark`.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.metrics.metric import Metrics
from apache_beam.options.pipeline_options import DirectOptions, StandardOptions
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.display import DisplayDataItem
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Duration, Timestamp

from sqs_async import ReceivedMessage, ReceiverConfig, ReceiverStats, SqsReceiver
from sqs_async.checks import check_number
from sqs_async.offload import stored_location

from . import runtime
from .options import SqsOptions
from .rows import SqsMessagesToRows
from .sink import METRICS_NAMESPACE, ThrottlingMetrics

log = logging.getLogger("beam_adapter")

UNBOUNDED = 2**63 - 1
# How long an idle streaming read waits before it polls again.
IDLE_RESUME_SECONDS = 1.0
# The backlog SQS last reported per queue URL, shared by the DoFn instances of this process:
# Beam sizes restrictions in a step of its own, where no reader may be set up.
_backlog: dict[str, int] = {}
# How long the last, empty step of a bounded read waits for the finalization of the part's
# earlier bundles (the runner may finalize a bundle after the next one started).
FINALIZATION_WAIT_SECONDS = 5.0

DeleteAfter = Literal["commit", "output"]


def next_watermark(current: float | None, oldest_held: float | None, polled_at: float) -> float:
    """The read's new watermark (seconds since the epoch); it never moves back.

    It stays at or below the sent time of every message this reader still holds (received and
    not deleted: emitted in a bundle not yet committed, or buffered), so a message of a bundle
    that fails and is read again is not late while the reader holds it. With nothing held it
    follows `polled_at`, when the bundle started polling: a message sent after that cannot be
    older. Late data remains possible, and can be counted on in these cases: a message held
    longer than `max_hold` (a bundle the runner never committed) goes back to the queue and is
    read again after the watermark moved on; a message another reader released or whose
    visibility timeout ran out elsewhere; a message SQS delivers long after it was sent (a
    large backlog, `DelaySeconds`); and clock skew between SQS and the worker.
    """
    candidate = polled_at if oldest_held is None else min(oldest_held, polled_at)
    return candidate if current is None else max(current, candidate)


class _UnboundedOffsetTracker(OffsetRestrictionTracker):
    """An offset tracker that tells the runner the read has no end (a streaming read)."""

    def is_bounded(self) -> bool:
        return False


class _BoundedOffsetTracker(OffsetRestrictionTracker):
    """An offset tracker whose range, once every offset is claimed, can still checkpoint: the
    residual is the empty range `[stop, stop)`, the read's last step (see `_Deletes`)."""

    def try_split(self, fraction_of_remainder: float) -> tuple[OffsetRange, OffsetRange] | None:
        claimed_all = (
            self._last_claim_attempt is not None
            and self._last_claim_attempt >= self._range.stop - 1
            and self._range.start < self._range.stop
        )
        if fraction_of_remainder == 0 and claimed_all and not self._checkpointed:
            self._checkpointed = True
            return self._range, OffsetRange(self._range.stop, self._range.stop)
        split: tuple[OffsetRange, OffsetRange] | None = super().try_split(fraction_of_remainder)
        return split


class _Deletes:
    """The deletes of this process's readers, until a bundle counts them.

    A bundle's messages are deleted in its finalization, after the runner committed it, where
    Beam keeps no metrics: the next bundle of the same read in this process counts them. A
    bounded read ends with one more, empty step (`[stop, stop)`) once its last bundle
    deleted something: that step waits (up to `FINALIZATION_WAIT_SECONDS`) for the
    finalizations its part registered, then counts, so the count is exact when the runner
    runs it in the same process (the FnApiRunner does, and finalizes each bundle before the
    next one starts). Reads are told apart by an id made when the transform is applied;
    parts of a read by their restriction's stop, which never changes as a part checkpoints.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._uncounted: dict[str, tuple[int, int]] = {}
        self._pending: dict[tuple[str, int], int] = {}

    def expect(self, part: tuple[str, int]) -> None:
        """A bundle of `part` registered its finalization."""
        with self._changed:
            self._pending[part] = self._pending.get(part, 0) + 1

    def pending(self, part: tuple[str, int]) -> int:
        with self._changed:
            return self._pending.get(part, 0)

    def add(self, read_id: str, deleted: int, failed: int) -> None:
        with self._changed:
            done, failures = self._uncounted.get(read_id, (0, 0))
            self._uncounted[read_id] = (done + deleted, failures + failed)

    def finalized(self, part: tuple[str, int], deleted: int, failed: int) -> None:
        with self._changed:
            self.add(part[0], deleted, failed)
            left = self._pending.get(part, 0) - 1
            if left > 0:
                self._pending[part] = left
            else:
                self._pending.pop(part, None)
            self._changed.notify_all()

    def wait(self, part: tuple[str, int], timeout: float) -> bool:
        """Wait until every finalization `part` registered has run (False: timed out; a
        bundle that failed is never finalized)."""
        with self._changed:
            finished = self._changed.wait_for(lambda: part not in self._pending, timeout)
            self._pending.pop(part, None)
            return finished

    def take(self, read_id: str) -> tuple[int, int]:
        """(deleted, failed) not yet counted, now counted by the caller."""
        with self._changed:
            return self._uncounted.pop(read_id, (0, 0))


_deletes = _Deletes()


@dataclass(frozen=True)
class _ReadSettings:
    """What the DoFn needs beyond the engine's `ReceiverConfig` (see `ReadFromSqs`)."""

    max_messages: int | None
    max_read_time: float | None
    until_empty: bool
    with_receipt_handle: bool
    bundle_size: int
    bundle_seconds: float
    readers: int = 1
    delete_after: DeleteAfter = "commit"
    client_wrapper: Callable[[Any], Any] | None = None
    read_id: str = ""  # one per application of the transform (see `_Deletes`)

    @property
    def bounded(self) -> bool:
        return self.max_messages is not None or self.max_read_time is not None or self.until_empty


@dataclass(frozen=True, slots=True)
class _Counts:
    """The receiver's counters that `_Metrics.record` turns into Beam metrics."""

    received: int = 0
    extensions: int = 0
    receive_calls: int = 0
    receive_seconds: float = 0.0
    throttled_seconds: float = 0.0

    @classmethod
    def of(cls, stats: ReceiverStats) -> "_Counts":
        return cls(
            stats.received,
            stats.extensions,
            stats.receive_calls,
            stats.receive_seconds,
            stats.throttled_seconds,
        )


@dataclass(frozen=True, slots=True)
class _Bundle:
    """What one call of the DoFn read: its messages; `drained`, whether the read may end
    (`until_empty` and the queue was found empty); `backlog`, SQS's estimate of the queue's
    backlog (a streaming read asks; None when it did not or could not)."""

    messages: list[ReceivedMessage]
    drained: bool
    backlog: int | None = None


class _Metrics:
    def __init__(self) -> None:
        counter = lambda name: Metrics.counter(METRICS_NAMESPACE, name)  # noqa: E731
        self.received = counter("messages_received")
        self.deleted = counter("messages_deleted")
        self.delete_failures = counter("delete_failures")
        self.extensions = counter("visibility_extensions")
        self.throttled_ms = counter("throttled_ms")
        self.latency = Metrics.distribution(METRICS_NAMESPACE, "receive_latency_ms")
        self.throttling = ThrottlingMetrics()
        self._last = _Counts()

    def record(self, receiver: SqsReceiver) -> None:
        """Count what the receiver did since the last call (deletes: see `count_deletes`)."""
        last, now = self._last, _Counts.of(receiver.stats)
        self._last = now
        self.received.inc(now.received - last.received)
        self.extensions.inc(now.extensions - last.extensions)
        calls = now.receive_calls - last.receive_calls
        if calls:
            seconds = now.receive_seconds - last.receive_seconds
            self.latency.update(int(seconds * 1000 / calls))
        throttled = now.throttled_seconds - last.throttled_seconds
        if throttled > 0:
            self.throttled_ms.inc(self.throttling.record(throttled))

    def count_deletes(self, read_id: str) -> None:
        """Count the deletes of this read made in this process and not counted yet (those
        of finalizations, which run where Beam keeps no metrics: see `_Deletes`)."""
        deleted, failed = _deletes.take(read_id)
        self.deleted.inc(deleted)
        self.delete_failures.inc(failed)


class _ReadFn(beam.DoFn, RestrictionProvider):
    """Reads one bundle's worth of messages per call, then checkpoints.

    Its own restriction provider: an offset range over the number of messages read, split up
    front into `readers` parts.
    """

    def __init__(self, config: ReceiverConfig, read: _ReadSettings) -> None:
        super().__init__()
        self.config = config
        self.read = read
        self._receiver: SqsReceiver | None = None

    def initial_restriction(self, element: Any) -> OffsetRange:
        limit = self.read.max_messages
        return OffsetRange(0, UNBOUNDED if limit is None else limit)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        if self.read.bounded:
            return _BoundedOffsetTracker(restriction)
        return _UnboundedOffsetTracker(restriction)

    def restriction_size(self, element: Any, restriction: OffsetRange) -> int:
        """A bounded read: what is left of it. A streaming read: the queue's backlog as SQS
        last reported it to a reader in this process (0 until one has asked)."""
        if self.read.bounded:
            return max(1, int(restriction.size()))  # the last step, [stop, stop), is work too
        return _backlog.get(self._queue_key, 0)

    def truncate(self, element: Any, restriction: OffsetRange) -> OffsetRange | None:
        """On drain a streaming read stops at once (what it holds is released on teardown);
        a bounded read finishes."""
        return restriction if self.read.bounded else None

    @property
    def _queue_key(self) -> str:
        return str(self.config.queue_url or self.config.queue_name)

    def split(self, element: Any, restriction: OffsetRange) -> Iterator[OffsetRange]:
        """`readers` parts, which a runner may read on different workers at once (an SQS
        queue has no partitions: each part simply polls the same queue)."""
        parts = max(1, min(self.read.readers, int(restriction.size())))
        step = restriction.size() // parts
        for n in range(parts):
            stop = restriction.stop if n == parts - 1 else restriction.start + (n + 1) * step
            yield OffsetRange(restriction.start + n * step, stop)

    def display_data(self) -> dict[str, Any]:
        return {
            "queue": DisplayDataItem(
                self.config.queue_url or self.config.queue_name, label="SQS queue"
            ),
            "max_messages": self.read.max_messages,
            "max_read_time": self.read.max_read_time,
        }

    def setup(self) -> None:
        self._metrics = _Metrics()
        # Without a payload stage, a pointer to a body in S3 is emitted as it is: say so once.
        self._told_of_pointers = self.config.payload_stage is not None
        # Beam may set up this DoFn in stages that never read (splitting, sizing): it polls
        # only when a bundle asks for messages.
        receiver = SqsReceiver(
            self.config, client_wrapper=self.read.client_wrapper, poll_on_open=False
        )
        runtime.run(receiver.open())
        self._receiver = receiver

    def _tell_of_pointer(self, message: ReceivedMessage) -> None:
        where = stored_location(message.message_attributes, message.body)
        if where is not None:
            self._told_of_pointers = True
            log.warning(
                "message %s points to a body stored in S3 (%s), emitted as the pointer: give "
                "ReadFromSqs payload_stage=S3Offload(...) or the --s3_bucket option to fetch "
                "such bodies",
                message.message_id,
                where,
            )

    def teardown(self) -> None:
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            runtime.run(receiver.close())  # releases what no bundle finalized
            stats = receiver.stats
            log.info(
                "read from %s: received %d, deleted %d, delete failures %d, released %d",
                receiver.queue_url,
                stats.received,
                stats.deleted,
                stats.delete_failures,
                stats.released,
            )

    def read_messages(
        self,
        started_at: float,
        tracker: Any,  # a RestrictionTrackerView over an OffsetRestrictionTracker
        watermark: ManualWatermarkEstimator,
        finalizer: Any,
    ) -> Iterator[Any]:
        receiver = self._receiver
        assert receiver is not None, "set up before use"
        restriction = tracker.current_restriction()
        part = (self.read.read_id, int(restriction.stop))
        if restriction.start >= restriction.stop:
            # A bounded read's last step: its bundles' deletes are done; count them, end.
            _deletes.wait(part, FINALIZATION_WAIT_SECONDS)
            self._metrics.count_deletes(self.read.read_id)
            self._metrics.record(receiver)  # and the throttling of those deletes
            tracker.try_claim(restriction.stop)
            return
        deadline = None if self.read.max_read_time is None else started_at + self.read.max_read_time
        wanted = min(self.read.bundle_size, restriction.stop - restriction.start)
        polled_at = time.time()
        bundle = runtime.run(self._collect(receiver, wanted, deadline))
        batch, drained = bundle.messages, bundle.drained
        if bundle.backlog is not None:
            _backlog[self._queue_key] = bundle.backlog
        self._metrics.record(receiver)

        position = restriction.start
        claimed: list[ReceivedMessage] = []
        for message in batch:
            if not tracker.try_claim(position):
                break
            position += 1
            claimed.append(message)
        if len(claimed) < len(batch):
            runtime.run(receiver.release(batch[len(claimed) :]))
        if claimed and self.read.delete_after == "commit":
            _deletes.expect(part)
            # Held for the finalization without the bodies fetched from S3 (emitted below).
            to_delete = [message.without_payload() for message in claimed]
            finalizer.register(lambda: self._delete(to_delete, part))

        current = watermark.current_watermark()
        watermark.set_watermark(
            Timestamp.of(
                next_watermark(
                    None if current is None else current.micros / 1e6,
                    receiver.oldest_held_sent_timestamp(),
                    polled_at,
                )
            )
        )

        expired = deadline is not None and time.time() >= deadline
        ending = expired or drained or position >= restriction.stop
        if ending and not self.read.bounded:
            # Read all it will: stop polling, give back what was prefetched. The messages
            # emitted stay held until their bundle is finalized. (A bounded read stopped
            # polling in `_collect` and took all it had received: nothing to give back.)
            runtime.run(receiver.stop_receiving())
        for message in claimed:
            if not self._told_of_pointers:
                self._tell_of_pointer(message)
            record = message.as_record(with_receipt_handle=self.read.with_receipt_handle)
            yield TimestampedValue(record, message.sent_timestamp or time.time())
        if claimed and self.read.delete_after == "output":
            self._delete(claimed, None)  # emitted: the weaker guarantee the caller chose
        self._metrics.count_deletes(self.read.read_id)
        if ending and self.read.bounded and _deletes.pending(part):
            # Deletes still to come in finalization: end with one more, empty step that
            # counts them (see `_Deletes`).
            if position < restriction.stop:
                tracker.try_claim(restriction.stop - 1)  # nothing more to read
            tracker.defer_remainder()
        elif expired or drained:
            tracker.try_claim(restriction.stop)  # nothing more to read: the range is done
        elif position < restriction.stop:
            tracker.defer_remainder(Duration.of(0.0 if batch else IDLE_RESUME_SECONDS))

    async def _collect(self, receiver: SqsReceiver, wanted: int, deadline: float | None) -> _Bundle:
        """Up to `wanted` messages arriving within `bundle_seconds` (and the deadline), and
        what the reader learnt meanwhile: all of it in one call on the engine's loop."""
        ends = time.monotonic() + self.read.bundle_seconds
        if deadline is not None:
            ends = min(ends, time.monotonic() + max(0.0, deadline - time.time()))
        receiver.start_receiving()  # an earlier part of the read may have stopped it
        batch: list[ReceivedMessage] = []
        until_empty = self.read.until_empty
        async for message in receiver.messages(
            max_messages=wanted, max_time=max(0.0, ends - time.monotonic()), until_empty=until_empty
        ):
            batch.append(message)
        if not self.read.bounded:
            # A streaming read keeps polling between bundles (what it prefetched waits for
            # the next bundle here), and sizes its restriction by the queue's backlog.
            return _Bundle(batch, drained=False, backlog=await receiver.backlog())
        # The rest of a bounded read may run in another worker process, and another part may
        # end once the queue looks empty: leave nothing received here that no bundle would
        # emit.
        batch += await receiver.stop_polling_and_take()
        # Drained only when the queue was found empty: a bundle can end with no message
        # because a poll was slow or backing off, which says nothing.
        return _Bundle(batch, drained=until_empty and not batch and receiver.found_empty())

    def _delete(self, messages: list[ReceivedMessage], part: tuple[str, int] | None) -> None:
        """Bundle finalization (`part`): the runner committed the bundle; delete its
        messages. Or, with `delete_after="output"` (no `part`), once they are emitted."""
        deleted = failed = 0
        try:
            receiver = self._receiver
            if receiver is None:
                return  # torn down: the messages were released and will be read again
            result = runtime.run(receiver.ack(messages))
            deleted, failed = len(result.done), len(result.failed)
            if result.failed:
                log.warning("%d of %d messages not deleted", len(result.failed), len(messages))
        finally:
            if part is None:
                _deletes.add(self.read.read_id, deleted, failed)
            else:
                _deletes.finalized(part, deleted, failed)


# The DoFn is its own restriction provider; its watermark is set by hand.
_TRACKER = beam.DoFn.RestrictionParam()
_WATERMARK = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider())


class _BoundedReadFn(_ReadFn):
    def process(
        self,
        started_at: float,
        # Beam passes the finalizer by position and the tracker and estimator by keyword:
        # the finalizer must come first.
        finalizer: Any = beam.DoFn.BundleFinalizerParam,
        tracker: Any = _TRACKER,
        watermark: Any = _WATERMARK,
    ) -> Iterator[Any]:
        yield from self.read_messages(started_at, tracker, watermark, finalizer)


class _UnboundedReadFn(_ReadFn):
    @beam.DoFn.unbounded_per_element()  # type: ignore[untyped-decorator]
    def process(
        self,
        started_at: float,
        # Beam passes the finalizer by position and the tracker and estimator by keyword:
        # the finalizer must come first.
        finalizer: Any = beam.DoFn.BundleFinalizerParam,
        tracker: Any = _TRACKER,
        watermark: Any = _WATERMARK,
    ) -> Iterator[Any]:
        yield from self.read_messages(started_at, tracker, watermark, finalizer)


class ReadFromSqs(beam.PTransform):  # type: ignore[type-arg]
    """Read messages from an SQS queue, at least once; each is deleted after the runner has
    committed the bundle that emitted it.

    Elements are dicts `{"MessageId", "Body", "Attributes", "MessageAttributes"}` (plus
    `"ReceiptHandle"` with `with_receipt_handle`), timestamped with the message's sent time.
    With `format` (`"STRING"`, `"RAW"`, or `"JSON"` with a JSON `schema`) they are schema'd
    `beam.Row`s instead (see `beam_adapter.rows`); with `error_output` too, the result is
    `{"main": rows, error_output: error rows}`, a body JSON cannot parse being an error row
    (deleted like the others: it was delivered there).

    Bounded (a batch pipeline) when `max_messages`, `max_read_time` (seconds) or `until_empty`
    is given: the read ends at the first limit reached, or when a poll that started after the
    last message found the queue empty. Otherwise unbounded (a streaming read).

    Deletes: `delete_after="commit"` (default) deletes a bundle's messages once the runner has
    committed it (bundle finalization), so a failed bundle loses nothing. Portable Flink in
    batch mode and the portable Spark runner do not finalize bundles (apache/beam#19526,
    #19517): there such a read would never delete, so it is refused unless you choose
    `delete_after="output"`, which deletes a bundle's messages as soon as its elements are
    emitted. Then a bundle that fails after emitting loses its messages: use it only where the
    runner does not finalize bundles, and make the pipeline's first step durable.

    `readers` splits the read into that many parts a runner may run on different workers (each
    polls the queue; `max_messages` is shared out among them). `bundle_size` and
    `bundle_seconds` bound each bundle; `max_hold` (seconds, default 600)
    bounds how long a bundle's messages stay invisible waiting for the runner to commit it.
    `client_wrapper` wraps the receiver's client (tests inject faults with it).
    Other keywords are `ReceiverConfig` fields (`visibility_timeout`, `wait_time_seconds`,
    `concurrent_receives`, `prefetch`, ...); connection settings come from `SqsOptions` flags
    unless given here.
    """

    def __init__(
        self,
        queue_name: str | None = None,
        *,
        queue_url: str | None = None,
        max_messages: int | None = None,
        max_read_time: float | None = None,
        until_empty: bool = False,
        with_receipt_handle: bool = False,
        bundle_size: int = 1000,
        bundle_seconds: float = 1.0,
        max_hold: float | None = 600.0,
        readers: int = 1,
        delete_after: DeleteAfter = "commit",
        client_wrapper: Callable[[Any], Any] | None = None,
        format: str | None = None,
        schema: Mapping[str, Any] | None = None,
        error_output: str | None = None,
        **receiver_settings: Any,
    ) -> None:
        super().__init__()
        # Rows instead of dicts: checked now (a JSON schema Beam cannot map fails here).
        self._rows = None if format is None else SqsMessagesToRows(format, schema, error_output)
        if self._rows is None and (schema is not None or error_output is not None):
            raise ValueError("schema and error_output go with format (STRING, RAW or JSON)")
        with_receipt_handle = with_receipt_handle or self._rows is not None
        if delete_after not in ("commit", "output"):
            raise ValueError(f'delete_after must be "commit" or "output", got {delete_after!r}')
        if max_messages is not None:
            check_number("max_messages", max_messages, low=1, integer=True)
        if max_read_time is not None:
            check_number("max_read_time", max_read_time, above=0)
        check_number("readers", readers, low=1, integer=True)
        check_number("bundle_size", bundle_size, low=1, integer=True)
        check_number("bundle_seconds", bundle_seconds, above=0)
        # Checked now, at pipeline construction, not later on a worker.
        self._config = ReceiverConfig(
            queue_name=queue_name, queue_url=queue_url, max_hold=max_hold, **receiver_settings
        )
        self._explicit = set(receiver_settings)
        self._read = _ReadSettings(
            max_messages=max_messages,
            max_read_time=max_read_time,
            until_empty=until_empty,
            with_receipt_handle=with_receipt_handle,
            bundle_size=bundle_size,
            bundle_seconds=float(bundle_seconds),
            readers=readers,
            delete_after=delete_after,
            client_wrapper=client_wrapper,
        )

    def expand(self, pbegin: beam.pvalue.PBegin) -> Any:
        options = pbegin.pipeline.options
        config = self._config
        if options is not None:
            from_flags = options.view_as(SqsOptions).sender_settings()
            config = replace(
                config, **{k: v for k, v in from_flags.items() if k not in self._explicit}
            )
        if drops_checkpoints(pbegin.pipeline):
            raise ValueError(
                "ReadFromSqs cannot run on the DirectRunner with direct_num_workers other "
                "than 1: Beam's ParallelBundleManager merges the workers' answers without "
                "their residuals, so a splittable read stops after its first bundle and a "
                "bounded read would end early. Use --direct_num_workers=1 (in_memory), or "
                "Beam's portable runner for worker processes"
            )
        if self._read.delete_after == "commit" and not finalizes_bundles(pbegin.pipeline):
            raise ValueError(
                "ReadFromSqs deletes a message once its bundle is committed, and this runner "
                "does not finalize bundles (portable Flink in batch mode, portable Spark: "
                "apache/beam#19526, #19517), so nothing would be deleted. Pass "
                'delete_after="output" to delete once elements are emitted (a bundle that '
                "fails after that loses its messages), or run in streaming mode"
            )
        kind = _BoundedReadFn if self._read.bounded else _UnboundedReadFn
        read = replace(self._read, read_id=uuid.uuid4().hex)
        messages = (
            pbegin
            | "Start" >> beam.Impulse()
            | "StartTime" >> beam.Map(lambda _: time.time()).with_output_types(float)
            | "Read"
            >> beam.ParDo(kind(config, read))
            .with_input_types(float)
            .with_output_types(dict[str, Any])
        )
        return messages if self._rows is None else messages | "ToRows" >> self._rows


def finalizes_bundles(pipeline: beam.Pipeline) -> bool:
    """False for the runners Beam's issue tracker says do not finalize bundles: Flink in batch
    mode and Spark (through their portable runners; also when named as the classic
    FlinkRunner or SparkRunner, which run Python through the portable path)."""
    options = pipeline.options
    streaming = options is not None and options.view_as(StandardOptions).streaming
    runner = type(pipeline.runner).__name__
    return not (runner.startswith("Spark") or (runner.startswith("Flink") and not streaming))


def drops_checkpoints(pipeline: beam.Pipeline) -> bool:
    """True for the DirectRunner's engine with several workers: its ParallelBundleManager
    (apache_beam/runners/portability/fn_api_runner/fn_runner.py) merges the parallel bundles'
    responses keeping only monitoring infos and errors, so the residuals a splittable DoFn
    hands back when it checkpoints are dropped (Beam 2.77)."""
    options = pipeline.options
    if options is None or type(pipeline.runner).__name__ not in (
        "DirectRunner",
        "SwitchingDirectRunner",
        "FnApiRunner",
    ):
        return False
    workers = options.view_as(DirectOptions).direct_num_workers
    return workers is not None and workers != 1
