"""Runs the engine's coroutines for synchronous Beam code: one event loop per worker process,
in a daemon thread.

A DoFn's methods are synchronous and may run on any of a worker's threads; the engine's
clients must live on one running loop. A process-wide loop thread gives every DoFn instance a
place to open its sender once (in `setup`) and reuse it across bundles. Because the loop is
not the caller's thread, this also works when a pipeline is run from code that already has an
event loop running (the call simply blocks that thread until the pipeline is done).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None


def _engine_loop() -> asyncio.AbstractEventLoop:
    """The process's engine loop, started on first use (and again after a fork)."""
    global _loop, _loop_pid
    with _lock:
        if _loop is None or _loop_pid != os.getpid() or not _loop.is_running():
            loop = asyncio.new_event_loop()
            started = threading.Event()
            thread = threading.Thread(
                target=_serve, args=(loop, started), name="sqs-async-engine", daemon=True
            )
            thread.start()
            started.wait()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


def _serve(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(started.set)
    loop.run_forever()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` on the engine loop and wait for its result (or exception)."""
    return asyncio.run_coroutine_threadsafe(coroutine, _engine_loop()).result()
