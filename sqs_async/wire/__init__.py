"""The wire: the client the engine talks to (opened here, or borrowed), queue look-ups, the
lean path of the hot calls, and the reading of batch answers. One seam, as httpx's
`_transports/`: sending and receiving ask it for calls and never build a client themselves.

Offered to adapters and tests: `SqsClient` and `SqsReceiveClient` (the interfaces a client
passed in must meet), `QueueTraits` (what a payload stage is told of the queue), `open_client`
and `on_wire`. The other names are here for `send/`, `receive/` and `offload/`: internal to the
engine.
"""

from ._answers import WIRE_IDS, EntryError, read_answer
from ._client import SqsClient, SqsReceiveClient, client_for, connection_settings, open_client
from ._lean import on_wire
from ._queues import QueueTraits, read_queue_traits, resolve_queue_url

__all__ = [
    "WIRE_IDS",
    "EntryError",
    "QueueTraits",
    "SqsClient",
    "SqsReceiveClient",
    "client_for",
    "connection_settings",
    "on_wire",
    "open_client",
    "read_answer",
    "read_queue_traits",
    "resolve_queue_url",
]
