"""sqs_async: a high-throughput Amazon SQS producer for asyncio.

Public API::

    SqsSender       send many messages to one queue, concurrently, with retries
    SqsProducer     put messages one at a time; batched and sent behind the scenes
    SqsReceiver     read a queue: long polling, visibility kept, acks in batches
    ReceiverConfig, ReceivedMessage, AckResult
    SenderConfig    its settings (a frozen value)
    RetryPolicy     how failed entries are retried
    QueueField      route each record to the queue named in one of its fields
    stable_hash     a deterministic hash of a record (a FIFO deduplication id)
    SendResult      what `send` returns: `.delivered` and `.failed`
    Delivered, Failed
    PayloadStage    transform payloads on their way out, in, and at delete (`sqs_async.stages`)
    SqsAsyncError, SqsClientError, SqsUnavailableError, ProducerFull

Also public: `sqs_async.defaults` (SQS's limits and the engine's defaults), `sqs_async.errors`
(the exception tree and the table of error codes), `sqs_async.results` (outcomes, and the
counters declared once for reports), `sqs_async.offload` (large messages through S3, in AWS's
extended-client format: `S3Offload`), `sqs_async.checks` (the checks of settings,
for adapters such as `beam_adapter`), `sqs_async.wire` (the client interfaces),
`sqs_async.testing.LocalSqsServer` (an SQS-compatible server on 127.0.0.1, moto's:
`pip install 'sqs-async[local]'`) and `sqs_async.cli`. Modules whose names start with `_`, in
`send/`, `receive/` and `wire/`, are internal.
"""

from . import defaults
from ._version import __version__
from .config import ConnectionConfig, ReceiverConfig, SenderConfig
from .errors import ProducerFull, SqsAsyncError, SqsClientError, SqsUnavailableError
from .receive import AckResult, ReceivedMessage, ReceiverStats, SqsReceiver
from .results import Delivered, Failed, SendResult
from .retry import RetryPolicy
from .send import QueueField, SqsProducer, SqsSender, stable_hash
from .stages import PayloadStage

__all__ = [
    "AckResult",
    "ConnectionConfig",
    "Delivered",
    "Failed",
    "PayloadStage",
    "ProducerFull",
    "QueueField",
    "ReceivedMessage",
    "ReceiverConfig",
    "ReceiverStats",
    "RetryPolicy",
    "SendResult",
    "SenderConfig",
    "SqsAsyncError",
    "SqsClientError",
    "SqsProducer",
    "SqsReceiver",
    "SqsSender",
    "SqsUnavailableError",
    "__version__",
    "defaults",
    "stable_hash",
]
