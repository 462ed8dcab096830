"""The counters of a send, declared once in `SendResult`: `absorb` adds every one of them,
and the CLI's `send` summary shows those that are not 0 (the Beam sink's metrics are tested
in test_beam_metrics.py)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from sqs_async import Delivered, Failed, SendResult
from sqs_async.cli import Status, main
from sqs_async.cli import send as cli_send
from sqs_async.cli.report import counters_line
from sqs_async.results import COUNTERS
from sqs_async.testing import LocalSqsServer

# The fields of a SendResult that are outcomes, not counters.
OUTCOMES = {"delivered", "failed"}


def filled(seed: int) -> SendResult:
    """A SendResult with every declared counter set, each to its own value."""
    result = SendResult()
    for number, declared in enumerate(COUNTERS, start=1):
        value = seed * 100 + number
        if declared.distribution:
            setattr(result, declared.name, [value / 1000, value / 100])
        elif isinstance(getattr(result, declared.name), float):
            setattr(result, declared.name, value + 0.25)
        else:
            setattr(result, declared.name, value)
    return result


def test_every_field_is_an_outcome_or_a_declared_counter() -> None:
    """A field added to SendResult without `metadata=counter(...)` would be left out of
    `absorb`, the Beam metrics and the CLI's summary."""
    declared = {c.name for c in COUNTERS}
    assert {f.name for f in fields(SendResult)} - OUTCOMES == declared
    assert not declared & OUTCOMES
    for c in COUNTERS:
        assert c.metric and c.description and c.scale >= 1
    metrics = [c.metric for c in COUNTERS]
    assert len(set(metrics)) == len(metrics)


# Today's counters and the metrics they are reported as: dashboards read these names.
KEPT = {
    "delivered_count": ("messages_sent", 1, False),
    "requests": ("batches", 1, False),
    "retried": ("messages_retried", 1, False),
    "throttled": ("throttled", 1, False),
    "bytes_delivered": ("bytes_sent", 1, False),
    "latencies": ("batch_latency_ms", 1000, True),
    "throttled_seconds": ("throttled_ms", 1000, False),
    "possible_duplicates": ("possible_duplicates", 1, False),
    "reordered": ("reordered", 1, False),
}


def test_the_metric_names_dashboards_read_are_kept() -> None:
    declared = {c.name: (c.metric, c.scale, c.distribution) for c in COUNTERS}
    assert KEPT.items() <= declared.items()  # a new counter adds to them


@pytest.mark.parametrize("keep_delivered", [True, False])
def test_absorb_adds_every_declared_counter(keep_delivered: bool) -> None:
    first, second = filled(1), filled(2)
    first.delivered = [Delivered("a", 0, "m-a", 1)]
    first.failed = [Failed("b", 1, "Code", "why", True, 1)]
    second.delivered = [Delivered("c", 2, "m-c", 2)]
    second.failed = [Failed("d", 3, "Other", "why", False, 3)]
    total = SendResult()
    total.absorb(first, keep_delivered=keep_delivered)
    total.absorb(second, keep_delivered=keep_delivered)
    for declared in COUNTERS:
        name = declared.name
        expected = getattr(first, name) + getattr(second, name)  # sum, or lists concatenated
        assert getattr(total, name) == expected, name
    assert total.failed == first.failed + second.failed  # always kept
    assert total.delivered == (first.delivered + second.delivered if keep_delivered else [])
    assert total.total == total.delivered_count + 2


def test_counters_are_the_summed_counters_by_name() -> None:
    result = filled(3)
    assert result.counters() == {
        c.name: getattr(result, c.name) for c in COUNTERS if not c.distribution
    }
    assert list(result.counters()) == [c.name for c in COUNTERS if not c.distribution]
    assert "latencies" not in result.counters()
    assert set(SendResult().counters().values()) == {0}


def test_the_counters_line_shows_what_is_not_zero() -> None:
    line = counters_line(
        SendResult(
            delivered_count=9, requests=3, retried=0, possible_duplicates=2, throttled_seconds=0.5
        ).counters()
    )
    assert line == "  requests 3, throttled seconds 0.50, possible duplicates 2"
    assert counters_line(SendResult(delivered_count=9).counters()) == ""  # told by "sent 9"
    assert counters_line({}) == ""


def send(
    capsys: pytest.CaptureFixture[str], server: LocalSqsServer, queue_url: str, path: Path
) -> tuple[int, str]:
    local = ["--endpoint-url", server.endpoint_url, "--region", "us-east-1"]
    status = main(["send", queue_url, str(path), *local])
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return status, err


def producer_with_stats(stats: SendResult) -> Any:
    """The CLI's producer, telling `stats` as its counters (as `SqsProducer.stats` does)."""

    class WithStats(cli_send.SqsProducer):
        @property
        def stats(self) -> SendResult:
            return stats

    return WithStats


def test_send_shows_the_producer_s_counters_below_its_first_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    aws_env: None,
    server: LocalSqsServer,
    queue_url: str,
    tmp_path: Path,
) -> None:
    stats = SendResult(delivered_count=3, requests=2, retried=1, possible_duplicates=1)
    monkeypatch.setattr(cli_send, "SqsProducer", producer_with_stats(stats))
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(f"m{i}") + "\n" for i in range(3)))
    status, err = send(capsys, server, queue_url, path)
    assert status == Status.OK
    assert after_first_line(err, "sent 3, failed 0 in ") == [
        "  requests 2, retried 1, possible duplicates 1"
    ]


def after_first_line(err: str, first: str) -> list[str]:
    """The summary's lines after its first line (which starts with `first`)."""
    lines = err.splitlines()
    [at] = [n for n, line in enumerate(lines) if line.startswith(first)]
    return lines[at + 1 :]


def test_send_shows_the_requests_it_made(
    capsys: pytest.CaptureFixture[str],
    aws_env: None,
    server: LocalSqsServer,
    queue_url: str,
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(f"m{i}") + "\n" for i in range(25)))
    status, err = send(capsys, server, queue_url, path)
    assert status == Status.OK
    [counters] = after_first_line(err, "sent 25, failed 0 in ")
    shown = dict(item.rsplit(" ", 1) for item in counters.strip().split(", "))
    assert int(shown["requests"]) >= 3  # 25 messages, 10 a request
    assert int(shown["bytes delivered"]) == sum(len(f"m{i}") for i in range(25))


def test_send_adds_no_line_when_every_counter_is_zero_or_untold(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    aws_env: None,
    server: LocalSqsServer,
    queue_url: str,
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('"m"\n')
    monkeypatch.setattr(cli_send, "SqsProducer", producer_with_stats(SendResult()))
    status, err = send(capsys, server, queue_url, path)
    assert status == Status.OK and after_first_line(err, "sent 1, failed 0 in ") == []

    class WithoutStats(cli_send.SqsProducer):  # a producer that tells no counters
        def __getattribute__(self, name: str) -> Any:
            if name == "stats":
                raise AttributeError(name)
            return super().__getattribute__(name)

    monkeypatch.setattr(cli_send, "SqsProducer", WithoutStats)
    status, err = send(capsys, server, queue_url, path)
    assert status == Status.OK and after_first_line(err, "sent 1, failed 0 in ") == []
