"""The engine stands alone: importing it (or running its CLI) never loads Apache Beam."""

from __future__ import annotations

import subprocess
import sys

import sqs_async


def test_engine_never_imports_apache_beam() -> None:
    program = (
        "import sys, sqs_async, sqs_async.cli, sqs_async.producer; "
        "assert 'apache_beam' not in sys.modules, 'sqs_async imported apache_beam'"
    )
    subprocess.run([sys.executable, "-c", program], check=True, timeout=60)


def test_version_is_exposed() -> None:
    assert sqs_async.__version__.count(".") == 2
