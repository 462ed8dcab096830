"""The receive flow: polls fill a bounded buffer (`_polling`, which also finds the queue
empty), held messages are kept invisible while the caller works on them (`_keeper`), and acks
delete them in batches, as releases and extensions are made (`_acks`, each call on a
connection of its own beside the polls'); the payload stage's receive hooks run in `_stages`,
throttled time is counted in `_throttling`, and the values handed out and reported are in
`_messages`. `SqsReceiver` (`_receiver`) owns all of that for one client. Every module here is
internal: the public names are below.
"""

from ._messages import AckResult, ReceivedMessage, ReceiverStats
from ._receiver import SqsReceiver

__all__ = ["AckResult", "ReceivedMessage", "ReceiverStats", "SqsReceiver"]
