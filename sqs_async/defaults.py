"""SQS's limits and the engine's defaults, each defined once.

Every other place (the configs, the Beam transforms, the command line, the README's reference)
reads them from here, so a default shown to a user is the default in force.
"""

from __future__ import annotations

# SQS's limits.
MAX_BATCH_ENTRIES = 10  # entries per batch call, messages per ReceiveMessage
MAX_MESSAGE_BYTES = 1_048_576  # per message and per SendMessageBatch request (since 2025)
MAX_ATTRIBUTES = 10  # message attributes per message
MAX_DELAY_SECONDS = 900
MAX_WAIT_SECONDS = 20  # long polling
MAX_VISIBILITY_SECONDS = 43_200  # 12 hours
MIN_VISIBILITY_SECONDS = 3  # ours: a keeper extending every half of it needs some time
FIFO_REQUESTS_PER_SECOND = 300.0  # a FIFO queue's request quota without high throughput

# The engine's defaults.
MAX_IN_FLIGHT = 16  # concurrent requests of a sender (and its connection pool)
MAX_TRIALS = 3  # attempts per message or receipt handle, the first included
WAIT_SECONDS = MAX_WAIT_SECONDS  # a receiver long-polls as long as SQS allows
# A poll's wait when nothing says messages are coming (a receiver just started, a queue found
# empty): what is open on SQS when polling stops then ends within this. Still long polling
# (above 0, SQS asks all its servers), so an empty answer is one.
SHORT_WAIT_SECONDS = 1
VISIBILITY_SECONDS = 30  # a received message's visibility timeout, extended while held
CONCURRENT_RECEIVES = 2
SPARE_CONNECTIONS = 4  # a receiver's ack calls beyond one per poll: deletes, visibility changes
PREFETCH = 100
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
