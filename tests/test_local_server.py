"""The local server (moto's, patched where moto is unlike SQS) as a product part."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from typing import Any

import pytest

from sqs_async import testing
from sqs_async.testing import LocalSqsServer

# Runs Beam pipelines, subprocesses or the benchmark endpoint (`make test-quick` skips it).
pytestmark = pytest.mark.integration


def test_concurrent_receives_never_hand_out_one_message_twice(
    server: LocalSqsServer, sync_client: Any, queue_url: str
) -> None:
    # moto checks that a message is visible, then marks it received, without a lock: two polls
    # at once could both get it. SQS never hands out a message twice within its visibility.
    for start in range(0, 600, 10):
        sync_client.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": str(start + i)} for i in range(10)],
        )
    seen: list[str] = []
    lock = threading.Lock()

    def poll() -> None:
        for _ in range(200):  # bounded; 600 messages need 60 full receives among 8 pollers
            reply = sync_client.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600
            )
            batch = [m["Body"] for m in reply.get("Messages", [])]
            if not batch:
                return
            with lock:
                seen.extend(batch)

    threads = [threading.Thread(target=poll) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert [body for body, n in Counter(seen).items() if n > 1] == []
    assert sorted(seen, key=int) == [str(i) for i in range(600)]


def test_an_unsupported_moto_is_refused_with_its_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testing, "MOTO_RANGE", ((4, 0), (4, 1)))
    with pytest.raises(RuntimeError, match=r"supports moto >=4\.0,<4\.1; found moto 5\."):
        testing._check_moto()


def test_local_command_names_the_extra_when_moto_is_missing() -> None:
    program = (
        "import sys\n"
        "for name in ('moto', 'moto.server'): sys.modules[name] = None\n"
        "from sqs_async.cli import main\n"
        "sys.exit(main(['local']))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 2
    assert "pip install 'sqs-async[local]'" in run.stderr


@pytest.mark.parametrize(
    "old",
    [
        "from sqs_async import LocalSqsServer",
        "from beam_adapter import LocalSqsServer",
        "from sqs_async.local import LocalSqsServer",
    ],
)
def test_old_imports_still_work_with_a_deprecation_warning(old: str) -> None:
    program = (
        "import warnings\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        "try:\n"
        f"    {old}\n"
        "except DeprecationWarning as w:\n"
        "    print('warned:', w)\n"
        "warnings.simplefilter('ignore', DeprecationWarning)\n"
        f"{old}\n"
        "from sqs_async.testing import LocalSqsServer as New\n"
        "print(LocalSqsServer is New)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    warned, same = run.stdout.strip().splitlines()
    assert "sqs_async.testing" in warned and same == "True"
