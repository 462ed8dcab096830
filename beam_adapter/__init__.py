"""beam_adapter: Apache Beam transforms over the sqs_async engine.

A drop-in replacement for `sqs_pyio`: change `from sqs_pyio.io import WriteToSqs` to
`from beam_adapter import WriteToSqs`.

Public API (a local server for tests: `sqs_async.testing.LocalSqsServer`)::

    WriteToSqs       the sink; failed records on a tagged output
    ReadFromSqs      the source: bounded or streaming, deletes after the bundle is committed
    SqsOptions       the pipeline flags (--aws_access_key_id, --endpoint_url, ...)
    SqsClientError   raised when the queue refuses every request
    QueueField       route each record to the queue named in one of its fields
    stable_hash      a deterministic hash of a record (a FIFO deduplication id)
    METRICS_NAMESPACE
    SqsMessagesToRows  ReadFromSqs's records as schema'd rows (format STRING, RAW or JSON)
    RowToEntry       a serializer for WriteToSqs: schema'd rows as SQS entries

Beam YAML's ReadFromSqs and WriteToSqs: beam_adapter.yaml_transforms, listed for Beam YAML in
the package's sqs_provider.yaml.
"""

from sqs_async import QueueField, SqsClientError, stable_hash

from .options import SqsOptions
from .rows import RowToEntry, SqsMessagesToRows
from .sink import METRICS_NAMESPACE, WriteToSqs
from .source import ReadFromSqs

__all__ = [
    "METRICS_NAMESPACE",
    "QueueField",
    "ReadFromSqs",
    "RowToEntry",
    "SqsClientError",
    "SqsMessagesToRows",
    "SqsOptions",
    "WriteToSqs",
    "stable_hash",
]
