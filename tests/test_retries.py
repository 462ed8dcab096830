"""Retries: only what failed is sent again, with backoff; permanent failures are not retried.

Faults are injected by a wrapper around the real client; messages that get through land on
the local server and are read back.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from sqs_async import RetryPolicy, SqsClientError, SqsSender
from sqs_async.errors import MISSING_RESULT, explain
from sqs_async.retry import Sleep

from .conftest import RecordingSleep, bodies, make_queue
from .faults import FaultyClient, client_error

POLICY = RetryPolicy(max_trials=4, initial_backoff=0.1, max_backoff=1.0, jitter=0.05)


@pytest.fixture(params=["lean", "botocore"])
def wire(request: pytest.FixtureRequest) -> str:
    """The tests here hold on both wire paths (`sqs_async.wire`): each runs on each."""
    return str(request.param)


@pytest.fixture
def settings(server: Any, wire: str) -> dict[str, Any]:
    """The local server's settings, on this test's wire path."""
    return {**server.client_settings, "wire": wire}


def sender(client: Any, queue_url: str, sleep: Sleep, **settings: Any) -> SqsSender:
    settings.setdefault("retry", POLICY)
    return SqsSender(queue_url=queue_url, client=client, sleep=sleep, **settings)


async def test_entries_failing_transiently_are_retried_alone_until_delivered(
    real_client: Any, sync_client: Any, queue_url: str, sleep: RecordingSleep
) -> None:
    # m3 fails twice, m5 three times (SenderFault=false, as SQS reports internal errors).
    fail_for = {"m3": 2, "m5": 3}
    faulty = FaultyClient(
        real_client,
        entry_fault=lambda body, attempt: (
            ("InternalError", False) if attempt <= fail_for.get(body, 0) else None
        ),
    )
    messages = [f"m{i}" for i in range(10)]
    async with sender(faulty, queue_url, sleep) as s:
        result = await s.send(messages)

    assert result.failed == []
    attempts = {d.record: d.attempts for d in result.delivered}
    assert attempts == {m: 1 + fail_for.get(m, 0) for m in messages}
    # Only the failed entries went out again.
    assert faulty.calls == [messages, ["m3", "m5"], ["m3", "m5"], ["m5"]]
    assert result.retried == 5 and result.requests == 4  # entries sent again: 2 + 2 + 1
    # Exponential backoff with jitter: 0.1, 0.2, 0.4 (+ up to 0.05 each).
    assert len(sleep.waits) == 3
    for wait, base in zip(sleep.waits, [0.1, 0.2, 0.4], strict=True):
        assert base <= wait <= base + 0.05
    assert sorted(bodies(sync_client, queue_url)) == sorted(messages)


async def test_entries_still_failing_after_max_trials_are_failed(
    real_client: Any, sync_client: Any, queue_url: str, sleep: RecordingSleep
) -> None:
    faulty = FaultyClient(
        real_client,
        entry_fault=lambda body, _: ("KMS.ThrottlingException", False) if body == "bad" else None,
    )
    async with sender(faulty, queue_url, sleep) as s:
        result = await s.send(["ok", "bad"])

    [failed] = result.failed
    assert (failed.record, failed.code, failed.sender_fault, failed.attempts) == (
        "bad",
        "KMS.ThrottlingException",
        False,
        4,
    )
    assert faulty.tries["bad"] == 4
    assert result.throttled == 4
    assert bodies(sync_client, queue_url) == ["ok"]


async def test_sender_fault_entries_are_tried_once(
    real_client: Any, sync_client: Any, queue_url: str, sleep: RecordingSleep
) -> None:
    faulty = FaultyClient(
        real_client,
        entry_fault=lambda body, _: ("InvalidParameterValue", True) if body == "bad" else None,
    )
    async with sender(faulty, queue_url, sleep) as s:
        result = await s.send(["a", "bad", "b"])

    [failed] = result.failed
    assert (failed.record, failed.code, failed.sender_fault, failed.attempts) == (
        "bad",
        "InvalidParameterValue",
        True,
        1,
    )
    assert faulty.tries["bad"] == 1
    assert sleep.waits == []
    assert sorted(bodies(sync_client, queue_url)) == ["a", "b"]


async def test_failures_are_matched_to_their_records_when_results_come_out_of_order(
    real_client: Any, sync_client: Any, queue_url: str, sleep: RecordingSleep
) -> None:
    faulty = FaultyClient(
        real_client,
        entry_fault=lambda body, _: (f"Code-{body}", True) if body.startswith("bad") else None,
        reverse_results=True,
    )
    records = [{"Id": "same", "MessageBody": b} for b in ["ok1", "bad1", "ok2", "bad2", "bad3"]]
    async with sender(faulty, queue_url, sleep) as s:
        result = await s.send(records)

    assert {f.record["MessageBody"]: f.code for f in result.failed} == {
        "bad1": "Code-bad1",
        "bad2": "Code-bad2",
        "bad3": "Code-bad3",
    }
    assert all(records[f.index] is f.record for f in result.failed)
    assert all(records[d.index] is d.record for d in result.delivered)
    assert sorted(bodies(sync_client, queue_url)) == ["ok1", "ok2"]


@pytest.mark.parametrize(
    "fault",
    [
        client_error("ThrottlingException"),
        client_error("RequestThrottled", status=403),
        client_error("ServiceUnavailable", status=503),
        client_error("InternalError", status=500),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
    ],
    ids=lambda exc: (
        type(exc).__name__
        + ":"
        + str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    ),
)
async def test_transient_request_failures_are_retried(
    fault: Exception, real_client: Any, sync_client: Any, queue_url: str, sleep: RecordingSleep
) -> None:
    faulty = FaultyClient(real_client, request_fault=lambda call: fault if call <= 2 else None)
    async with sender(faulty, queue_url, sleep) as s:
        result = await s.send(["a", "b", "c"])

    assert result.failed == []
    assert [d.attempts for d in result.delivered] == [3, 3, 3]
    assert len(sleep.waits) == 2
    assert sorted(bodies(sync_client, queue_url)) == ["a", "b", "c"]


async def test_throttling_beyond_max_trials_fails_every_entry_with_the_code(
    real_client: Any, sync_client: Any, queue_url: str, sleep: RecordingSleep
) -> None:
    faulty = FaultyClient(real_client, request_fault=lambda _: client_error("ThrottlingException"))
    async with sender(faulty, queue_url, sleep) as s:
        result = await s.send(["a", "b"])

    assert result.delivered == []
    assert {(f.code, f.sender_fault, f.attempts) for f in result.failed} == {
        ("ThrottlingException", False, 4)
    }
    assert result.throttled == 4 and result.requests == 4
    assert bodies(sync_client, queue_url) == []


async def test_a_hanging_request_times_out_and_is_retried(
    real_client: Any, sync_client: Any, queue_url: str, sleep: RecordingSleep
) -> None:
    faulty = FaultyClient(real_client, request_fault=lambda call: "hang" if call == 1 else None)
    async with sender(faulty, queue_url, sleep, connect_timeout=0.1, read_timeout=0.2) as s:
        result = await s.send(["a", "b"])

    assert result.failed == []
    assert [d.attempts for d in result.delivered] == [2, 2]
    assert sorted(bodies(sync_client, queue_url)) == ["a", "b"]


async def test_requests_that_always_hang_end_failed_with_a_timeout(
    real_client: Any, queue_url: str, sleep: RecordingSleep
) -> None:
    faulty = FaultyClient(real_client, request_fault=lambda _: "hang")
    async with sender(
        faulty, queue_url, sleep, connect_timeout=0.05, read_timeout=0.05, max_trials=2
    ) as s:
        result = await s.send(["a"])

    [failed] = result.failed
    assert (failed.code, failed.attempts, failed.sender_fault) == ("TimeoutError", 2, False)


async def test_whole_request_rejection_is_isolated_to_the_bad_entry(
    settings: dict[str, Any], sync_client: Any, sleep: RecordingSleep
) -> None:
    # The queue allows 1 KiB, but the sender is told 4 KiB: the server rejects the whole
    # request for one message, and the engine sends the entries one by one to find it.
    queue_url = make_queue(sync_client, MaximumMessageSize="1024")
    async with SqsSender(queue_url=queue_url, max_message_bytes=4096, sleep=sleep, **settings) as s:
        result = await s.send(["small-1", "x" * 2000, "small-2"])

    [failed] = result.failed
    assert failed.index == 1 and failed.sender_fault
    assert failed.code == "InvalidParameterValue"
    assert sorted(d.record for d in result.delivered) == ["small-1", "small-2"]
    assert sorted(bodies(sync_client, queue_url)) == ["small-1", "small-2"]


async def test_missing_entry_result_is_retried(
    real_client: Any, sync_client: Any, queue_url: str, sleep: RecordingSleep
) -> None:
    class DropsResult(FaultyClient):
        """Accepts nothing for "lost" on its first try and reports nothing for it."""

        async def _send(self, queue_url: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
            if self.tries["lost"] == 0 and any(e["MessageBody"] == "lost" for e in entries):
                self.tries["lost"] += 1
                entries = [e for e in entries if e["MessageBody"] != "lost"]
            return await super()._send(queue_url, entries)

    faulty = DropsResult(real_client)
    async with sender(faulty, queue_url, sleep) as s:
        result = await s.send(["a", "lost"])

    assert result.failed == []
    assert {d.record: d.attempts for d in result.delivered} == {"a": 1, "lost": 2}
    assert sorted(bodies(sync_client, queue_url)) == ["a", "lost"]
    assert MISSING_RESULT == "MissingResult"


@pytest.mark.parametrize("code", ["AccessDenied", "InvalidClientTokenId"])
async def test_permanent_queue_errors_raise_at_once(
    code: str, real_client: Any, queue_url: str, sleep: RecordingSleep
) -> None:
    faulty = FaultyClient(real_client, request_fault=lambda _: client_error(code, status=403))
    async with sender(faulty, queue_url, sleep) as s:
        with pytest.raises(SqsClientError) as raised:
            await s.send([f"m{i}" for i in range(50)])

    assert raised.value.code == code
    assert queue_url in str(raised.value)
    assert sleep.waits == []
    assert len(faulty.calls) <= s.config.max_in_flight  # no retries, no further batches


async def test_sending_to_a_missing_queue_raises_an_actionable_error(
    settings: dict[str, Any], server: Any
) -> None:
    missing = f"{server.endpoint_url}/123456789012/no-such-queue"
    async with SqsSender(queue_url=missing, **settings) as s:
        with pytest.raises(SqsClientError) as raised:
            await s.send(["a"])
    assert "NonExistentQueue" in raised.value.code or "QueueDoesNotExist" in raised.value.code
    assert "check the queue name or URL" in str(raised.value)


async def test_opening_with_a_missing_queue_name_raises(settings: dict[str, Any]) -> None:
    with pytest.raises(SqsClientError) as raised:
        async with SqsSender(queue_name="no-such-queue", **settings):
            pass  # pragma: no cover - opening fails
    assert "no-such-queue" in str(raised.value)


async def test_unreadable_queue_attributes_fall_back_to_defaults(
    real_client: Any, sync_client: Any, queue_url: str, sleep: RecordingSleep
) -> None:
    class NoAttributes(FaultyClient):
        async def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]:
            raise client_error("AccessDenied", 403, "GetQueueAttributes")

    async with sender(NoAttributes(real_client), queue_url, sleep) as s:
        assert s.traits.max_message_bytes == 1_048_576
        result = await s.send(["a"])
    assert len(result.delivered) == 1
    assert bodies(sync_client, queue_url) == ["a"]


async def test_a_borrowed_client_stays_open(
    real_client: Any, sync_client: Any, queue_url: str, sleep: RecordingSleep
) -> None:
    async with sender(real_client, queue_url, sleep) as s:
        await s.send(["a"])
    # Still usable after the sender closed.
    await real_client.send_message_batch(
        QueueUrl=queue_url, Entries=[{"Id": "0", "MessageBody": "b"}]
    )
    assert sorted(bodies(sync_client, queue_url)) == ["a", "b"]


async def test_a_retried_entry_rides_with_fresh_messages(
    real_client: Any, sync_client: Any, queue_url: str
) -> None:
    """m0 fails once; once its backoff has passed it leaves with the next request that has
    room (the last, partly filled one), not in a request of its own."""
    backed_off = asyncio.Event()

    async def backoff(seconds: float) -> None:  # no wall clock: it passes at once
        backed_off.set()

    class SecondAnswerAfterTheBackoff(FaultyClient):
        async def send_message_batch(self, **kwargs: Any) -> Any:
            if len(self.calls) == 1:  # the second request ends once m0 is back to be sent
                async with asyncio.timeout(30):  # ends a hang; never decides a pass
                    await backed_off.wait()
            return await super().send_message_batch(**kwargs)

    faulty = SecondAnswerAfterTheBackoff(
        real_client,
        entry_fault=lambda body, attempt: (
            ("InternalError", False) if body == "m0" and attempt == 1 else None
        ),
    )
    messages = [f"m{i}" for i in range(25)]
    async with sender(faulty, queue_url, backoff, max_in_flight=1) as s:
        result = await s.send(messages)

    assert result.failed == [] and result.requests == 3 and result.retried == 1
    first, second, third = faulty.calls
    assert (first, second) == (messages[:10], messages[10:20])
    assert sorted(third) == sorted([*messages[20:], "m0"])  # the retry and the last five
    assert sorted(bodies(sync_client, queue_url)) == sorted(messages)


def test_an_access_error_names_the_permissions_of_the_work() -> None:
    sending = explain("AccessDenied", "denied", "q")
    receiving = explain("AccessDeniedException", "denied", "q", work="receive")
    assert "sqs:SendMessage" in sending and "sqs:ReceiveMessage" not in sending
    assert "sqs:ReceiveMessage" in receiving and "sqs:SendMessage" not in receiving


def test_the_retry_policy_backs_off_by_tenacity_and_stops_after_max_trials() -> None:
    policy = RetryPolicy(max_trials=3, initial_backoff=0.1, max_backoff=1.0, jitter=0.05)
    first, second = policy.backoff(1), policy.backoff(2)
    assert first is not None and 0.1 <= first <= 0.15
    assert second is not None and 0.2 <= second <= 0.25
    assert policy.backoff(3) is None  # three attempts made: no fourth
    clock = iter([100.0]).__next__
    assert policy.backoff(1, deadline_at=100.05, clock=clock) is None  # would start too late


async def test_tenacity_takes_over_from_a_first_attempt_made_outside_it() -> None:
    """The first attempt runs without tenacity; when it fails, tenacity counts it as its own
    attempt 1: the same number of attempts, the same waits, the same give-up."""
    policy = RetryPolicy(max_trials=3, initial_backoff=0.1, max_backoff=1.0, jitter=0.0)
    transient = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    sleep = RecordingSleep()
    made = 0

    async def failing() -> None:
        nonlocal made
        made += 1
        raise transient

    with pytest.raises(EndpointConnectionError):
        await policy.retrying_call(sleep=sleep)(failing)
    assert made == 3 and sleep.waits == [0.1, 0.2]

    answers = iter([["a", "b"], ["b"], []])  # entries still to retry after each attempt
    retried = RecordingSleep()

    async def partly() -> list[str]:
        return next(answers)

    await policy.retrying_entries(sleep=retried, on_give_up=lambda state: pytest.fail())(partly)
    assert next(answers, "none left") == "none left" and retried.waits == [0.1, 0.2]

    gave_up: list[int] = []

    async def always_one_left() -> list[str]:
        return ["a"]

    await policy.retrying_entries(
        sleep=RecordingSleep(), on_give_up=lambda state: gave_up.append(state.attempt_number)
    )(always_one_left)
    assert gave_up == [3]

    at_once = RecordingSleep()

    async def fine() -> str:
        return "done"

    assert await policy.retrying_forever(sleep=at_once)(fine) == "done" and at_once.waits == []
