"""The send flow: a record becomes an entry (`_entries`), may be transformed by the payload
stage (`_staging`), is checked and measured (`_validation`), waits in its queue's accumulator
(`_accumulator`, packed by `_batching`, FIFO groups kept in order by `_fifo`), leaves in a
request the dispatcher starts (`_dispatcher`, concurrency from `_concurrency`), and its outcome
goes back through its ledger (`_ledger`). `_engine` owns all of that for one client;
`SqsSender` (bulk, `_sender`) and `SqsProducer` (streaming, `_producer`) each own an engine.
Every module here is internal: the public names are below.
"""

from ._entries import QueueField, stable_hash
from ._producer import SqsProducer
from ._sender import SqsSender

__all__ = ["QueueField", "SqsProducer", "SqsSender", "stable_hash"]
