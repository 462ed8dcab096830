"""Packing by count and by bytes, in input order."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from sqs_async.send._batching import Batch, BatchPacker
from sqs_async.send._validation import OutgoingMessage


def message(index: int, size: int) -> OutgoingMessage:
    return OutgoingMessage(record=index, index=index, fields={}, size=size)


def pack(sizes: list[int], max_bytes: int) -> list[Batch]:
    packer = BatchPacker(max_bytes=max_bytes)
    batches = [b for i, s in enumerate(sizes) if (b := packer.add(message(i, s))) is not None]
    last = packer.flush()
    return batches + ([last] if last else [])


def test_ten_per_batch_by_count() -> None:
    batches = pack([1] * 25, max_bytes=1000)
    assert [len(b.messages) for b in batches] == [10, 10, 5]


def test_batches_close_on_bytes() -> None:
    batches = pack([400, 400, 400, 100, 100], max_bytes=1000)
    assert [[m.index for m in b.messages] for b in batches] == [[0, 1], [2, 3, 4]]
    assert [b.size for b in batches] == [800, 600]


def test_a_message_of_exactly_the_limit_goes_alone() -> None:
    batches = pack([1, 1000, 1], max_bytes=1000)
    assert [[m.index for m in b.messages] for b in batches] == [[0], [1], [2]]


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=300), max_size=200),
    max_bytes=st.integers(min_value=300, max_value=2000),
)
def test_packing_keeps_order_and_limits(sizes: list[int], max_bytes: int) -> None:
    batches = pack(sizes, max_bytes)
    assert [m.index for b in batches for m in b.messages] == list(range(len(sizes)))
    for batch in batches:
        assert 1 <= len(batch.messages) <= 10
        assert batch.size == sum(m.size for m in batch.messages) <= max_bytes
    # Greedy: a batch closed early for bytes could not have taken the next message.
    for batch, following in itertools.pairwise(batches):
        if len(batch.messages) < 10:
            assert batch.size + following.messages[0].size > max_bytes
