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
    SqsAsyncError, SqsClientError, SqsUnavailableError, ProducerFull

Testing: `sqs_async.testing.LocalSqsServer`, an SQS-compatible server on 127.0.0.1 (moto's;
`pip install 'sqs-async[local]'`). `sqs_async.LocalSqsServer` still works, with a
DeprecationWarning, until 0.3.
"""

from typing import Any

from ._version import __version__
from .config import SenderConfig
from .entries import QueueField, stable_hash
from .errors import ProducerFull, SqsAsyncError, SqsClientError, SqsUnavailableError
from .producer import SqsProducer
from .receiver import AckResult, ReceivedMessage, ReceiverConfig, SqsReceiver
from .results import Delivered, Failed, SendResult
from .retry import RetryPolicy
from .sender import SqsSender


def __getattr__(name: str) -> Any:
    if name == "LocalSqsServer":  # moved to sqs_async.testing; deprecated here until 0.3
        from .testing import moved

        return moved(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AckResult",
    "Delivered",
    "Failed",
    "ProducerFull",
    "QueueField",
    "ReceivedMessage",
    "ReceiverConfig",
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
    "stable_hash",
]
