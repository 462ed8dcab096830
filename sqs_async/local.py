"""Deprecated: the local server moved to `sqs_async.testing`; this alias goes in 0.3."""

from __future__ import annotations

import warnings

from .testing import LOCAL_CREDENTIALS, LocalSqsServer

warnings.warn(
    "sqs_async.local is deprecated: import LocalSqsServer from sqs_async.testing",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["LOCAL_CREDENTIALS", "LocalSqsServer"]
