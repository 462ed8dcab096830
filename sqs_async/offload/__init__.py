"""Large messages through S3, in AWS's extended-client format, both ways.

SQS takes at most 1 MiB per message (less when a queue's MaximumMessageSize says so). Give
`payload_stage=S3Offload(bucket=...)` to a `SenderConfig` / `SqsProducer` / `WriteToSqs` and
to a `ReceiverConfig` / `ReadFromSqs` (or `--s3-bucket` on the command line): a body too large
for the queue is stored in S3 and the message carries a pointer, as AWS's Java and Python
extended clients write it; a pointer, in either library's variant, is resolved before a
message is handed out. See `S3Offload` for the settings and the README's "Large messages".

    S3Offload                 the stage (a picklable value; each engine opens its own client)
    S3Pointer, read_pointer   the pointer body: where a payload is, and reading one
    stored_location           where a pointer received without S3Offload says its body is
    original_receipt_handle   the SQS handle inside one AWS's extended clients marked
    marked_receipt_handle     a handle marked as those clients mark it
    FLAGS, add_flags, offload_from   the settings as flags (command line, Beam options)
"""

from ._flags import FLAGS, add_flags, offload_from
from ._pointer import (
    LEGACY_POINTER_CLASS,
    LEGACY_SIZE_ATTRIBUTE,
    POINTER_CLASS,
    SIZE_ATTRIBUTE,
    S3Pointer,
    marked_receipt_handle,
    original_receipt_handle,
    read_pointer,
    stored_location,
)
from ._stage import OffloadCounts, OffloadRefused, S3Offload

__all__ = [
    "FLAGS",
    "LEGACY_POINTER_CLASS",
    "LEGACY_SIZE_ATTRIBUTE",
    "POINTER_CLASS",
    "SIZE_ATTRIBUTE",
    "OffloadCounts",
    "OffloadRefused",
    "S3Offload",
    "S3Pointer",
    "add_flags",
    "marked_receipt_handle",
    "offload_from",
    "original_receipt_handle",
    "read_pointer",
    "stored_location",
]
