"""`SqsOptions`: the seed's pipeline flags, with secrets kept out of display data and logs.

The credential flags are an escape hatch; the standard AWS credential chain (environment,
shared config, instance or task role on each worker) is the recommended way and applies when
no flag is given.

What the flags expose: a secret given as `--aws_secret_access_key` (or access key id, session
token) is stored in the options as a placeholder such as `<secret 3f9a1c2b>`, so `repr`,
`display_data()`, `DisplayData.create_from_options`, the options a runner sends to its workers
and the workers' "Discarding unparseable args" log show only the placeholder. The real value is
looked up in the submitting process when `WriteToSqs` or `ReadFromSqs` is expanded and travels
inside the pickled transform, as any transform argument does. It remains visible wherever the
command line itself is (shell history, the process list).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import re
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

from sqs_async.offload import FLAGS, add_flags, offload_from

SECRET_FLAGS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")

_vault: dict[str, str] = {}
_vault_key = os.urandom(16)


_PLACEHOLDER = re.compile(r"<secret [0-9a-f]{8}>")


def secret(value: str) -> str:
    """argparse type for a secret: keep the value in this process, return a placeholder.

    The placeholder is stable within a process (Beam parses flags many times) and says nothing
    about the value elsewhere (keyed by a random per-process key). A placeholder is never
    wrapped again, so options survive any number of re-parses and round trips
    (`PipelineOptions.from_dictionary(options.get_all_options())`).
    """
    if _PLACEHOLDER.fullmatch(value):
        return value
    digest = hmac.new(_vault_key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:8]
    placeholder = f"<secret {digest}>"
    _vault[placeholder] = value
    return placeholder


def reveal(value: Any, flag: str) -> str | None:
    """The real value behind a placeholder from `secret` (other values pass through).

    A placeholder made by another process (options parsed on the submitting machine and
    parsed again elsewhere) has no value here: that is an error, not a credential to sign with.
    """
    if value is None:
        return None
    text = str(value)
    if _PLACEHOLDER.fullmatch(text):
        if text not in _vault:
            raise ValueError(
                f"--{flag} holds {text}, a placeholder from another process; its value is "
                "known only where the flags were parsed. Expand the pipeline where the flags "
                "are given, or give workers credentials through the standard AWS chain"
            )
        return _vault[text]
    return text


def flexible_bool(value: str) -> bool | str:
    """`--verify`: true/false (any case, also 1/0, yes/no), or a path to a CA bundle."""
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    return value


class SqsOptions(PipelineOptions):
    """Pipeline flags for SQS connections (the same names as `sqs_pyio`'s)."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        # Sibling connectors (firehose_pyio, ...) define the same flag names without conflict
        # handling, and `get_all_options` puts every options class into one parser: let the
        # last definition win instead of failing with "conflicting option string", whichever
        # class comes first. argparse checks conflicts in the parser's optionals group, which
        # copied the handler when the parser was made, so both must say "resolve".
        parser.conflict_handler = "resolve"
        optionals = getattr(parser, "_optionals", None)
        if optionals is not None:
            optionals.conflict_handler = "resolve"
        parser.add_argument("--aws_access_key_id", type=secret, help="AWS access key id")
        parser.add_argument("--aws_secret_access_key", type=secret, help="AWS secret access key")
        parser.add_argument("--aws_session_token", type=secret, help="AWS session token")
        parser.add_argument("--endpoint_url", help="SQS endpoint URL (for a local server)")
        parser.add_argument("--region_name", help="AWS region, such as us-east-1")
        parser.add_argument("--api_version", help="SQS API version")
        # Kept as text in the options (read by `flexible_bool` in `sender_settings`): Beam's
        # `from_dictionary` turns a bool option into a bare flag and drops False, so a parsed
        # False would vanish on the first round trip and turn verification back on.
        parser.add_argument(
            "--verify",
            default=None,
            help="verify TLS certificates: true, false or a CA bundle path",
        )
        parser.add_argument(
            "--disable_ssl", action="store_true", default=False, help="use http, not https"
        )
        # Large messages through S3 (`sqs_async.offload`): --s3_bucket, --s3_threshold, ...
        add_flags(parser.add_argument, "_")

    def sender_settings(self) -> dict[str, Any]:
        """These flags as `SenderConfig` keywords, secrets revealed; unset flags left out;
        the `--s3_*` flags as one `payload_stage` (an `S3Offload`).

        A secret that reached the options unmasked (given as a keyword,
        `PipelineOptions(flags, aws_secret_access_key=...)`, or parsed by another package's
        definition of the same flag) is replaced by its placeholder in the options themselves
        here, when a transform is expanded, before a runner sends the options anywhere.
        """
        view: Any = self
        for name in SECRET_FLAGS:
            value = getattr(view, name)
            if value is not None:
                setattr(view, name, secret(str(value)))
        settings = {name: reveal(getattr(view, name), name) for name in SECRET_FLAGS} | {
            "endpoint_url": view.endpoint_url,
            "region_name": view.region_name,
            "api_version": view.api_version,
            "verify": None if view.verify is None else flexible_bool(str(view.verify)),
        }
        if view.disable_ssl:
            settings["use_ssl"] = False
        settings["payload_stage"] = offload_from(
            {f"s3_{flag.field}": getattr(view, f"s3_{flag.field}") for flag in FLAGS}, "_"
        )
        return {key: value for key, value in settings.items() if value is not None}
