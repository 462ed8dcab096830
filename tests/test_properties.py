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
from .faults import FaultyClient, StubClient, client_error

# A body is made unique by a prefix; its tail and validity are drawn.
tails = st.one_of(
    st.text(min_size=1, max_size=30),  # includes characters SQS refuses
    st.just(""),
    st.integers(),
)
entry_faults = st.sampled_from(["none", "none", "transient-once", "transient-always", "sender"])


def faults_by_body(fault_of: dict[str, str]) -> Any:
    """An entry fault that plays each body's drawn fault."""

    def entry_fault(body: str, attempt: int) -> tuple[str, bool] | None:
        fault = fault_of.get(body, "none")
        if fault == "sender":
            return ("InvalidParameterValue", True)
        if fault == "transient-always" or (fault == "transient-once" and attempt == 1):
            return ("InternalError", False)
        return None

    return entry_fault


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

    entry_fault = faults_by_body(fault_of)

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


class FifoLedger(StubClient):
    """A FIFO queue in memory: keeps accepted bodies in order, fails what the test says."""

    def __init__(self, entry_fault: Any, request_fault: Any, pauses: list[int]) -> None:
        self.pauses = pauses or [0]
        self.entry_fault = entry_fault
        self.request_fault = request_fault
        self.accepted: list[str] = []
        self.tries: Counter[str] = Counter()
        self.calls = 0

    async def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]:
        return {"Attributes": {"FifoQueue": "true", "ContentBasedDeduplication": "true"}}

    async def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        for _ in range(self.pauses[self.calls % len(self.pauses)]):  # finish out of order
            await asyncio.sleep(0)
        if self.request_fault(self.calls):
            raise client_error("ServiceUnavailable", 503)
        successful, failed = [], []
        for entry in kwargs["Entries"]:
            body = entry["MessageBody"]
            self.tries[body] += 1
            fault = self.entry_fault(body, self.tries[body])
            if fault is None:
                self.accepted.append(body)
                successful.append({"Id": entry["Id"], "MessageId": body})
            else:
                code, sender_fault = fault
                failed.append(
                    {"Id": entry["Id"], "Code": code, "SenderFault": sender_fault, "Message": code}
                )
        return {"Successful": successful, "Failed": failed}


@settings(max_examples=100, deadline=None)
@given(
    drawn=st.lists(
        st.tuples(st.integers(min_value=0, max_value=24), entry_faults, st.booleans()),
        min_size=20,  # enough groups for several requests at once
        max_size=120,
    ),
    failing_calls=st.sets(st.integers(min_value=1, max_value=20), max_size=5),
    max_trials=st.integers(min_value=1, max_value=3),
    pauses=st.lists(st.integers(min_value=0, max_value=6), max_size=10),
    per_group=st.sampled_from([1, 1, 2, 10]),
)
def test_fifo_groups_stay_in_order_and_halt_after_a_failure(
    drawn: list[tuple[int, str, bool]],
    failing_calls: set[int],
    max_trials: int,
    pauses: list[int],
    per_group: int,
) -> None:
    """On a FIFO queue, whatever the faults: every message ends delivered or failed exactly
    once; each group's accepted messages are in input order; and after a group's first
    failure nothing later of that group is accepted. With several messages of a group per
    request, that holds whenever the result reports nothing `reordered`."""
    records = []
    fault_of: dict[str, str] = {}
    for i, (group, fault, valid) in enumerate(drawn):
        body = f"{i}" if valid else ""  # an empty body is refused by validation
        records.append({"MessageBody": body, "MessageGroupId": f"g{group}"})
        fault_of[body] = fault

    entry_fault = faults_by_body(fault_of)

    ledger = FifoLedger(entry_fault, lambda call: call in failing_calls, pauses)

    async def send() -> Any:
        async with SqsSender(
            queue_url="https://sqs.test/1/q.fifo",
            client=ledger,
            max_in_flight=4,
            retry=RetryPolicy(max_trials=max_trials, initial_backoff=0, jitter=0),
            fifo_messages_per_group=per_group,
        ) as sender:
            return await sender.send(records)

    result = asyncio.run(send())

    outcomes = sorted([d.index for d in result.delivered] + [f.index for f in result.failed])
    assert outcomes == list(range(len(records)))
    delivered = [d.record["MessageBody"] for d in result.delivered]
    assert sorted(ledger.accepted, key=int) == sorted(delivered, key=int)
    if per_group == 1:
        assert result.reordered == 0
    elif result.reordered:
        return  # reported: SQS failed an entry and accepted a later one of its group
    failed = {f.index for f in result.failed}
    for group in {r["MessageGroupId"] for r in records}:
        indices = [i for i, r in enumerate(records) if r["MessageGroupId"] == group]
        accepted = [int(b) for b in ledger.accepted if records[int(b)]["MessageGroupId"] == group]
        assert accepted == sorted(accepted), f"group {group} out of order"
        first_failure = min((i for i in indices if i in failed), default=None)
        if first_failure is not None:
            assert all(i < first_failure for i in accepted), f"group {group} went on"
