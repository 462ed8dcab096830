"""The `sqs-async` command line, end to end against the local server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from sqs_async.testing import LOCAL_CREDENTIALS, LocalSqsServer

from .conftest import drain, make_queue, stored_bodies, wait_until_visible

# Runs Beam pipelines, subprocesses or the benchmark endpoint (`make test-quick` skips it).
pytestmark = pytest.mark.integration


def wait_for(condition: Any, *, while_running: Any = None) -> None:
    """Poll `condition` until it holds; fail if `while_running` (a process) ends first. The
    deadline only ends a hang on a loaded machine; it never decides a pass."""
    deadline = time.monotonic() + 120
    while not condition():
        assert time.monotonic() < deadline, f"not met within 120 s: {condition}"
        assert while_running is None or while_running.poll() is None, "the command ended"
        time.sleep(0.02)


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return subprocess.run(
        [sys.executable, "-m", "sqs_async", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_send_delivers_good_lines_and_reports_bad_ones(
    server: LocalSqsServer, queue_url: str, tmp_path: Path
) -> None:
    lines = [
        '"plain body"',
        '{"Id": "7", "MessageBody": "seed record"}',
        "{not json",
        '{"MessageBody": ""}',
        "",
        '{"MessageBody": "with attribute", "MessageAttributes": '
        '{"k": {"DataType": "String", "StringValue": "v"}}}',
        "42",
    ]
    source = tmp_path / "messages.jsonl"
    source.write_text("\n".join(lines) + "\n")
    failed = tmp_path / "failed.jsonl"
    result = run_cli(
        "send",
        queue_url,
        str(source),
        "--endpoint-url",
        server.endpoint_url,
        "--region",
        "us-east-1",
        "--failed",
        str(failed),
    )

    assert result.returncode == 1, result.stderr
    assert "sent 3, failed 3" in result.stderr
    assert sorted(b for b, _ in stored_bodies(queue_url)) == [
        "plain body",
        "seed record",
        "with attribute",
    ]
    rows = [json.loads(line) for line in failed.read_text().splitlines()]
    assert {row["line"]: row["error"]["Code"] for row in rows} == {
        3: "InvalidJson",
        4: "InvalidMessageBody",
        7: "InvalidRecord",
    }
    assert all(row["error"]["Message"] for row in rows)
    assert rows[0]["message"] == "{not json"


def test_send_from_stdin_by_queue_name_exits_0_when_all_delivered(
    server: LocalSqsServer, queue_url: str
) -> None:
    name = queue_url.rsplit("/", 1)[1]
    stdin = "".join(json.dumps(f"m{i}") + "\n" for i in range(25))
    result = run_cli(
        "send",
        name,
        "-",
        "--endpoint-url",
        server.endpoint_url,
        "--region",
        "us-east-1",
        stdin=stdin,
    )
    assert result.returncode == 0, result.stderr
    assert "sent 25, failed 0" in result.stderr
    assert sorted(b for b, _ in stored_bodies(queue_url)) == sorted(f"m{i}" for i in range(25))


def test_send_to_a_missing_queue_is_a_clear_error(server: LocalSqsServer) -> None:
    result = run_cli(
        "send",
        "no-such-queue",
        "-",
        "--endpoint-url",
        server.endpoint_url,
        "--region",
        "us-east-1",
        stdin='"x"\n',
    )
    assert result.returncode == 2
    assert "no-such-queue" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [[], ["send"], ["receive"], ["local"]])
def test_help_has_examples(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert "example" in result.stdout


def test_python_module_and_console_script_agree() -> None:
    script = Path(sys.executable).with_name("sqs-async")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "send" in result.stdout


def test_local_starts_a_loopback_server_with_queues_and_says_ready_last() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sqs_async", "local", "--queue", "demo", "--bucket", "payloads"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        printed = []
        while not (line := process.stdout.readline()).startswith("ready"):
            assert line, printed  # the server ended before it was ready
            printed.append(line)
        assert printed[0].startswith("local SQS server at http://127.0.0.1:")
        assert printed[1].startswith("queue http://127.0.0.1:") and printed[1].strip().endswith(
            "/demo"
        )
        assert printed[2].startswith("bucket payloads ")
        endpoint = printed[0].split()[4].rstrip(",")
        s3 = boto3.client("s3", endpoint_url=endpoint, **LOCAL_CREDENTIALS)
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["payloads"]
        assert f"AWS_ENDPOINT_URL_S3={endpoint}" in printed[-1]
    finally:
        process.send_signal(signal.SIGINT)
        status = process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
    assert status == 0


def test_local_on_a_taken_port_fails_at_once(server: LocalSqsServer) -> None:
    port = server.endpoint_url.rsplit(":", 1)[1]
    result = subprocess.run(
        [sys.executable, "-m", "sqs_async", "local", "--port", port],
        capture_output=True,
        text=True,
        timeout=60,  # it hung until SIGKILL
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: address already")
    assert len(result.stderr.splitlines()) == 1


def test_local_detach_returns_when_ready_and_stop_frees_the_port(tmp_path: Path) -> None:
    import socket

    env = {**os.environ, "TMPDIR": str(tmp_path)}  # where the process id is kept
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    local = [sys.executable, "-m", "sqs_async", "local", "--port", port]
    started = subprocess.run(
        [*local, "--queue", "q", "--detach"], capture_output=True, text=True, env=env, timeout=120
    )
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout.splitlines()[-1].startswith("ready: running in the background")
        # Ready means its queue exists: a send right away gets through.
        sent = run_cli(
            "send", "q", "-", "--endpoint-url", f"http://127.0.0.1:{port}",
            "--region", "us-east-1", stdin='"x"\n',
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        again = subprocess.run(
            [*local, "--detach"], capture_output=True, text=True, env=env, timeout=120
        )
        assert again.returncode == 2 and "address already in use" in again.stderr
    finally:
        stopped = subprocess.run(
            [*local, "--stop"], capture_output=True, text=True, env=env, timeout=60
        )
    assert stopped.returncode == 0, stopped.stderr
    with socket.socket() as probe:
        # As a server restarting binds (connections the stopped one closed may linger in
        # TIME_WAIT); a socket still listening there would still refuse the bind.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", int(port)))  # free again
    assert not list(tmp_path.glob("sqs-async-local-*.pid"))
    gone = subprocess.run([*local, "--stop"], capture_output=True, text=True, env=env, timeout=60)
    assert gone.returncode == 2 and gone.stderr.startswith("error: no server")


def test_receive_writes_json_lines_and_deletes_only_when_asked(
    server: LocalSqsServer, sync_client: Any
) -> None:
    queue_url = make_queue(sync_client)
    attributes = {"b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}
    for i in range(25):
        sync_client.send_message(
            QueueUrl=queue_url, MessageBody=f"m{i}", MessageAttributes=attributes
        )
    # A short visibility timeout: a poll response lost at exit would hide messages only briefly.
    common = [
        *("--endpoint-url", server.endpoint_url, "--region", "us-east-1"),
        *("--wait", "1", "--visibility-timeout", "5"),
    ]

    peek = run_cli("receive", queue_url, "--until-empty", *common)
    assert peek.returncode == 0, peek.stderr
    lines = [json.loads(line) for line in peek.stdout.splitlines()]
    assert {line["Body"] for line in lines} == {f"m{i}" for i in range(25)}
    assert lines[0]["MessageAttributes"]["b"]["BinaryValue"] == "AAE="  # base64
    assert "deleted 0" in peek.stderr
    wait_until_visible(sync_client, queue_url, 25, seconds=15)  # released: all visible again

    take = run_cli(
        "receive", queue_url.rsplit("/", 1)[1], "--max-messages", "10", "--delete", *common
    )
    assert take.returncode == 0, take.stderr
    assert len(take.stdout.splitlines()) == 10 and "deleted 10" in take.stderr
    wait_until_visible(sync_client, queue_url, 15, seconds=15)


def test_receive_ends_once_it_has_what_it_was_asked_for_and_takes_no_more(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    for start in range(0, 40, 10):
        entries = [{"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, start + 10)]
        sync_client.send_message_batch(QueueUrl=queue_url, Entries=entries)
    local = ["--endpoint-url", server.endpoint_url, "--region", "us-east-1"]
    started = time.monotonic()
    take = run_cli("receive", queue_url, "--max-messages", "25", "--wait", "20", "--delete", *local)
    took = time.monotonic() - started
    assert take.returncode == 0, take.stderr
    assert len(take.stdout.splitlines()) == 25 and "deleted 25" in take.stderr
    assert took < 15  # start-up included: a bound, well under the 20 s long poll
    rest = drain(sync_client, queue_url)  # never received: each comes for the first time
    assert len(rest) == 15
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in rest} == {"1"}


def test_receive_from_a_missing_queue_is_a_clear_error(server: LocalSqsServer) -> None:
    result = run_cli(
        "receive", "no-such-queue", "--endpoint-url", server.endpoint_url, "--region", "us-east-1"
    )
    assert result.returncode == 2
    assert "no-such-queue" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_once_sends_what_was_read_and_twice_stops_at_once(tmp_path: Path) -> None:
    """A real SIGINT, twice, to `sqs-async send` against a slow endpoint (100 msg/s): 12,000
    lines would take two minutes. After the first, reading stops and sending goes on; after
    the second the command ends at once, every unconfirmed line in --failed as Interrupted."""
    from benchmarks.harness import EndpointProcess, Scenario

    total = 12_000  # more than the producer reads ahead (10,000), so some are never read
    source = tmp_path / "messages.jsonl"
    source.write_text("".join(json.dumps(f"{i}:x") + "\n" for i in range(total)))
    failed_file = tmp_path / "failed.jsonl"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with EndpointProcess() as endpoint:
        endpoint.reset(Scenario(latency_ms=200, body_bytes=0, max_in_flight=2, jitter=0))

        def accepted() -> int:
            return int(endpoint.stats()["accepted"])

        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "sqs_async", "send", "q", str(source)),
                *("--endpoint-url", endpoint.url, "--region", "us-east-1"),
                *("--max-in-flight", "2", "--failed", str(failed_file)),
            ],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: accepted() >= 20)
            process.send_signal(signal.SIGINT)
            first = accepted()
            wait_for(lambda: accepted() >= first + 20)  # still sending what it read
            process.send_signal(signal.SIGINT)
            interrupted_at = time.monotonic()
            _, stderr = process.communicate(timeout=60)
            took = time.monotonic() - interrupted_at
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        delivered = {int(i) for i in endpoint.stats()["ids"]}
    assert process.returncode == 130 and "(interrupted)" in stderr, stderr
    # "At once": far sooner than the ~100 s the rest would take at this endpoint's pace.
    assert took < 30, took
    rows = [json.loads(line) for line in failed_file.read_text().splitlines()]
    assert {row["error"]["Code"] for row in rows} == {"Interrupted"}
    failed_lines = {row["line"] - 1 for row in rows}  # lines count from 1, bodies from 0
    assert delivered | failed_lines == set(range(total))  # nothing lost
    # Only lines in flight at the second Ctrl-C can be in both (2 requests of 10).
    both = delivered & failed_lines
    assert len(both) <= 20, len(both)
    in_flight_rows = [
        r for r in rows if "may or may not have been delivered" in r["error"]["Message"]
    ]
    never_read = [r for r in rows if r["error"]["Message"].startswith("not sent")]
    assert in_flight_rows and never_read
    assert {r["line"] - 1 for r in in_flight_rows} >= both


def test_ctrl_c_on_a_silent_pipe_sends_what_was_read_and_loses_nothing(
    server: LocalSqsServer, queue_url: str, tmp_path: Path
) -> None:
    """Standard input stays open and silent after 30 lines: Ctrl-C must not wait for more
    input (it once waited in a blocking read), and every line taken from the pipe ends
    delivered or in --failed."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    failed = tmp_path / "failed.jsonl"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "sqs_async", "send", queue_url, "-"),
            *("--endpoint-url", server.endpoint_url, "--region", "us-east-1"),
            *("--failed", str(failed)),
        ],
        env=env,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    try:
        process.stdin.write("".join(json.dumps(f"m{i}") + "\n" for i in range(30)))
        process.stdin.write('"unfinished')  # a line without its end yet
        process.stdin.flush()
        wait_for(lambda: len(stored_bodies(queue_url)) >= 30, while_running=process)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)  # standard input still open: no end of input to stop at
        assert process.stderr is not None
        stderr = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode == 130, stderr
    assert "sent 30" in stderr and "(interrupted)" in stderr
    assert sorted(b for b, _ in stored_bodies(queue_url)) == sorted(f"m{i}" for i in range(30))
    [row] = [json.loads(line) for line in failed.read_text().splitlines()]
    assert (row["line"], row["message"], row["error"]["Code"]) == (31, '"unfinished', "Interrupted")


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_deadline_fails_what_is_not_confirmed_and_loses_nothing(
    tmp_path: Path, source: str
) -> None:
    """A slow endpoint (10 messages per 200 ms): at the deadline, lines not sent and lines
    not confirmed go to --failed as DeadlineExceeded; the rest were delivered."""
    from benchmarks.harness import EndpointProcess, Scenario

    total = 2_000
    text = "".join(json.dumps(f"{i}:x") + "\n" for i in range(total))
    path = tmp_path / "messages.jsonl"
    path.write_text(text)
    failed = tmp_path / "failed.jsonl"
    with EndpointProcess() as endpoint:
        endpoint.reset(Scenario(latency_ms=200, body_bytes=0, max_in_flight=1, jitter=0))
        result = run_cli(
            *("send", "q", "-" if source == "stdin" else str(path)),
            *("--endpoint-url", endpoint.url, "--region", "us-east-1", "--max-in-flight", "1"),
            *("--deadline", "1.5", "--failed", str(failed)),
            stdin=text if source == "stdin" else None,
        )
        delivered = {int(i) for i in endpoint.stats()["ids"]}
    assert result.returncode == 1, result.stderr
    assert "(deadline passed)" in result.stderr
    rows = [json.loads(line) for line in failed.read_text().splitlines()]
    assert {row["error"]["Code"] for row in rows} == {"DeadlineExceeded"}
    assert all(row["message"] == f"{row['line'] - 1}:x" for row in rows)
    failed_lines = {row["line"] - 1 for row in rows}
    assert delivered and failed_lines
    assert delivered | failed_lines == set(range(total))
    assert len(delivered & failed_lines) <= 10  # only the request on its way at the deadline


def test_ctrl_c_on_receive_delete_deletes_every_line_written(
    server: LocalSqsServer, sync_client: Any, queue_url: str, tmp_path: Path
) -> None:
    """It once reported `received 380, deleted 370 (interrupted)` with status 0: a delete in
    progress was cancelled. Now every message written is deleted before the command ends,
    and the others stay in the queue."""
    for start in range(0, 300, 10):
        sync_client.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)],
        )
    out = tmp_path / "taken.jsonl"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "sqs_async", "receive", queue_url, "--delete"),
            *("--endpoint-url", server.endpoint_url, "--region", "us-east-1"),
            *("--wait", "1", "--visibility-timeout", "60", "--output", str(out)),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: out.exists() and len(out.read_text().splitlines()) >= 25,
            while_running=process,
        )
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    written = [json.loads(line)["Body"] for line in out.read_text().splitlines()]
    assert f"received {len(written)}, deleted {len(written)} (interrupted)" in stderr
    left = [body for body, _ in stored_bodies(queue_url)]
    assert sorted(written + left) == sorted(f"m{i}" for i in range(300))


def test_large_lines_go_through_s3_both_ways(
    server: LocalSqsServer, sync_client: Any, tmp_path: Path
) -> None:
    queue_url = make_queue(sync_client)
    s3 = boto3.client("s3", endpoint_url=server.endpoint_url, **LOCAL_CREDENTIALS)
    s3.create_bucket(Bucket="cli-payloads")
    bodies = [f"{i} " + "é" * (3 * 1024 * 1024) for i in range(3)] + ["small"]
    messages = tmp_path / "messages.jsonl"
    messages.write_text("".join(json.dumps(body) + "\n" for body in bodies), encoding="utf-8")
    common = ["--endpoint-url", server.endpoint_url, "--region", "us-east-1"]
    offload = ["--s3-bucket", "cli-payloads"]

    sent = run_cli("send", queue_url, str(messages), *common, *offload)
    assert sent.returncode == 0, sent.stderr
    assert s3.list_objects_v2(Bucket="cli-payloads")["KeyCount"] == 3

    raw = run_cli("receive", queue_url, "--until-empty", "--wait", "1", *common)  # no --s3-*
    assert raw.returncode == 0, raw.stderr
    assert raw.stderr.count("warning: message ") == 1  # once, naming the flag to pass
    assert "points to a body stored in S3 (s3://cli-payloads/" in raw.stderr
    assert "pass --s3-bucket" in raw.stderr
    wait_until_visible(sync_client, queue_url, 4, seconds=15)  # released: visible again

    received = run_cli(
        "receive",
        queue_url,
        "--until-empty",
        "--delete",
        "--wait",
        "1",
        *common,
        *offload,
        "--s3-cleanup",
    )
    assert received.returncode == 0, received.stderr
    lines = [json.loads(line) for line in received.stdout.splitlines()]
    assert sorted(line["Body"] for line in lines) == sorted(bodies)
    assert sum("PayloadLocation" in line for line in lines) == 3
    assert s3.list_objects_v2(Bucket="cli-payloads")["KeyCount"] == 0

    # A body gone from S3: deleted unread when asked, else not written and status 1.
    for policy, status, said in (
        ("delete", 0, "1 deleted unread: their body in S3 was gone"),
        ("leave", 1, "1 not written: their body in S3 could not be fetched"),
    ):
        before = {o["Key"] for o in s3.list_objects_v2(Bucket="cli-payloads").get("Contents", [])}
        assert run_cli("send", queue_url, str(messages), *common, *offload).returncode == 0
        after = {o["Key"] for o in s3.list_objects_v2(Bucket="cli-payloads")["Contents"]}
        s3.delete_object(Bucket="cli-payloads", Key=min(after - before))  # one of this send's
        gone = run_cli(
            "receive",
            queue_url,
            "--until-empty",
            "--delete",
            "--wait",
            "1",
            *common,
            *offload,
            "--s3-missing-payload",
            policy,
        )
        assert gone.returncode == status, gone.stderr
        assert said in gone.stderr and len(gone.stdout.splitlines()) == 3

    mistake = run_cli("receive", queue_url, *common, "--s3-cleanup")
    assert mistake.returncode == 2 and "Traceback" not in mistake.stderr
    assert mistake.stderr.strip() == (
        "error: --s3-cleanup needs --s3-bucket (large messages through S3 are off without it)"
    )
