"""The README cannot rot: its code is the examples' code, its commands run, its reference is
generated from the code."""

from __future__ import annotations

import ast
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


def test_command_line_block_runs_pasted_whole_twice(tmp_path: Path) -> None:
    """The block as one paste into a fresh shell with no AWS set-up (no AWS_* variable, an
    empty home), twice in a row: the second run starts after the first stopped its server."""
    [block] = [code for language, code in BLOCKS if language == "bash" and "sqs-async" in code]
    port = str(free_port())  # the README's 9324 may be taken here
    script = block.replace("9324", port)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "TMPDIR": str(tmp_path),  # where `mktemp -d` makes the block's folder
    }
    try:
        for attempt in (1, 2):
            before = set(tmp_path.iterdir())
            pasted = subprocess.run(
                ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=180
            )
            assert pasted.returncode == 0, (attempt, pasted.stdout, pasted.stderr)
            [folder] = [p for p in set(tmp_path.iterdir()) - before if p.is_dir()]
            output = pasted.stderr
            assert "sent 2, failed 1" in output and "line 3: InvalidJson" in output
            assert "InvalidJson" in (folder / "failed.jsonl").read_text()
            lines = (folder / "received.jsonl").read_text().splitlines()
            assert sorted(json.loads(line)["Body"] for line in lines) == ["hello", "world"]
            assert "deleted 2" in output
            assert f"stopped the server on port {port}" in pasted.stdout
    finally:  # a failed run must not leave its server behind
        subprocess.run(
            [Path(sys.executable).with_name("sqs-async"), "local", "--port", port, "--stop"],
            env=env,
            capture_output=True,
            timeout=60,
        )


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


# Each ```python block of the README, with the paragraph right above it, which names the
# example file the block comes from and the command that runs that file.
PYTHON_BLOCKS = [
    (README[: match.start()].rstrip().rsplit("\n\n", 1)[-1], match.group(1))
    for match in re.finditer(r"```python\n(.*?)```", README, flags=re.DOTALL)
]
EXAMPLE_COMMAND = re.compile(r"`(python examples/(\w+\.py)(?: [^`]*)?)`")
# What each example prints when it worked, should a README command have to be run here.
EXAMPLE_OUTPUT = {
    "pipeline.py": r"^100 messages are found approximately!$",
    "engine_demo.py": r"^(\d+) messages delivered, \1 read back$",
    "producer_demo.py": r"^100 messages in the queue$",
    "dead_letter_pipeline.py": r"^orders-dead-letters: 1 messages$",
    "routing_pipeline.py": r"^ledger\.fifo: 30 messages$",
    "large_messages.py": r"^objects left in the bucket: 0$",
}
# Examples that run without end: a test starts and stops them (not run again here).
UNENDING = {"streaming_pipeline.py": "test_beam_source.py"}


def example_command(paragraph: str) -> tuple[str, str]:
    """The one `python examples/X.py ...` command a paragraph gives, and X.py."""
    commands = set(EXAMPLE_COMMAND.findall(paragraph))
    assert len(commands) == 1, f"no single example command above the block:\n{paragraph}"
    [(command, name)] = commands
    return command, name


def commands_test_examples_runs() -> set[str]:
    """`python examples/X.py ARGS` for each run_example("X.py", ARGS...) in test_examples.py."""
    tree = ast.parse((ROOT / "tests" / "test_examples.py").read_text())
    return {
        shlex.join(
            ["python", "examples/" + ast.literal_eval(call.args[0])]
            + [ast.literal_eval(arg) for arg in call.args[1:]]
        )
        for call in ast.walk(tree)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id == "run_example"
        and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args)
    }


def option_values(args: list[str]) -> dict[str, str]:
    """{"--name": value} for `--name=value` and `--name value` arguments."""
    values: dict[str, str] = {}
    rest = iter(args)
    for arg in rest:
        assert arg.startswith("--"), args
        name, equals, value = arg.partition("=")
        values[name] = value if equals else next(rest)
    return values


def flags_a_test_passes(test_file: str, example: str) -> dict[str, str | None]:
    """The --flag=value arguments a test passes to `example` (None: a value computed there)."""
    tree = ast.parse((ROOT / "tests" / test_file).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and example in ast.unparse(node.value):
            variable = ast.unparse(node.targets[0])
            break
    else:
        raise AssertionError(f"{test_file} does not run {example}")
    for node in ast.walk(tree):
        if isinstance(node, ast.List) and f"str({variable})" in map(ast.unparse, node.elts):
            flags: dict[str, str | None] = {}
            for element in node.elts:
                if isinstance(element, ast.Constant) and str(element.value).startswith("--"):
                    name, value = str(element.value).split("=", 1)
                    flags[name] = value
                elif isinstance(element, ast.JoinedStr):
                    head = element.values[0]
                    assert isinstance(head, ast.Constant), ast.unparse(element)
                    flags[str(head.value).split("=", 1)[0]] = None
            return flags
    raise AssertionError(f"no command line for {example} in {test_file}")


@pytest.mark.parametrize(
    ("paragraph", "code"), PYTHON_BLOCKS, ids=[f"block{i}" for i in range(len(PYTHON_BLOCKS))]
)
def test_each_python_block_says_which_example_it_is_from_and_how_to_run_it(
    paragraph: str, code: str
) -> None:
    _, name = example_command(paragraph)
    assert f"From `examples/{name}`" in paragraph, paragraph
    source = (ROOT / "examples" / name).read_text()
    assert code.strip() in source, f"the block is not in examples/{name}"
    # Pasted alone, an excerpt does not run: the README says it is one.
    assert code.strip() == source.strip() or "excerpt" in paragraph.lower(), paragraph
    assert name in EXAMPLE_OUTPUT or name in UNENDING, f"say what examples/{name} prints"


@pytest.mark.parametrize(
    "command",
    sorted({example_command(paragraph)[0] for paragraph, _ in PYTHON_BLOCKS}),
    ids=lambda command: Path(shlex.split(command)[1]).stem,
)
def test_example_command_above_a_block_runs_as_written(command: str, tmp_path: Path) -> None:
    """The README's command, from the repository root with the venv's python, on a machine
    with no AWS set-up (no AWS_* variable, an empty home). A command test_examples.py already
    runs word for word is not run twice; an example that runs without end is checked against
    the command line of the test that starts and stops it."""
    argv = shlex.split(command)
    name = Path(argv[1]).name
    if name in UNENDING:
        readme_flags = option_values(argv[2:])
        test_flags = flags_a_test_passes(UNENDING[name], name)
        assert readme_flags.keys() == test_flags.keys(), (readme_flags, test_flags)
        for flag, value in test_flags.items():
            assert value in (None, readme_flags[flag]), (flag, readme_flags[flag], value)
        # ... against the server the same paragraph starts, on the port and queues it names.
        [paragraph] = {p for p, _ in PYTHON_BLOCKS if command in p}
        [server] = re.findall(r"`(sqs-async local [^`]*)`", paragraph)
        server_argv = shlex.split(server)
        port = server_argv[server_argv.index("--port") + 1]
        queues = {server_argv[i + 1] for i, arg in enumerate(server_argv) if arg == "--queue"}
        assert readme_flags["--endpoint_url"] == f"http://127.0.0.1:{port}"
        assert {readme_flags["--source"], readme_flags["--target"]} <= queues
        return
    if shlex.join(argv) in commands_test_examples_runs():
        return  # test_examples.py runs it, and checks what it prints
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env["HOME"] = str(home)
    assert argv[0] == "python", command
    completed = subprocess.run(
        [sys.executable, *argv[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert re.search(EXAMPLE_OUTPUT[name], completed.stdout, flags=re.MULTILINE), completed.stdout
