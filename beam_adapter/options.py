"""`SqsOptions`: the seed's pipeline flags, with secrets kept out of display data and logs.

The credential flags are an escape hatch; the standard AWS credential chain (environment,
shared config, instance or task role on each worker) is the recommended way and applies when
no flag is given.

What the flags expose: a secret given as `--aws_secret_access_key` (or access key id, session
token) is stored in the options as a placeholder such as `<secret 3f9a1c2b>`, so `repr`,
`display_data()`, `DisplayData.create_from_options`, the options a runner sends to its workers
and the workers' "Discarding unparseable args" log show only the placeholder. The real value is
looked up in the submitting process when `WriteToSqs` is expanded and travels inside the
pickled transform, as any transform argument does. It remains visible wherever the command line
itself is (shell history, the process list).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

SECRET_FLAGS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")

_vault: dict[str, str] = {}
_vault_key = os.urandom(16)


def secret(value: str) -> str:
    """argparse type for a secret: keep the value in this process, return a placeholder.

    The placeholder is stable within a process (Beam parses flags many times) and says nothing
    about the value elsewhere (keyed by a random per-process key).
    """
    digest = hmac.new(_vault_key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:8]
    placeholder = f"<secret {digest}>"
    _vault[placeholder] = value
    return placeholder


def reveal(value: Any) -> str | None:
    """The real value behind a placeholder from `secret` (other values pass through)."""
    if value is None:
        return None
    return _vault.get(str(value), str(value))


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
        # Sibling connectors (firehose_pyio, ...) define the same flag names: let the last
        # definition win instead of failing with "conflicting option string".
        parser.conflict_handler = "resolve"
        parser.add_argument("--aws_access_key_id", type=secret, help="AWS access key id")
        parser.add_argument("--aws_secret_access_key", type=secret, help="AWS secret access key")
        parser.add_argument("--aws_session_token", type=secret, help="AWS session token")
        parser.add_argument("--endpoint_url", help="SQS endpoint URL (for a local server)")
        parser.add_argument("--region_name", help="AWS region, such as us-east-1")
        parser.add_argument("--api_version", help="SQS API version")
        parser.add_argument(
            "--verify",
            type=flexible_bool,
            default=None,
            help="verify TLS certificates: true, false or a CA bundle path",
        )
        parser.add_argument(
            "--disable_ssl", action="store_true", default=False, help="use http, not https"
        )

    def sender_settings(self) -> dict[str, Any]:
        """These flags as `SenderConfig` keywords, secrets revealed; unset flags left out."""
        view: Any = self
        settings = {
            "aws_access_key_id": reveal(view.aws_access_key_id),
            "aws_secret_access_key": reveal(view.aws_secret_access_key),
            "aws_session_token": reveal(view.aws_session_token),
            "endpoint_url": view.endpoint_url,
            "region_name": view.region_name,
            "api_version": view.api_version,
            "verify": view.verify,
        }
        if view.disable_ssl:
            settings["use_ssl"] = False
        return {key: value for key, value in settings.items() if value is not None}
