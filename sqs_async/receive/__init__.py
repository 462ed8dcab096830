"""The receive flow: polls fill a bounded buffer, held messages are kept invisible while the
caller works on them, and acks delete them in batches. Every module here is internal: the
public names are below.
"""

from ._receiver import AckResult, ReceivedMessage, ReceiverStats, SqsReceiver

__all__ = ["AckResult", "ReceivedMessage", "ReceiverStats", "SqsReceiver"]
