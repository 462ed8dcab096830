"""A bounded soak: N messages through the Beam adapter against the benchmark endpoint with
transient faults, then the endpoint's record checked for lost and duplicated messages.

    python -m benchmarks.soak --messages 200000 --fail-rate 0.05

Messages are generated inside the pipeline (not held by `Create`), one in every 1,000 is
invalid (an empty body) so the failed output is exercised too. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import Metrics, MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from beam_adapter import METRICS_NAMESPACE, WriteToSqs

from .contenders import CREDENTIALS
from .harness import EndpointProcess, Scenario

PER_SEED = 1000


def generate(seed: int) -> list[str]:
    """1,000 numbered bodies; the last of each thousand is invalid (empty)."""
    bodies = [f"{seed * PER_SEED + j:09d}:soak" for j in range(PER_SEED - 1)]
    return [*bodies, ""]


class RssSampler:
    """Samples this process's resident memory twice a second while a run lasts."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(0.5):
            with open("/proc/self/statm") as statm:
                self.samples.append(int(statm.read().split()[1]) * page / 2**20)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def quartiles(self) -> list[float]:
        """RSS (MB) at 25%, 50%, 75% and 100% of the run."""
        n = len(self.samples)
        return [round(self.samples[max(0, n * q // 4 - 1)], 1) for q in (1, 2, 3, 4)] if n else []


def run(
    messages: int, fail_rate: float, max_in_flight: int, throttle_above: int = 0
) -> dict[str, Any]:
    seeds = messages // PER_SEED
    with EndpointProcess() as endpoint:
        endpoint.reset(
            Scenario(latency_ms=1, body_bytes=0, max_in_flight=max_in_flight, fail_rate=fail_rate),
            max_concurrent=throttle_above,
        )
        options = PipelineOptions(
            ["--runner=FnApiRunner", f"--endpoint_url={endpoint.url}"]
            + [f"--{k}={v}" for k, v in CREDENTIALS.items()]
        )
        seen = Metrics.counter("soak", "failed_output_records")
        started = time.perf_counter()
        pipeline = beam.Pipeline(options=options)
        output = (
            pipeline
            | beam.Create(range(seeds))
            | beam.FlatMap(generate)
            | WriteToSqs(queue_name="soak", max_in_flight=max_in_flight, max_trials=3)
        )
        _ = output[WriteToSqs.FAILED_OUTPUT] | beam.Map(lambda record: seen.inc())
        with RssSampler() as rss:
            result = pipeline.run()
            result.wait_until_finish()
        seconds = time.perf_counter() - started
        stats = endpoint.stats()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter())["counters"]
        if c.key.metric.namespace in (METRICS_NAMESPACE, "soak")
    }
    valid = {f"{i:09d}" for i in range(seeds * PER_SEED) if i % PER_SEED != PER_SEED - 1}
    accepted = set(stats["ids"])
    return {
        "messages": seeds * PER_SEED,
        "invalid": seeds,
        "faults_injected": stats["entry_failures"],
        "requests_throttled": stats["throttled"],
        "delivered": counters.get("messages_sent", 0),
        "failed_output_records": counters.get("failed_output_records", 0),
        # Lost: valid messages neither accepted by the endpoint nor in the failed output.
        "lost": len(valid - accepted) - (counters.get("failed_output_records", 0) - seeds),
        "duplicates": stats["duplicates"],
        "retried": counters.get("messages_retried", 0),
        "throttled_ms": counters.get("throttled_ms", 0),
        "possible_duplicates": counters.get("possible_duplicates", 0),
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_mb_at_quarters": rss.quartiles(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--fail-rate", type=float, default=0.05)
    parser.add_argument("--max-in-flight", type=int, default=32)
    parser.add_argument(
        "--throttle-above",
        type=int,
        default=0,
        help="the endpoint throttles requests beyond this many at once",
    )
    args = parser.parse_args()
    print(json.dumps(run(args.messages, args.fail_rate, args.max_in_flight, args.throttle_above)))


if __name__ == "__main__":
    main()
