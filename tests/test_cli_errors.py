"""The command line's mistakes and failures, in process (fast): one `error:` line and the
documented status for every user mistake, and every failed line in --failed with its message."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sqs_async.cli import Status, main
from sqs_async.cli.report import Progress, Tally
from sqs_async.testing import LocalSqsServer

from .conftest import stored_bodies
from .faults import loopback_http

_opened: list[io.TextIOWrapper] = []


@pytest.fixture(autouse=True)
def _close_stdin_pipes() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


def run(
    capsys: pytest.CaptureFixture[str],
    *args: str,
    stdin: str | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> tuple[int, str]:
    """`sqs-async ARGS` in this process: (exit status, standard error)."""
    if stdin is not None:
        assert monkeypatch is not None
        read_end, write_end = os.pipe()
        with os.fdopen(write_end, "wb") as writer:  # small inputs: the pipe holds them
            writer.write(stdin.encode())
        _opened.append(io.TextIOWrapper(os.fdopen(read_end, "rb")))
        monkeypatch.setattr(sys, "stdin", _opened[-1])
    try:
        status = main(list(args))
    except SystemExit as exit_:  # argparse's usage errors
        status = int(exit_.code or 0)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return status, err


def local(server: LocalSqsServer) -> list[str]:
    return ["--endpoint-url", server.endpoint_url, "--region", "us-east-1"]


def lines_of(*messages: Any) -> str:
    return "".join(json.dumps(m) + "\n" for m in messages)


def failed_rows(path: Path) -> dict[int, dict[str, Any]]:
    return {row["line"]: row for row in map(json.loads, path.read_text().splitlines())}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["send", "q", "no-such-file.jsonl", "--region", "us-east-1"], "cannot read"),
        (["send", "q", "-", "--max-in-flight", "0"], "--max-in-flight: must be at least 1"),
        (["send", "q", "-", "--max-trials", "0"], "--max-trials: must be at least 1"),
        (["send", "q", "-", "--deadline", "soon"], "--deadline: 'soon' is not a number"),
        (["receive", "q", "--wait", "25"], "--wait: must be from 0 to 20"),
        (["receive", "q", "--visibility-timeout", "-1"], "--visibility-timeout: must be from"),
        (["local", "--port", "70000"], "--port: must be from 0 to 65535"),
        (["local", "--detach", "--stop"], "not allowed with argument"),
        (["local", "--stop"], "--stop needs the --port"),
    ],
)
def test_a_usage_mistake_is_one_sentence_and_status_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], says: str
) -> None:
    os.chdir(tmp_path)
    status, err = run(capsys, *args)
    assert status == Status.USAGE
    assert err.startswith("error: ") and says in err and len(err.splitlines()) == 1, err


def test_no_region_is_one_sentence(
    capsys: pytest.CaptureFixture[str], aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, err = run(capsys, "send", "q", "-", stdin='"x"\n', monkeypatch=monkeypatch)
    assert status == Status.USAGE
    assert err.startswith("error: no AWS region was found") and "--region" in err


def test_an_endpoint_that_is_no_url_is_one_sentence(
    capsys: pytest.CaptureFixture[str], aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["send", "q", "-", "--endpoint-url", "127.0.0.1:9324", "--region", "us-east-1"]
    status, err = run(capsys, *args, stdin='"x"\n', monkeypatch=monkeypatch)
    assert status == Status.USAGE
    assert "invalid endpoint URL '127.0.0.1:9324'" in err


def test_version_and_defaults_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    from sqs_async import __version__

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"sqs-async {__version__}"
    with pytest.raises(SystemExit):
        main(["send", "--help"])
    out = capsys.readouterr().out
    assert "(default: 16)" in out and "(default: 3)" in out and "exit status:" in out


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_every_failure_of_send_keeps_the_message_of_its_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    aws_env: None,
    server: LocalSqsServer,
    queue_url: str,
    tmp_path: Path,
    source: str,
) -> None:
    """Invalid JSON, an invalid message and good ones, from a file or standard input: the
    good ones arrive, the others are in --failed with their message, and the summary shows
    them without --failed too."""
    text = lines_of("one", {"MessageBody": ""}, "two") + "{oops\n" + lines_of({"Body": 1})
    path = tmp_path / "in.jsonl"
    path.write_text(text)
    failed = tmp_path / "failed.jsonl"
    given = "-" if source == "stdin" else str(path)
    stdin = text if source == "stdin" else None
    args = ["send", queue_url, given, *local(server)]
    status, err = run(capsys, *args, "--failed", str(failed), stdin=stdin, monkeypatch=monkeypatch)
    assert status == Status.FAILED
    assert sorted(body for body, _ in stored_bodies(queue_url)) == ["one", "two"]
    rows = failed_rows(failed)
    assert {n: (r["message"], r["error"]["Code"]) for n, r in rows.items()} == {
        2: ({"MessageBody": ""}, "InvalidMessageBody"),
        4: ("{oops", "InvalidJson"),
        5: ({"Body": 1}, "InvalidRecord"),
    }
    assert "line 4: InvalidJson" in err and f"is in {failed}" in err
    # Without --failed, the summary says what failed and how to get every line.
    stdin = text if source == "stdin" else None
    status, err = run(capsys, *args, stdin=stdin, monkeypatch=monkeypatch)
    assert status == Status.FAILED
    assert "line 2: InvalidMessageBody: " in err and "--failed FILE writes every failed" in err


@pytest.mark.parametrize("by", ["name", "url"])
def test_a_missing_queue_reads_nothing(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    aws_env: None,
    server: LocalSqsServer,
    tmp_path: Path,
    by: str,
) -> None:
    """By name or by URL, the queue is asked about before any line is read: nothing is taken
    from standard input (it once wrote every line to --failed as `"message": null`)."""
    failed = tmp_path / "failed.jsonl"
    queue = "nope" if by == "name" else f"{server.endpoint_url}/123456789012/nope"
    args = ["send", queue, "-", *local(server), "--failed", str(failed)]
    status, err = run(capsys, *args, stdin='"x"\n', monkeypatch=monkeypatch)
    assert status == Status.USAGE
    assert err.startswith("error: SQS refused requests to") and "QueueDoesNotExist" in err
    assert len(err.splitlines()) == 1, err
    assert "reached max retries" not in err
    assert not failed.exists()  # nothing was taken from the input, nothing left behind
    assert sys.stdin.buffer.read() == b'"x"\n'  # still there for whatever reads it next


class AccessDenied(BaseHTTPRequestHandler):
    """Answers every call as SQS answers a caller without permission."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps(
            {"__type": "com.amazon.coral.service#AccessDeniedException", "message": "no"}
        ).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-query-error", "AccessDenied;Sender")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on its request (the command stopped once refused): no
        traceback on the test's standard error, which is checked for tracebacks."""


@pytest.fixture
def denying_endpoint() -> Iterator[str]:
    with loopback_http(AccessDenied, QuietServer) as url:
        yield url


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_access_denied_fails_every_line_with_its_message_and_names_the_permission(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    aws_env: None,
    denying_endpoint: str,
    tmp_path: Path,
    source: str,
) -> None:
    messages = [f"m{i}" for i in range(1_500)]
    text = lines_of(*messages)
    path = tmp_path / "in.jsonl"
    path.write_text(text)
    failed = tmp_path / "failed.jsonl"
    url = f"{denying_endpoint}/123456789012/q"
    status, err = run(
        capsys,
        *("send", url, "-" if source == "stdin" else str(path)),
        *("--endpoint-url", denying_endpoint, "--region", "us-east-1", "--failed", str(failed)),
        stdin=text if source == "stdin" else None,
        monkeypatch=monkeypatch,
    )
    assert status == Status.USAGE
    assert err.count("sqs:SendMessage") == 1, err  # said once, in the error line
    assert err.splitlines()[-1].startswith("error: SQS refused requests to")
    rows = failed_rows(failed)
    assert {n: r["message"] for n, r in rows.items()} == dict(enumerate(messages, start=1))
    codes = {r["error"]["Code"] for r in rows.values()}
    assert len(codes) == 1 and codes <= {"AccessDenied", "AccessDeniedException"}, codes


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_a_server_that_is_down_is_one_sentence_naming_the_endpoint(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    aws_env: None,
    tmp_path: Path,
    source: str,
) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    text = lines_of("a", "b")
    path = tmp_path / "in.jsonl"
    path.write_text(text)
    failed = tmp_path / "failed.jsonl"
    args = ["--endpoint-url", endpoint, "--region", "us-east-1", "--max-trials", "1"]
    source_arg = "-" if source == "stdin" else str(path)
    for queue in (f"{endpoint}/123456789012/q", "q"):  # asked about before any line is read
        status, err = run(
            capsys,
            *("send", queue, source_arg, *args, "--failed", str(failed), "--overwrite"),
            stdin=text if source == "stdin" else None,
            monkeypatch=monkeypatch,
        )
        assert status == Status.USAGE
        assert endpoint in err and "that the server is running" in err
        assert not failed.exists()


def test_the_failed_file_is_never_overwritten_unless_asked(
    capsys: pytest.CaptureFixture[str],
    aws_env: None,
    server: LocalSqsServer,
    queue_url: str,
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(lines_of("x"))
    kept = tmp_path / "failed.jsonl"
    kept.write_text("earlier failures\n")
    args = ["send", queue_url, str(path), *local(server)]
    assert run(capsys, *args, "--failed", str(kept))[0] == Status.USAGE
    assert kept.read_text() == "earlier failures\n"
    assert run(capsys, *args, "--failed", str(path))[0] == Status.USAGE  # the input itself
    assert path.read_text() == lines_of("x")
    assert run(capsys, *args, "--failed", str(kept), "--overwrite")[0] == Status.OK
    assert kept.read_text() == ""


@pytest.mark.parametrize("by", ["name", "url"])
def test_receive_leaves_the_output_untouched_when_the_queue_cannot_be_read(
    capsys: pytest.CaptureFixture[str],
    aws_env: None,
    server: LocalSqsServer,
    tmp_path: Path,
    by: str,
) -> None:
    kept = tmp_path / "keep.jsonl"
    kept.write_text("precious\n")
    queue = "nope" if by == "name" else f"{server.endpoint_url}/123456789012/nope"
    args = ["receive", queue, *local(server), "--wait", "1", "--output", str(kept)]
    status, err = run(capsys, *args)
    assert status == Status.USAGE and "already holds data" in err
    status, err = run(capsys, *args, "--overwrite")
    assert status == Status.USAGE and "QueueDoesNotExist" in err
    assert kept.read_text() == "precious\n"
    fresh = tmp_path / "fresh.jsonl"
    args[-1] = str(fresh)
    assert run(capsys, *args)[0] == Status.USAGE
    assert not fresh.exists()


def test_receive_writes_an_empty_output_for_an_empty_queue(
    capsys: pytest.CaptureFixture[str],
    aws_env: None,
    server: LocalSqsServer,
    queue_url: str,
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.jsonl"
    args = ["receive", queue_url, *local(server), "--wait", "1", "--until-empty"]
    status, err = run(capsys, *args, "--output", str(out))
    assert status == Status.OK and "received 0" in err
    assert out.read_text() == ""


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_redraws_a_few_times_a_second_with_its_total() -> None:
    """3,000 messages once made 3,002 redraws: the bar now redraws at most every interval."""
    import time

    tally = Tally()
    terminal = Terminal()
    started = time.monotonic()
    progress = Progress(tally, terminal, total=3_000, interval=0.2)
    for _ in range(3_000):
        tally.delivered += 1
        progress.update()
    progress.close()
    elapsed = time.monotonic() - started
    redraws = terminal.getvalue().count("\r")
    assert redraws <= elapsed / 0.2 + 4, (redraws, elapsed)
    assert "3000/3000" in terminal.getvalue()


@pytest.mark.parametrize(
    ("code", "status", "hint"),
    [
        (
            "InvalidAction",
            400,
            "the server refused the request (HTTP 400): check that the endpoint",
        ),
        ("InternalFailure", 503, "the server failed (HTTP 503): try again later"),
        ("EndpointConnectionError", None, "no answer from the endpoint"),
        ("SignatureDoesNotMatch", 403, "check the credentials"),
        ("QueueDoesNotExist", 400, "check the queue name or URL"),
        ("AccessDenied", 403, "need sqs:SendMessage"),
    ],
)
def test_a_refusal_hints_at_what_its_answer_points_to(
    code: str, status: int | None, hint: str
) -> None:
    """A 400 was blamed on "the credentials, the region and the queue" whatever it was."""
    from sqs_async.errors import explain

    text = explain(code, "detail", "queue 'q'", status=status)
    assert text.startswith(f"SQS refused requests to queue 'q': {code}: detail (")
    assert hint in text and "the credentials, the region and the queue" not in text


def test_local_help_names_the_extra_it_needs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["local", "--help"])
    out = capsys.readouterr().out
    assert "sqs-async[local]" in out and "[test]" not in out


def test_binary_attributes_go_as_base64_both_ways(
    capsys: pytest.CaptureFixture[str],
    aws_env: None,
    server: LocalSqsServer,
    queue_url: str,
    tmp_path: Path,
) -> None:
    """`receive` writes Binary values in base64; `send` takes them so (a JSON line holds no
    bytes), and a value that is not base64 fails its line alone."""
    binary = {"DataType": "Binary", "BinaryValue": "AAH/"}
    lines = lines_of(
        {"MessageBody": "with bytes", "MessageAttributes": {"b": binary}},
        {"MessageBody": "bad", "MessageAttributes": {"b": {**binary, "BinaryValue": "*"}}},
    )
    path = tmp_path / "in.jsonl"
    path.write_text(lines)
    failed = tmp_path / "failed.jsonl"
    args = ["send", queue_url, str(path), *local(server), "--failed", str(failed)]
    status, err = run(capsys, *args)
    assert status == Status.FAILED and "sent 1, failed 1" in err
    [row] = failed_rows(failed).values()
    assert row["error"]["Code"] == "InvalidMessageAttributes"
    assert row["message"]["MessageAttributes"]["b"]["BinaryValue"] == "*"  # as it was read
    out = tmp_path / "out.jsonl"
    args = ["receive", queue_url, *local(server), "--wait", "1", "--until-empty", "--delete"]
    assert run(capsys, *args, "--output", str(out))[0] == Status.OK
    [received] = [json.loads(line) for line in out.read_text().splitlines()]
    assert received["Body"] == "with bytes"
    assert received["MessageAttributes"]["b"]["BinaryValue"] == "AAH/"
