"""Property: whatever the messages and the faults, every input ends delivered or failed exactly
once, and every delivered message is on the queue exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from aiobotocore.session import get_session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqs_async import RetryPolicy, SqsSender

from .conftest import bodies, make_queue
from .faults import FaultyClient, client_error

# A body is made unique by a prefix; its tail and validity are drawn.
tails = st.one_of(
    st.text(min_size=1, max_size=30),  # includes characters SQS refuses
    st.just(""),
    st.integers(),
)
entry_faults = st.sampled_from(["none", "none", "transient-once", "transient-always", "sender"])


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    drawn=st.lists(st.tuples(tails, entry_faults, st.booleans()), max_size=30),
    throttled_calls=st.sets(st.integers(min_value=1, max_value=8), max_size=3),
    max_trials=st.integers(min_value=1, max_value=3),
)
def test_every_message_is_accounted_for_exactly_once(
    drawn: list[tuple[Any, str, bool]],
    throttled_calls: set[int],
    max_trials: int,
    sync_client: Any,
    settings: dict[str, Any],
) -> None:
    queue_url = make_queue(sync_client)
    records: list[Any] = []
    fault_of: dict[str, str] = {}
    for i, (tail, fault, as_dict) in enumerate(drawn):
        body: Any = tail if isinstance(tail, int) else (f"{i}:{tail}" if tail else "")
        records.append({"Id": "x", "MessageBody": body} if as_dict else body)
        if isinstance(body, str):
            fault_of[body] = fault

    def entry_fault(body: str, attempt: int) -> tuple[str, bool] | None:
        fault = fault_of.get(body, "none")
        if fault == "sender":
            return ("InvalidParameterValue", True)
        if fault == "transient-always" or (fault == "transient-once" and attempt == 1):
            return ("InternalError", False)
        return None

    async def run() -> Any:
        async with get_session().create_client("sqs", **settings) as real:
            faulty = FaultyClient(
                real,
                entry_fault=entry_fault,
                request_fault=lambda call: (
                    client_error("ThrottlingException") if call in throttled_calls else None
                ),
            )
            policy = RetryPolicy(max_trials=max_trials, initial_backoff=0, jitter=0)
            async with SqsSender(
                queue_url=queue_url, client=faulty, retry=policy, max_in_flight=3
            ) as sender:
                return await sender.send(records)

    result = asyncio.run(run())

    indices = [d.index for d in result.delivered] + [f.index for f in result.failed]
    assert sorted(indices) == list(range(len(records)))
    for outcome in [*result.delivered, *result.failed]:
        assert outcome.record is records[outcome.index]
    delivered = Counter(
        r if isinstance(r, str) else r["MessageBody"] for r in (d.record for d in result.delivered)
    )
    assert Counter(bodies(sync_client, queue_url)) == delivered
    for failed in result.failed:
        assert failed.code and failed.message
