"""`S3Offload`'s settings as flags: one table, read by the command line (`--s3-bucket`, ...)
and by the Beam pipeline options (`--s3_bucket`, ...), so both offer the same settings with
the same words."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import defaults
from ._stage import MISSING_PAYLOAD, S3Offload

SEND, RECEIVE = "send", "receive"


@dataclass(frozen=True)
class Flag:
    """One `S3Offload` field as a flag (`s3_` + the field's name), and the sides it works
    on (a command that only sends, or only receives, offers only its own)."""

    field: str
    help: str
    kind: type = str
    choices: tuple[str, ...] | None = None
    sides: tuple[str, ...] = (SEND, RECEIVE)

    def name(self, separator: str) -> str:
        return "--" + f"s3_{self.field}".replace("_", separator)


FLAGS = (
    Flag(
        "bucket",
        "S3 bucket of message bodies too large for the queue (turns offload on; a receiver "
        "reads pointers to any bucket)",
    ),
    Flag(
        "threshold",
        "store bodies of messages over this many bytes (body and attributes) in S3 (default: "
        "the queue's MaximumMessageSize)",
        int,
        sides=(SEND,),
    ),
    Flag("always", "store every message body in S3", bool, sides=(SEND,)),
    Flag(
        "key_prefix",
        "prefix of the S3 keys (a-z, A-Z, 0-9, '.', '/', '_', '-')",
        sides=(SEND,),
    ),
    Flag(
        "legacy_attribute",
        "mark stored messages with SQSLargePayloadSize (the Java library's default), not "
        "ExtendedPayloadSize",
        bool,
        sides=(SEND,),
    ),
    Flag("kms_key_id", "encrypt stored bodies with this KMS key (SSE-KMS)", sides=(SEND,)),
    Flag(
        "cleanup",
        "delete a body's S3 object after its message is deleted",
        bool,
        sides=(RECEIVE,),
    ),
    Flag(
        "missing_payload",
        "a message whose S3 object is gone: leave it to come back (and reach the dead-letter "
        "queue), or delete it (default: leave)",
        str,
        MISSING_PAYLOAD,
        sides=(RECEIVE,),
    ),
    Flag("endpoint_url", "S3 endpoint (default: the SQS endpoint given, else AWS's)"),
    Flag(
        "concurrent_transfers",
        f"S3 calls at once, fewer while S3 throttles (default: {defaults.MAX_IN_FLIGHT})",
        int,
    ),
)


BUCKET = next(flag for flag in FLAGS if flag.field == "bucket")


def add_flags(add_argument: Callable[..., Any], separator: str, side: str | None = None) -> None:
    """Add the flags of `side` (`SEND`, `RECEIVE`; None: all) with `add_argument` (an
    argparse parser's or group's), their words joined by `separator` ("-" on the command
    line, "_" in Beam's options, which serve both sides)."""
    for flag in FLAGS:
        if side is not None and side not in flag.sides:
            continue
        if flag.kind is bool:
            add_argument(flag.name(separator), action="store_true", default=False, help=flag.help)
        else:
            add_argument(flag.name(separator), type=flag.kind, choices=flag.choices, help=flag.help)


def offload_from(values: Mapping[str, Any], separator: str = "-") -> S3Offload | None:
    """The `S3Offload` the flag values (keyed `s3_<field>`) ask for, None when no bucket is
    given. Raises ValueError, naming the flag as typed (`separator`: "-" on the command
    line, "_" in Beam's options), for a setting without a bucket or a value `S3Offload`
    refuses."""
    given = {
        flag.field: value
        for flag in FLAGS
        if (value := values.get(f"s3_{flag.field}")) is not None and value is not False
    }
    if "bucket" not in given:
        if given:
            names = [flag.name(separator) for flag in FLAGS if flag.field in given]
            verb = "needs" if len(names) == 1 else "need"
            raise ValueError(
                f"{' and '.join(names)} {verb} {BUCKET.name(separator)} (large messages "
                "through S3 are off without it)"
            )
        return None
    try:
        return S3Offload(**given)
    except (TypeError, ValueError) as exc:  # worded with the field's name: give the flag's
        flag = next((f for f in FLAGS if str(exc).startswith(f.field)), None)
        if flag is None:
            raise ValueError(str(exc)) from None
        raise ValueError(flag.name(separator) + str(exc).removeprefix(flag.field)) from None
