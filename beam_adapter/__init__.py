"""beam_adapter: Apache Beam transforms over the sqs_async engine.

A drop-in replacement for `sqs_pyio`: change `from sqs_pyio.io import WriteToSqs` to
`from beam_adapter import WriteToSqs`.

Public API::

    WriteToSqs       the sink; failed records on a tagged output
    ReadFromSqs      the source: bounded or streaming, deletes after the bundle is committed
    SqsOptions       the pipeline flags (--aws_access_key_id, --endpoint_url, ...)
    SqsClientError   raised when the queue refuses every request
    LocalSqsServer   an SQS-compatible server on 127.0.0.1 for pipeline tests
    QueueField       route each record to the queue named in one of its fields
    stable_hash      a deterministic hash of a record (a FIFO deduplication id)
    METRICS_NAMESPACE
"""

from sqs_async import LocalSqsServer, QueueField, SqsClientError, stable_hash

from .options import SqsOptions
from .sink import METRICS_NAMESPACE, WriteToSqs
from .source import ReadFromSqs

__all__ = [
    "METRICS_NAMESPACE",
    "LocalSqsServer",
    "QueueField",
    "ReadFromSqs",
    "SqsClientError",
    "SqsOptions",
    "WriteToSqs",
    "stable_hash",
]
