"""Deprecated: the local server moved to `sqs_async.testing`; this alias goes in 0.3."""

from __future__ import annotations

from .testing import LOCAL_CREDENTIALS, moved

LocalSqsServer = moved("sqs_async.local")

__all__ = ["LOCAL_CREDENTIALS", "LocalSqsServer"]
