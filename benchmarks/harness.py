"""Runs scenarios: starts the endpoint, runs each contender in its own process, checks the
endpoint's record for lost and duplicated messages, and computes steady-state rates."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYIO_VENV = HERE / ".venv-sqs-pyio"
PYIO_REQUIREMENTS = ["sqs-pyio==0.1.0"]
S3_BUCKET = "bench-payloads"  # the bucket of the large-payload scenarios (`Scenario.s3`)

CONCURRENT = ("sqs_async", "beam_adapter", "beam_floor", "aiobotocore_raw", "boto3_threads")
SEQUENTIAL = ("sqs_pyio", "boto3_sequential")
# The read scenarios' contenders (`Scenario.read`, `receive.READERS`), in their running order:
# the engine's receiver, Beam's read, the queue-to-queue pipeline, the floor of a Beam read,
# and the hand-written peers.
READERS = (
    "sqs_async",
    "read_from_sqs",
    "sqs_to_sqs",
    "beam_read_floor",
    "aiobotocore_raw",
    "boto3_threads",
)
CONTENDERS = (*CONCURRENT, *SEQUENTIAL, *(r for r in READERS if r not in CONCURRENT))
# Contenders whose messages never reach the endpoint (Beam's own cost per element): their
# rate is their own (messages over their run), and nothing is checked at the endpoint.
NO_ENDPOINT = ("beam_floor", "beam_read_floor")
# The large-payload scenarios (`Scenario.s3`): the engine with S3Offload against AWS's Python
# extended client (`large.py`).
LARGE_CONTENDERS = ("sqs_async", "aws_extended_threads", "aws_extended_sequential")
# Contenders that send one request at a time: measured once per latency and size.
ONE_AT_A_TIME = (*SEQUENTIAL, "aws_extended_sequential")
# A contender named "<name>@baseline" is <name> from another checkout of this repository
# (`--baseline DIR`): an earlier engine measured in the same run, interleaved with this one.
BASELINE = "@baseline"


@dataclass(frozen=True)
class Scenario:
    latency_ms: float
    body_bytes: int
    max_in_flight: int
    fail_rate: float = 0.0
    jitter: float = 0.1
    tls: bool = False  # HTTPS with a self-signed certificate that clients verify
    skip: tuple[str, ...] = ()  # contenders not run here (to keep `--quick` short)
    rounds: int = 3  # interleaved rounds of the concurrent contenders (unless the run says)
    s3: bool = False  # every body through S3 (large-payload offload), on the endpoint's S3
    # Read the queue instead: the endpoint loads it, each contender reads and deletes it all
    # with `max_in_flight` receives at once (`receive.py`).
    read: bool = False

    def runs(self, contender: str) -> bool:
        """Whether `contender` runs in this scenario (`skip` aside)."""
        name = contender.removesuffix(BASELINE)
        if self.read:
            return name in READERS
        return name not in READERS or name in CONCURRENT

    @property
    def name(self) -> str:
        fail = f"-fail{int(self.fail_rate * 100)}" if self.fail_rate else ""
        if self.body_bytes >= 1 << 20 and not self.body_bytes % (1 << 20):
            size = f"{self.body_bytes >> 20}MiB"
        else:
            size = f"{self.body_bytes // 1024}KiB"
        tls = "-tls" if self.tls else ""
        s3 = "-s3" if self.s3 else ""
        if self.read:
            return f"read-lat{self.latency_ms:g}ms-{size}-recv{self.max_in_flight}{fail}{tls}"
        return f"lat{self.latency_ms:g}ms-{size}-mif{self.max_in_flight}{fail}{tls}{s3}"


@dataclass
class Result:
    messages: int
    seconds: float
    msgs_per_s: float
    cpu_s: float
    peak_rss_mb: float
    delivered: int
    failed: int
    lost: int
    duplicates: int
    requests: int = 0  # SendMessageBatch requests the endpoint answered, retries included
    # Over the whole run, start-up and the last retries' backoff included (`msgs_per_s` is the
    # steady rate: 10th to 90th percentile of acceptances, when the endpoint can tell).
    end_to_end_msgs_per_s: float = 0.0
    reused_from: str | None = None
    # With several rounds: this is the round with the median rate; the rates of all rounds.
    round_rates: list[float] = field(default_factory=list)
    # S3 scenarios, from the endpoint's record: objects stored, messages with no object,
    # objects beyond one per message, pointers sent before their object was stored, size
    # attributes that disagree with their object, bodies whose checksum did not match.
    # The endpoint's own CPU during the run (Linux; 0 elsewhere): is it what limits?
    endpoint_cpu_s: float = 0.0
    objects_stored: int = 0
    objects_missing: int = 0
    objects_extra: int = 0
    dangling: int = 0
    size_mismatches: int = 0
    bad_digests: int = 0


@dataclass
class ScenarioResult:
    scenario: Scenario
    results: dict[str, Result] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        s = self.scenario
        return {
            "name": s.name,
            "latency_ms": s.latency_ms,
            "fail_rate": s.fail_rate,
            "tls": s.tls,
            "s3": s.s3,
            "read": s.read,
            "body_bytes": s.body_bytes,
            "max_in_flight": s.max_in_flight,
            "results": {name: asdict(r) for name, r in self.results.items()},
        }


def _cores() -> tuple[set[int] | None, set[int] | None]:
    """One core for the endpoint, the others for the contender, where the system lets us pin
    processes (Linux): on two shared cores, who runs where otherwise varies from run to run
    and so do the rates. None: leave it to the scheduler."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cores) < 2:
        return None, None
    return {cores[0]}, set(cores[1:])


ENDPOINT_CORES, CONTENDER_CORES = _cores()


def _pin(cores: set[int] | None) -> Callable[[], None] | None:
    if cores is None:
        return None
    return lambda: os.sched_setaffinity(0, cores)


class EndpointProcess:
    """The benchmark endpoint in a process of its own, on 127.0.0.1; with `tls`, on HTTPS
    with a certificate made for the run (`verify` is the CA bundle clients check it with)."""

    def __init__(self, tls: bool = False) -> None:
        self.tls = tls
        self.verify: str | None = None

    def __enter__(self) -> EndpointProcess:
        command = [sys.executable, "-m", "benchmarks.endpoint"]
        if self.tls:
            self._certificates = tempfile.TemporaryDirectory()
            cert, key = self_signed_certificate(Path(self._certificates.name))
            command += ["--cert", str(cert), "--key", str(key)]
            self.verify = str(cert)
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=_pin(ENDPOINT_CORES),  # the harness runs no threads: safe
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"endpoint did not start: {line!r}")
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://127.0.0.1:{int(line.split()[1])}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self.tls:
            self._certificates.cleanup()

    def reset(self, scenario: Scenario, **knobs: float) -> None:
        """Clear the record and set the knobs (latency, failures) of `scenario` and `knobs`."""
        self._post(
            "reset",
            {
                "latency_ms": scenario.latency_ms,
                "jitter": scenario.jitter,
                "fail_rate": scenario.fail_rate,
                **knobs,
            },
        )

    def load(self, queue: str, count: int, body_bytes: int) -> None:
        """Put `count` numbered messages in `queue` (not recorded as sent): a read's source."""
        self._post("load", {"queue": queue, "count": count, "body_bytes": body_bytes})

    def cpu_seconds(self) -> float:
        """The endpoint process's CPU time so far (Linux: /proc; 0 elsewhere)."""
        return _process_cpu_seconds(self.process.pid)

    def change_knobs(self, **knobs: float) -> None:
        """Set the knobs, keeping the record."""
        self._post("knobs", knobs)

    def _post(self, what: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.url}/_control/{what}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10, context=self._context()) as response:
            response.read()

    def stats(self, with_message_ids: bool = False, with_order: bool = False) -> dict[str, Any]:
        query = "?message_ids=1" if with_message_ids else "?order=1" if with_order else ""
        url = f"{self.url}/_control/stats{query}"
        with urllib.request.urlopen(url, timeout=30, context=self._context()) as response:
            return dict(json.loads(response.read()))

    def _context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.verify) if self.verify else None


def reads_in(checkout: Path | None) -> bool:
    """Whether `checkout`'s benchmarks have the read contenders (an older baseline has none:
    its readers are not run in the read scenarios)."""
    receive = None if checkout is None else checkout / "benchmarks" / "receive.py"
    return receive is not None and receive.is_file() and "def read_beam(" in receive.read_text()


def _process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA, and its key (PEM files)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sqs-async benchmark")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class MotoEndpoint:
    """moto's server (in this process, on 127.0.0.1) in place of the benchmark endpoint: real
    SQS semantics at low rates. Latency and failure knobs do not apply; the record of accepted
    bodies is read from moto's own queue."""

    def __enter__(self) -> MotoEndpoint:
        import boto3

        from sqs_async.testing import LocalSqsServer

        self.server = LocalSqsServer().__enter__()
        self.url = self.server.endpoint_url
        self.client = boto3.client("sqs", **self.server.client_settings)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(None, None, None)

    def cpu_seconds(self) -> float:
        return 0.0  # in this process: not told apart

    def reset(self, scenario: Scenario, **knobs: float) -> None:
        self.server.reset()
        self.client.create_queue(QueueName="bench")

    def stats(self) -> dict[str, Any]:
        from collections import Counter

        from moto.sqs.models import sqs_backends

        queue = sqs_backends["123456789012"]["us-east-1"].queues["bench"]
        messages = list(queue._messages)
        ids = Counter(m.body.split(":", 1)[0] for m in messages)
        sent = [m.sent_timestamp / 1000 for m in messages]
        return {
            "unique": len(ids),
            "accepted": len(messages),
            "duplicates": sum(n - 1 for n in ids.values() if n > 1),
            "first": min(sent, default=None),
            "last": max(sent, default=None),
            "ids": sorted(ids),
        }


def ensure_pyio_venv() -> Path:
    """sqs-pyio pins urllib3<2 and more; it gets a virtual environment of its own."""
    python = PYIO_VENV / "bin" / "python"
    if not python.exists():
        print("creating the sqs_pyio environment (once)...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PYIO_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *PYIO_REQUIREMENTS], check=True
        )
    return python


def message_count(
    contender: str, scenario: Scenario, seconds: float, rate_cap: float | None = None
) -> int:
    """Enough messages for about `seconds` of steady state, judged from the latency."""
    latency = max(scenario.latency_ms, 2.0) / 1000
    if scenario.s3:
        return _large_message_count(contender, scenario, seconds)
    if scenario.read:
        # A loop of receive 10, delete them: 10 messages per two requests; on two cores the
        # readers' CPU caps them, at about READ_RATE_CAP msg/s for the raw loop (the receiver
        # then takes about half as long).
        rate = min(5 * scenario.max_in_flight / latency, rate_cap or READ_RATE_CAP)
        return int(max(200, min(rate * seconds, 100_000)) // 10 * 10)
    rate = 10 / latency if contender in SEQUENTIAL else 10 * scenario.max_in_flight / latency
    # About the fastest peer's rate on two cores: every concurrent contender gets as many
    # messages, so each run lasts about `seconds` or more (the engine, faster at 0 ms, about
    # 1.5 s: still some 30,000 acceptances between the 10th and 90th percentile).
    rate = min(rate, rate_cap or (20_000 if scenario.body_bytes <= 4096 else 5000))
    return int(max(200, min(rate * seconds, 200_000)) // 10 * 10)


READ_RATE_CAP = 4000


def _large_message_count(contender: str, scenario: Scenario, seconds: float) -> int:
    """Large payloads: every client is bound by its CPU (one core), about 1.5 ms and 3.3 ns a
    byte per message here (making the body, hashing it for the signature and the checksum,
    copying it out). A thread-pool contender holds `max_in_flight` batches of 10 at once, so
    a concurrent contender gets at least two such waves (the store rate is steady from the
    first upload on, the pointers of a batch come at its end)."""
    rate = 1 / (0.0015 + 3.3e-9 * scenario.body_bytes)
    if scenario.latency_ms:
        per_request = scenario.latency_ms / 1000
        if contender in ONE_AT_A_TIME:
            rate = min(rate, 1 / per_request)
        else:
            rate = min(rate, scenario.max_in_flight / per_request)
    floor = 100 if contender in ONE_AT_A_TIME else 20 * scenario.max_in_flight
    return int(max(floor, min(rate * seconds, 20_000)) // 10 * 10)


def run_contender(
    contender: str,
    scenario: Scenario,
    endpoint: EndpointProcess | MotoEndpoint,
    messages: int,
    baseline: Path | None = None,
) -> Result:
    endpoint.reset(scenario)
    if scenario.read:
        if isinstance(endpoint, MotoEndpoint):
            raise ValueError("the read scenarios run on the benchmark endpoint only")
        endpoint.load("bench", messages, scenario.body_bytes)
    endpoint_cpu = endpoint.cpu_seconds()
    job = {
        "endpoint": endpoint.url,
        "queue": "bench",
        "messages": messages,
        "body_bytes": scenario.body_bytes,
        "max_in_flight": scenario.max_in_flight,
        "max_trials": 3,
        "verify": getattr(endpoint, "verify", None),
        "read": scenario.read,
    }
    if scenario.s3:
        job["bucket"] = S3_BUCKET
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cwd = ROOT
    if contender.endswith(BASELINE):
        if baseline is None:
            raise ValueError(f"{contender} needs a baseline checkout (--baseline DIR)")
        cwd = baseline  # its own engine and its own contender code, found first on the path
        env["PYTHONPATH"] = str(baseline)
        contender = contender.removesuffix(BASELINE)
    if contender == "sqs_pyio":
        command = [str(ensure_pyio_venv()), str(HERE / "pyio_contender.py"), json.dumps(job)]
    elif scenario.s3:
        command = [sys.executable, "-m", "benchmarks.large", contender, json.dumps(job)]
    else:
        command = [sys.executable, "-m", "benchmarks.contenders", contender, json.dumps(job)]
    completed = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        preexec_fn=_pin(CONTENDER_CORES),  # the harness runs no threads: safe
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{contender} failed:\n{completed.stderr[-3000:]}")
    own = json.loads(completed.stdout.strip().splitlines()[-1])
    if contender in NO_ENDPOINT:
        rate = own["delivered"] / own["seconds"] if own["seconds"] else 0.0
        return Result(
            messages=messages,
            msgs_per_s=round(rate, 1),
            **_measured(own),
            delivered=own["delivered"],
            failed=own["failed"],
            lost=messages - own["delivered"] - own["failed"],
            duplicates=0,
            end_to_end_msgs_per_s=round(rate, 1),
            endpoint_cpu_s=round(endpoint.cpu_seconds() - endpoint_cpu, 3),
        )
    stats = endpoint.stats()
    if scenario.read:
        return _read_result(contender, messages, own, stats, endpoint.cpu_seconds() - endpoint_cpu)
    ids = {int(i) for i in stats["ids"]}
    lost = len(set(range(messages)) - ids)
    span = (stats["last"] or 0) - (stats["first"] or 0)
    rate_key = "steady_rate"
    objects: dict[str, Any] = {}
    if scenario.s3:
        # The uploads are the work, and they flow steadily: a thread-pool contender sends a
        # batch's pointers only once its ten uploads are done, so pointers come in bursts.
        # End to end: from the first upload to the last pointer.
        rate_key = "steady_store_rate"
        span = (stats["last"] or 0) - (stats["first_store"] or 0)
        stored = {int(i) for i in stats["object_ids"]}
        objects = {
            "objects_stored": stats["objects_stored"],
            "objects_missing": len(set(range(messages)) - stored),
            "objects_extra": stats["objects_stored"] - len(stored),
            "dangling": stats["dangling"],
            "size_mismatches": stats["size_mismatches"],
            "bad_digests": stats["bad_digests"],
        }
    end_to_end = stats["unique"] / span if span > 0 else stats["unique"] / own["seconds"]
    rate = stats.get(rate_key) or end_to_end
    return Result(
        messages=messages,
        msgs_per_s=round(rate, 1),
        **_measured(own),
        delivered=own["delivered"],
        failed=own["failed"],
        lost=lost - own["failed"],
        duplicates=stats["duplicates"],
        requests=stats.get("requests", 0),
        end_to_end_msgs_per_s=round(end_to_end, 1),
        endpoint_cpu_s=round(endpoint.cpu_seconds() - endpoint_cpu, 3),
        **objects,
    )


def _measured(own: dict[str, Any]) -> dict[str, float]:
    """What a contender's process measured of itself, as every `Result` carries it."""
    return {
        "seconds": round(own["seconds"], 3),
        "cpu_s": round(own["cpu_s"], 3),
        "peak_rss_mb": round(own["peak_rss_mb"], 1),
    }


def _read_result(
    contender: str, messages: int, own: dict[str, Any], stats: dict[str, Any], endpoint_cpu: float
) -> Result:
    """A read, checked from the endpoint's record: every message deleted exactly once, none
    left in the queue; for the queue-to-queue pipeline, every one also accepted once at the
    target, whose acceptances give its rate. Otherwise the rate is of first deletes (10th to
    90th percentile, as sends count acceptances); end to end, from the first answer that
    carried messages to the last delete (or acceptance at the target)."""
    lost = messages - stats["deleted_unique"]
    duplicates = stats["deleted"] - stats["deleted_unique"]
    first, last, steady = stats["first_receive"], stats["last_delete"], stats["steady_delete_rate"]
    delivered = stats["deleted_unique"]
    if contender == "sqs_to_sqs":
        lost = max(lost, messages - stats["unique"])
        duplicates += stats["duplicates"]
        last, steady = stats["last"], stats["steady_rate"]
        delivered = min(delivered, stats["unique"])
    span = (last or 0) - (first or 0)
    end_to_end = delivered / span if span > 0 else delivered / own["seconds"]
    return Result(
        messages=messages,
        msgs_per_s=round(steady or end_to_end, 1),
        **_measured(own),
        delivered=delivered,
        failed=own["failed"],
        lost=lost - own["failed"],
        duplicates=duplicates,
        requests=stats.get("requests", 0),
        end_to_end_msgs_per_s=round(end_to_end, 1),
        endpoint_cpu_s=round(endpoint_cpu, 3),
    )


def median_round(results: list[Result]) -> Result:
    """The round with the median rate (the lower middle one of an even count), carrying the
    rates of every round."""
    ranked = sorted(results, key=lambda r: r.msgs_per_s)
    middle = ranked[(len(ranked) - 1) // 2]
    return Result(**{**asdict(middle), "round_rates": [r.msgs_per_s for r in results]})


def run_scenarios(
    scenarios: list[Scenario],
    seconds: float,
    contenders: tuple[str, ...] = CONTENDERS,
    moto: bool = False,
    rounds: int | None = None,
    baseline: Path | None = None,
) -> list[ScenarioResult]:
    """Run every contender on every scenario. The concurrent contenders run interleaved
    (engine, adapter, raw, engine, ...) for the scenario's rounds (`rounds`, when given, for
    every scenario), so that drift on the machine hits each alike, and the median round
    stands for each; the sequential peers, far slower, run once."""
    done: list[ScenarioResult] = []
    sequential_cache: dict[tuple[float, int, float, bool, str], Result] = {}
    # moto spends ~20 ms per batch and slows as its queue fills: keep runs short there.
    rate_cap = 300.0 if moto else None
    endpoints: dict[bool, EndpointProcess | MotoEndpoint] = {}
    baseline_reads = reads_in(baseline)
    with contextlib.ExitStack() as stack:
        for scenario in scenarios:
            if scenario.tls not in endpoints:
                made = MotoEndpoint() if moto else EndpointProcess(tls=scenario.tls)
                endpoints[scenario.tls] = stack.enter_context(made)
            endpoint = endpoints[scenario.tls]
            # The sequential peers are slow and over plain HTTP only: no TLS runs for them.
            names = [
                c
                for c in contenders
                if c.removesuffix(BASELINE) not in scenario.skip
                and scenario.runs(c)
                and not (scenario.read and c.endswith(BASELINE) and not baseline_reads)
                and not (scenario.tls and c in ONE_AT_A_TIME)
            ]
            measured: dict[str, list[Result]] = {name: [] for name in names}
            for round_number in range(rounds or scenario.rounds):
                for contender in names:
                    key = (
                        scenario.latency_ms,
                        scenario.body_bytes,
                        scenario.fail_rate,
                        scenario.s3,
                        contender,
                    )
                    if contender in ONE_AT_A_TIME and (round_number or key in sequential_cache):
                        # max_in_flight means nothing to a sequential sender: measured once.
                        measured[contender] = [sequential_cache[key]]
                        continue
                    started = time.perf_counter()
                    count = message_count(contender, scenario, seconds, rate_cap)
                    result = run_contender(contender, scenario, endpoint, count, baseline)
                    if contender in ONE_AT_A_TIME:
                        sequential_cache[key] = Result(
                            **{**asdict(result), "reused_from": scenario.name}
                        )
                    measured[contender].append(result)
                    print(
                        f"  {scenario.name:28} {contender:17} {result.msgs_per_s:>9.0f} msg/s "
                        f"({time.perf_counter() - started:.1f}s)",
                        file=sys.stderr,
                        flush=True,
                    )
            outcome = ScenarioResult(scenario)
            for contender, results in measured.items():
                outcome.results[contender] = median_round(results)
            done.append(outcome)
    return done
