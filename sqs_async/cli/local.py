"""`sqs-async local`: an SQS-compatible server on 127.0.0.1 (moto's, see `sqs_async.testing`),
in the foreground, or in the background (`--detach`) until `--stop`.

The ready line is printed last, once the queues (and S3 buckets, which the same server serves,
for large messages) exist: a script that waits for it (as `--detach` does) can send at once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..testing import LocalSqsServer
from .common import CliError, Status

READY = "ready"
STOP_WAIT_SECONDS = 30.0


def pid_file(port: int) -> Path:
    """Where a detached server on `port` keeps its process id (removed when it stops)."""
    return Path(tempfile.gettempdir()) / f"sqs-async-local-{port}.pid"


def command_local(args: argparse.Namespace) -> int:
    if args.stop:
        if args.port == 0:
            raise CliError("--stop needs the --port the server was started on")
        return stop_detached(args.port)
    if args.detach:
        return start_detached(args)
    return serve(args.port, args.queue, args.bucket, detached=args.serve_detached)


def serve(port: int, queues: list[str], buckets: list[str], *, detached: bool = False) -> int:
    """Start the server, create `queues` and `buckets`, print the settings and the ready
    line; serve until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    # Handlers first: Ctrl-C (or SIGTERM) at any moment from here on stops the server cleanly.
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = LocalSqsServer(port=port)
    try:
        server.start()
    except RuntimeError as exc:  # port taken, moto missing, or a moto it cannot patch
        raise CliError(str(exc)) from None
    pid_path = pid_file(int(server.endpoint_url.rsplit(":", 1)[1]))
    try:
        urls = _create_queues(server, queues)
        _create_buckets(server, buckets)
        settings = server.client_settings
        print(f"local SQS server at {server.endpoint_url}, region {settings['region_name']}")
        for url in urls:
            print(f"queue {url}")
        for bucket in buckets:
            print(f"bucket {bucket} (S3, on the same endpoint: --s3-bucket {bucket})")
        print(
            "clients need credentials, and any will do; in another shell:\n"
            f"  export AWS_ACCESS_KEY_ID={settings['aws_access_key_id']} "
            f"AWS_SECRET_ACCESS_KEY={settings['aws_secret_access_key']} "
            f"AWS_DEFAULT_REGION={settings['region_name']} "
            f"AWS_ENDPOINT_URL_SQS={server.endpoint_url}"
            + (f" AWS_ENDPOINT_URL_S3={server.endpoint_url}" if buckets else "")
        )
        if detached:
            pid_path.write_text(str(os.getpid()))
        print(f"{READY}; " + ("stop it with --stop" if detached else "Ctrl-C stops it"), flush=True)
        if detached:  # the starter has gone: nothing more reaches its terminal
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.dup2(devnull, sys.stderr.fileno())
        stop.wait()
    finally:
        server.stop()
        if detached:
            pid_path.unlink(missing_ok=True)
    return Status.OK


def _create_queues(server: LocalSqsServer, names: list[str]) -> list[str]:
    import boto3  # moto's own dependency: there whenever the server could start
    from botocore.exceptions import ClientError

    client = boto3.client("sqs", **server.client_settings)
    urls = []
    for name in names:
        attributes = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
        try:
            urls.append(client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
        except ClientError as exc:
            raise CliError(f"cannot create queue {name!r}: {exc}") from None
    return urls


def _create_buckets(server: LocalSqsServer, names: list[str]) -> None:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client("s3", **server.client_settings)
    for name in names:
        try:
            client.create_bucket(Bucket=name)
        except (BotoCoreError, ClientError) as exc:
            reason = " ".join(str(exc).split())
            raise CliError(f"cannot create bucket {name!r}: {reason}") from None


def start_detached(args: argparse.Namespace) -> int:
    """Run the server in a process of its own; return once it is ready (or failed)."""
    command = [sys.executable, "-m", "sqs_async", "local", "--port", str(args.port)]
    for name in args.queue:
        command += ["--queue", name]
    for name in args.bucket:
        command += ["--bucket", name]
    child = subprocess.Popen(
        [*command, "--serve-detached"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C in this shell is not for it
    )
    assert child.stdout is not None and child.stderr is not None
    port = args.port
    for line in child.stdout:
        if line.startswith(READY):
            print(
                f"{READY}: running in the background (process {child.pid}); stop it with: "
                f"sqs-async local --port {port} --stop",
                flush=True,
            )
            return Status.OK
        if line.startswith("local SQS server at "):
            port = int(line.split(",")[0].rsplit(":", 1)[1])
        print(line, end="", flush=True)
    status = child.wait()
    sys.stderr.write(child.stderr.read())
    return status or Status.USAGE


def stop_detached(port: int) -> int:
    """Stop the server `--detach` started on `port`; return once it has let go of the port."""
    path = pid_file(port)
    try:
        pid = int(path.read_text())
    except (FileNotFoundError, ValueError):
        raise CliError(f"no server started with --detach is running on port {port}") from None
    if not _is_local_server(pid):
        path.unlink(missing_ok=True)
        raise CliError(f"the server on port {port} (process {pid}) is no longer running")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while path.exists() and _is_local_server(pid):  # it removes the file once stopped
        if time.monotonic() > deadline:
            raise CliError(f"the server on port {port} (process {pid}) did not stop")
        time.sleep(0.05)
    print(f"stopped the server on port {port}")
    return Status.OK


def _is_local_server(pid: int) -> bool:
    """Whether `pid` is a running sqs-async local server (not a process that reused the id)."""
    if not Path("/proc/self").exists():  # no /proc: ask the kernel whether it lives
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 0)
            return True
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    zombie = status.rsplit(")", 1)[-1].split()[0] == "Z"
    return b"sqs_async" in cmdline and not zombie
