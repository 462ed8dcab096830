"""Smoke test of the benchmark harness on a tiny scenario (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness import EndpointProcess, Scenario, ScenarioResult, run_contender

# Runs Beam pipelines, subprocesses or the benchmark endpoint (`make test-quick` skips it).
pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "contender", ["sqs_async", "aiobotocore_raw", "boto3_sequential", "boto3_threads"]
)
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_harness_accounts_for_every_message(contender: str, tls: bool) -> None:
    scenario = Scenario(latency_ms=1, body_bytes=256, max_in_flight=4, tls=tls)
    with EndpointProcess(tls=tls) as endpoint:
        result = run_contender(contender, scenario, endpoint, 200)
    assert (result.delivered, result.failed, result.lost, result.duplicates) == (200, 0, 0, 0)
    assert result.msgs_per_s > 0


def test_engine_delivers_everything_through_injected_entry_failures() -> None:
    scenario = Scenario(latency_ms=1, body_bytes=256, max_in_flight=4, fail_rate=0.3)
    with EndpointProcess() as endpoint:
        result = run_contender("sqs_async", scenario, endpoint, 300)
        stats = endpoint.stats()
    assert stats["entry_failures"] > 0
    assert (result.delivered, result.failed, result.lost, result.duplicates) == (300, 0, 0, 0)


def test_large_scenario_stores_every_body_and_resolves_every_pointer() -> None:
    """The engine through S3 on the endpoint (`--large`, tiny): one object per message, every
    pointer sent after its object and naming its size, and the large-payload table's columns."""
    from benchmarks.harness import ScenarioResult
    from benchmarks.report import large_table

    scenario = Scenario(latency_ms=1, body_bytes=4096, max_in_flight=4, s3=True)
    with EndpointProcess() as endpoint:
        result = run_contender("sqs_async", scenario, endpoint, 40)
        stats = endpoint.stats()
    assert (result.delivered, result.failed, result.lost, result.duplicates) == (40, 0, 0, 0)
    # Every message arrived as a pointer the endpoint resolved to the object holding its body.
    assert (result.objects_stored, result.objects_missing, result.objects_extra) == (40, 0, 0)
    assert (result.dangling, result.size_mismatches, result.bad_digests) == (0, 0, 0)
    assert stats["ids"] == stats["object_ids"] == [f"{i:09d}" for i in range(40)]
    assert (stats["objects"], stats["objects_deleted"]) == (40, 0)
    assert stats["stored_bytes"] == 40 * 4096
    assert result.msgs_per_s > 0

    report = large_table([ScenarioResult(scenario, {"sqs_async": result})])
    assert report is not None
    header, _, row = report.splitlines()
    for column in (
        "CPU ms / msg",
        "peak RSS MB",
        "endpoint CPU",
        "objects stored / missing / extra",
        "dangling / size mismatches / bad digests",
    ):
        assert column in header
    assert row.startswith("| lat1ms-4KiB-mif4-s3 | sqs_async |")
    assert row.endswith("| 40 / 0 / 0 (0) | 40 / 0 / 0 | 0 / 0 / 0 |")


@pytest.mark.parametrize(
    "contender",
    ["sqs_async", "aiobotocore_raw", "boto3_threads", "read_from_sqs", "sqs_to_sqs"],
)
def test_read_scenario_accounts_for_every_message(contender: str) -> None:
    """A tiny read scenario: the endpoint loads the queue, the contender reads and deletes it
    all; every message deleted exactly once (and, queue to queue, accepted once at the
    target), nothing left in the queue."""
    scenario = Scenario(latency_ms=1, body_bytes=256, max_in_flight=4, read=True)
    with EndpointProcess() as endpoint:
        result = run_contender(contender, scenario, endpoint, 200)
        stats = endpoint.stats()
    assert (result.delivered, result.failed, result.lost, result.duplicates) == (200, 0, 0, 0)
    assert (stats["deleted_unique"], stats["deleted"]) == (200, 200)
    assert (stats["available_by_queue"]["bench"], stats["held"]) == (0, 0)
    assert stats["unique"] == (200 if contender == "sqs_to_sqs" else 0)  # at the target
    assert result.msgs_per_s > 0 and result.cpu_s > 0


def test_read_rows_floors_and_targets_are_reported() -> None:
    """The read rows, Beam's floors and the targets table, from a tiny run of the harness
    (the floors run without the endpoint: their messages go nowhere)."""
    from benchmarks.harness import run_scenarios
    from benchmarks.report import floor_costs, table, targets, targets_table

    read = Scenario(latency_ms=0, body_bytes=1024, max_in_flight=4, read=True, rounds=1)
    results = run_scenarios(
        [read], seconds=0.01, contenders=("sqs_async", "aiobotocore_raw", "beam_read_floor")
    )
    send = Scenario(latency_ms=0, body_bytes=1024, max_in_flight=64, rounds=1)
    with EndpointProcess() as endpoint:
        floor = run_contender("beam_floor", send, endpoint, 200)
        assert endpoint.stats()["accepted"] == 0
    assert (floor.delivered, floor.lost, floor.cpu_s > 0) == (200, 0, True)
    rows = table(results).splitlines()[2:]
    assert [row.split(" | ")[1] for row in rows] == [
        "sqs_async",
        "aiobotocore_raw",
        "beam_read_floor",
    ]
    assert all(row.startswith("| read-lat0ms-1KiB-recv4 |") for row in rows)
    assert all(row.endswith("| 200 / 0 / 0 (0) |") for row in rows)
    # The floor of a read is reported only beside ReadFromSqs; the send floor beside the
    # adapter and the engine, with its target.
    assert floor_costs(results) is None
    engine = results[0].results["sqs_async"]  # stands in for the adapter too: shape only
    sent = ScenarioResult(send, {"sqs_async": engine, "beam_adapter": engine, "beam_floor": floor})
    goals = targets([sent, *results])
    assert [t for t, _, _ in goals] == [
        "send, 0 ms, 1 KiB, mif 64: beam_adapter CPU/msg <= beam_floor + 1.3x sqs_async"
    ]
    assert "| target |" in (targets_table(goals) or "")


def test_receive_benchmark_reads_and_deletes_every_message() -> None:
    from benchmarks import receive

    rows = receive.run(messages=300, latency_ms=1, concurrency=4)
    assert [r["contender"] for r in rows] == ["boto3_sequential", "aiobotocore_raw", "sqs_async"]
    assert all((r["messages"], r["lost"], r["deleted_twice"]) == (300, 0, 0) for r in rows)


def test_fifo_benchmark_checks_order(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import fifo

    monkeypatch.setattr(fifo, "GROUPS", (1, 5))
    monkeypatch.setattr(fifo, "MESSAGES_PER_GROUP", 20)
    rows = fifo.run(latency_ms=1, mif=4, fail_rate=0.2)
    for row in rows:
        assert row["fifo_lost"] == row["fifo10_lost"] == 0
        assert row["fifo_groups_out_of_order"] == 0  # one message per group: order kept


def test_results_go_where_out_says_and_the_committed_ones_stay(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A run once rewrote the tracked results/latest.json and its plot, even with --out."""
    import benchmarks.__main__ as bench

    committed = {p: p.read_bytes() for p in (bench.HERE / "results").iterdir()}
    monkeypatch.setattr(bench, "run_scenarios", lambda *args, **kwargs: [])
    out = tmp_path / "mine.json"
    monkeypatch.setattr(sys, "argv", ["benchmarks", "--quick", "--no-memory", "--out", str(out)])
    bench.main()
    assert json.loads(out.read_text())["scenarios"] == []
    assert {p: p.read_bytes() for p in (bench.HERE / "results").iterdir()} == committed
    assert bench.DEFAULT_OUT.parent.name == "out"  # the default is not tracked either
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(bench.DEFAULT_OUT)], cwd=bench.HERE, timeout=30
    )
    assert ignored.returncode == 0
