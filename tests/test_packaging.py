"""The engine stands alone: importing it (or running its CLI) never loads Apache Beam."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import sqs_async

# Runs Beam pipelines, subprocesses or the benchmark endpoint (`make test-quick` skips it).
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def test_engine_never_imports_apache_beam() -> None:
    program = (
        "import sys, sqs_async, sqs_async.cli, sqs_async.send, sqs_async.receive, "
        "sqs_async.wire, sqs_async.stages, sqs_async.testing; "
        "assert 'apache_beam' not in sys.modules, 'sqs_async imported apache_beam'"
    )
    subprocess.run([sys.executable, "-c", program], check=True, timeout=60)


# Test modules that exercise Beam (pipelines, options, rows), on purpose.
_BEAM_TESTS = {"test_fuzz.py", "test_portable.py", "test_source_semantics.py"}


def test_engine_tests_run_without_apache_beam() -> None:
    """The engine's tests (and the fixtures they use) never load Beam or gRPC: they stay fast,
    and they prove that the engine needs neither."""
    engine_tests = sorted(
        str(path)
        for path in (ROOT / "tests").glob("test_*.py")
        if "beam" not in path.name and "pyio" not in path.name and path.name not in _BEAM_TESTS
    )
    assert len(engine_tests) > 15
    program = (
        "import sys, pytest\n"
        "code = pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', '-p', 'no:xdist', "
        "*sys.argv[1:]])\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'apache_beam', 'grpc'})\n"
        "print('loaded:', loaded)\n"
        "sys.exit(code or bool(loaded))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", program, *engine_tests],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "loaded: []" in run.stdout


def test_beam_adapter_uses_only_the_engines_public_modules() -> None:
    """`beam_adapter` is built on what `sqs_async` offers on purpose (its package, and the
    public modules named in its docstring), never on an internal module."""
    import ast

    offered = {
        "sqs_async",
        "sqs_async.checks",
        "sqs_async.defaults",
        "sqs_async.errors",
        "sqs_async.offload",
        "sqs_async.results",
        "sqs_async.stages",
        "sqs_async.testing",
        "sqs_async.wire",
    }
    used: dict[str, set[str]] = {}
    for path in (ROOT / "beam_adapter").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.split(".")[0] == "sqs_async":
                    used.setdefault(name, set()).add(path.name)
    assert "sqs_async" in used
    assert {name: files for name, files in used.items() if name not in offered} == {}


def test_version_is_exposed() -> None:
    assert sqs_async.__version__.count(".") == 2


@pytest.mark.slow
def test_wheel_and_sdist_build_pass_twine_and_install_cleanly(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run = {"check": True, "capture_output": True, "text": True, "timeout": 900}
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], **run)
    [wheel] = dist.glob("*.whl")
    [sdist] = dist.glob("*.tar.gz")
    subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)], **run
    )
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], **run)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt")]
    subprocess.run([*pip, str(wheel)], **run)  # no extras: the engine alone
    engine_alone = (
        "import importlib.util, sys, sqs_async; "
        "assert importlib.util.find_spec('apache_beam') is None; "
        "print(sqs_async.__version__)"
    )
    out = subprocess.run([python, "-c", engine_alone], **run).stdout
    assert out.strip() == sqs_async.__version__
    subprocess.run([*pip, f"{wheel}[beam]"], **run)
    subprocess.run([python, "-c", "import beam_adapter, sqs_async.cli"], **run)
    files = subprocess.run(
        [
            python,
            "-c",
            "import sqs_async, beam_adapter, pathlib; "
            "print(*(pathlib.Path(m.__file__).with_name('py.typed').exists() "
            "for m in (sqs_async, beam_adapter)))",
        ],
        **run,
    ).stdout
    assert files.split() == ["True", "True"]
