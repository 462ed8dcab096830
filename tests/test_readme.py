"""The README cannot rot: its code is the examples' code, its commands run, its reference is
generated from the code."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# Runs Beam pipelines, subprocesses or the benchmark endpoint (`make test-quick` skips it).
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.DOTALL)


def test_every_python_block_is_part_of_an_example_that_the_tests_run() -> None:
    examples = {p.name: p.read_text() for p in (ROOT / "examples").glob("*.py")}
    # An example is run by a test that names its file (test_examples.py runs most; the
    # streaming one runs without end, so test_beam_source.py starts and stops it).
    tested = "".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    python_blocks = [code for language, code in BLOCKS if language == "python"]
    assert python_blocks
    for code in python_blocks:
        homes = [name for name, text in examples.items() if code.strip() in text]
        assert homes, f"README block not found in examples/:\n{code}"
        assert any(name in tested for name in homes), f"{homes} is not run by a test"


def test_quick_start_commands_are_what_the_makefile_and_tests_run() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "python examples/pipeline.py --local" in makefile  # make demo; run by test_examples
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")
    commands = [
        line.split("#")[0].strip()
        for language, code in BLOCKS
        if language == "bash"
        for line in code.splitlines()
    ]
    assert {"make demo", "make test", 'pip install ".[beam]"'} <= set(commands)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_command_line_block_runs(tmp_path: Path) -> None:
    """The block word for word, on a machine with no AWS set-up: no AWS_* variable and an
    empty home (no ~/.aws), so a step the README leaves out fails here."""
    [block] = [code for language, code in BLOCKS if language == "bash" and "sqs-async" in code]
    port = str(free_port())  # the README's 9324 may be taken here
    start_server, *rest = (line for line in block.replace("9324", port).splitlines() if line)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
    }
    (tmp_path / "messages.jsonl").write_text('"hello"\n{"MessageBody": "world"}\n{oops\n')
    server = subprocess.Popen(
        shlex.split(start_server.split("&")[0]),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        printed = [server.stdout.readline() for _ in range(4)]  # queue, server, 2 lines of help
        assert printed[1].startswith(f"local SQS server at http://127.0.0.1:{port}"), printed
        assert "export AWS_ACCESS_KEY_ID=" in printed[3], printed
        # As typed into a shell: `send` exits 1 for the bad line, `receive` 0.
        sent_and_received = subprocess.run(
            ["bash", "-c", "\n".join(rest)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stdout is not None:
            server.stdout.close()
    output = sent_and_received.stderr
    assert sent_and_received.returncode == 0, output
    assert "sent 2, failed 1" in output
    assert "InvalidJson" in (tmp_path / "failed.jsonl").read_text()
    lines = (tmp_path / "received.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["Body"] for line in lines) == ["hello", "world"]
    assert "deleted 2" in output


def test_configuration_reference_matches_the_code() -> None:
    generated = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "config_reference.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    start = README.index("<!-- reference:start -->\n") + len("<!-- reference:start -->\n")
    end = README.index("<!-- reference:end -->")
    assert README[start:end] == generated, "run: python scripts/config_reference.py"


@pytest.mark.parametrize("name", ["queue_url", "max_in_flight", "linger", "bundle_deadline"])
def test_reference_names_real_options(name: str) -> None:
    assert f"| `{name}` |" in README
