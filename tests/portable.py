"""Beam's portable path on this machine, as Flink, Spark and Dataflow run Python: a local job
service (`local_job_service_main`) takes the pipeline as a Runner API proto and runs it with
SDK workers from an external worker pool (`worker_pool_main`), in processes of their own.

Both servers are started with gRPC rebound to 127.0.0.1 (Beam binds `[::]`). The pool starts
each worker through `BOOT`, which does what the SDK container's boot step does: fetch the
provision info (the pipeline options) and start `sdk_worker_main`. Every process's output goes
to a log file, so tests can read what the job service and the workers logged.
"""

from __future__ import annotations

import http.client
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Run a module as __main__ with every gRPC server it makes bound to loopback.
LOOPBACK_MAIN = """
import grpc, runpy, sys
real_server = grpc.server
def loopback_server(*args, **kwargs):
    server = real_server(*args, **kwargs)
    bind = server.add_insecure_port
    server.add_insecure_port = lambda address: bind(address.replace("[::]", "127.0.0.1"))
    return server
grpc.server = loopback_server
module = sys.argv[1]
sys.argv = [module, *sys.argv[2:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""

BOOT = """#!{python}
# The SDK container's boot step, for a worker pool without containers.
import argparse, os, sys
import grpc
from google.protobuf import json_format, text_format
from apache_beam.portability.api import beam_provision_api_pb2, beam_provision_api_pb2_grpc
from apache_beam.portability.api import endpoints_pb2

parser = argparse.ArgumentParser()
for flag in ("id", "logging_endpoint", "artifact_endpoint", "provision_endpoint",
             "control_endpoint"):
    parser.add_argument("--" + flag)
args, _ = parser.parse_known_args()
channel = grpc.insecure_channel(args.provision_endpoint)
info = beam_provision_api_pb2_grpc.ProvisionServiceStub(channel).GetProvisionInfo(
    beam_provision_api_pb2.GetProvisionInfoRequest(), metadata=[("worker_id", args.id)]
).info
def descriptor(url):
    return text_format.MessageToString(endpoints_pb2.ApiServiceDescriptor(url=url))
env = dict(os.environ)
env.update(
    WORKER_ID=args.id,
    PIPELINE_OPTIONS=json_format.MessageToJson(info.pipeline_options),
    CONTROL_API_SERVICE_DESCRIPTOR=descriptor(args.control_endpoint),
    LOGGING_API_SERVICE_DESCRIPTOR=descriptor(args.logging_endpoint),
)
os.execve(sys.executable,
          [sys.executable, "-m", "apache_beam.runners.worker.sdk_worker_main"], env)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout  # ends a hang; never decides a pass
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class PortableBeam:
    """A local job service and an external worker pool, both on 127.0.0.1."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.job_endpoint = ""
        self.pool_endpoint = ""

    def _start(self, name: str, *argv: str) -> subprocess.Popen[bytes]:
        log = self.directory / f"{name}.log"
        self.logs.append(log)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-c", LOOPBACK_MAIN, *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=env,
                start_new_session=True,  # its workers too can be stopped as one group
            )
        self.processes.append(process)
        return process

    def __enter__(self) -> PortableBeam:
        boot = self.directory / "boot.py"
        boot.write_text(BOOT.format(python=sys.executable))
        boot.chmod(0o755)
        port_file = self.directory / "job.port"
        self._start(
            "job_service",
            "apache_beam.runners.portability.local_job_service_main",
            "--port=0",
            f"--port_file={port_file}",
            f"--staging_dir={self.directory / 'staging'}",
        )
        pool_port = free_port()
        self.pool = self._start(
            "worker_pool",
            "apache_beam.runners.worker.worker_pool_main",
            f"--service_port={pool_port}",
            f"--container_executable={boot}",
        )
        wait_for(lambda: port_file.exists() and port_file.read_text().strip(), "the job service")
        self.job_endpoint = f"127.0.0.1:{port_file.read_text().strip()}"
        self.pool_endpoint = f"127.0.0.1:{pool_port}"
        wait_for(lambda: _listening(pool_port), "the worker pool")
        return self

    def options(self, *extra: str) -> list[str]:
        return [
            "--runner=PortableRunner",
            f"--job_endpoint={self.job_endpoint}",
            "--environment_type=EXTERNAL",
            f"--environment_config={self.pool_endpoint}",
            *extra,
        ]

    def stop_workers(self) -> None:
        """Kill the worker pool and every worker it started (as a runner losing its
        workers): what they held must come back to the queue."""
        os.killpg(self.pool.pid, signal.SIGKILL)
        self.pool.wait(timeout=30)

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class RecordingProxy:
    """An HTTP proxy on 127.0.0.1 in front of the local server that records the access key
    of every request's signature (`Authorization: AWS4-HMAC-SHA256 Credential=KEY/...`)."""

    def __init__(self, target: str) -> None:
        self.target = target.removeprefix("http://")
        self.access_keys: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                auth = self.headers.get("Authorization", "")
                match = re.search(r"Credential=([^/]+)/", auth)
                proxy.access_keys.append(match.group(1) if match else "")
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                upstream = http.client.HTTPConnection(proxy.target, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request("POST", self.path, body=body, headers=headers)
                reply = upstream.getresponse()
                data = reply.read()
                self.send_response(reply.status)
                for key, value in reply.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RecordingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class PidRecorder:
    """A `client_wrapper` that writes the id of the process the sink runs in to a file (it is
    pickled with the transform and runs wherever the runner runs the DoFn)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, client: Any) -> Any:
        with open(self.path, "a") as out:
            out.write(f"{os.getpid()}\n")
        return client
