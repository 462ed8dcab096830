"""The examples run as a user would run them (each starts its own local server)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Runs Beam pipelines, subprocesses or the benchmark endpoint (`make test-quick` skips it).
pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return completed.stdout


def test_seed_pipeline_example_reports_100_messages() -> None:
    out = run_example("pipeline.py", "--local")
    assert "100 messages are found approximately!" in out.splitlines()


def test_engine_demo_reads_back_what_it_sent() -> None:
    out = run_example("engine_demo.py", "--count", "50")
    assert "50 messages delivered, 50 read back" in out


def test_dead_letter_pipeline_example() -> None:
    out = run_example("dead_letter_pipeline.py", "--local")
    assert "orders: 20 messages" in out and "orders-dead-letters: 1 messages" in out


def test_producer_example() -> None:
    out = run_example("producer_demo.py", "--local")
    assert "100 messages in the queue" in out


def test_routing_pipeline_example() -> None:
    out = run_example("routing_pipeline.py", "--local").splitlines()
    assert {"signup-events: 10 messages", "login-events: 10 messages"} <= set(out)
    assert "ledger.fifo: 30 messages" in out


def test_large_messages_example() -> None:
    out = run_example("large_messages.py").splitlines()
    assert out[0] == "sent 2, failed 0"
    assert any(line.startswith("3,600,000 characters, from s3://my-payloads/") for line in out)
    assert "24 characters, from SQS" in out and out[-1] == "objects left in the bucket: 0"
