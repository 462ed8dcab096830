"""`python -m benchmarks [--quick | --large] [--out FILE]`: throughput of sqs_async against its
peers on one endpoint, in one run. Prints a table, writes JSON to FILE (default
benchmarks/out/latest.json, not tracked) and a plot beside it. The committed results
(benchmarks/results/) change only on purpose: `--out benchmarks/results/latest.json`.
`--large` runs only the large-payload scenarios (through S3, `large.py`) and the peak memory
of 50 MiB payloads (`large_memory.py`); the full run includes them, `--quick` does not."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

from . import large_memory
from .harness import (
    BASELINE,
    CONTENDERS,
    HERE,
    LARGE_CONTENDERS,
    SEQUENTIAL,
    EndpointProcess,
    Scenario,
    ScenarioResult,
    run_contender,
    run_scenarios,
)
from .report import plot, sections, targets

# The sequential peers are measured at 50 ms (a network round trip), where comparing with
# them means something; the Beam adapter is left out at 64 KiB, where Beam's own coders take
# half a minute a run, and over TLS (the engine it runs on is measured there; its ten
# seconds a round would take `--quick` past six minutes). At 0 ms with 1 KiB bodies the
# client's CPU is the limit, and it varies more from one process to the next than within a
# run (the widest spread of three runs): five rounds there, and for reading at 0 ms.
#
# `beam_floor` (Beam's own cost per element) runs where its target is: 0 ms, 1 KiB, 64 in
# flight. The read scenarios (`receive.py`): at 0 ms and 8 receives every reader but boto3 on
# threads (about as fast as the raw loop: full run only), at 20 ms, where requests bound
# everyone, the receiver and the raw loop, whose ratio is the target there, at 8 and 64.
# 0 ms at 64 receives is in the full run. About two minutes in all with the floor (2.5 on a
# machine where the rest takes 6.5): each added scenario costs about half a minute.
QUICK = [
    Scenario(latency_ms=0, body_bytes=1024, max_in_flight=64, skip=SEQUENTIAL, rounds=5),
    Scenario(
        latency_ms=0,
        body_bytes=1024,
        max_in_flight=64,
        tls=True,
        skip=("beam_adapter", "beam_floor"),
    ),
    Scenario(
        latency_ms=0,
        body_bytes=64 * 1024,
        max_in_flight=64,
        skip=("beam_adapter", "beam_floor", *SEQUENTIAL),
    ),
    Scenario(latency_ms=50, body_bytes=1024, max_in_flight=1, skip=("beam_floor",)),
    Scenario(latency_ms=50, body_bytes=1024, max_in_flight=64, skip=("beam_floor",)),
    Scenario(latency_ms=50, body_bytes=1024, max_in_flight=64, fail_rate=0.1, skip=("beam_floor",)),
    Scenario(
        latency_ms=0, body_bytes=1024, max_in_flight=8, read=True, skip=("boto3_threads",), rounds=5
    ),
    *(
        Scenario(
            latency_ms=20,
            body_bytes=1024,
            max_in_flight=m,
            read=True,
            skip=("read_from_sqs", "sqs_to_sqs", "beam_read_floor", "boto3_threads"),
        )
        for m in (8, 64)
    ),
]
FULL = [
    *(
        Scenario(latency_ms=lat, body_bytes=1024, max_in_flight=m)
        for lat in (0, 50)
        for m in (1, 8, 64)
    ),
    *(
        Scenario(latency_ms=lat, body_bytes=1024, max_in_flight=64, fail_rate=0.1)
        for lat in (0, 50)
    ),
    *(
        Scenario(latency_ms=lat, body_bytes=64 * 1024, max_in_flight=m)
        for lat in (0, 50)
        for m in (8, 64)
    ),
    Scenario(latency_ms=0, body_bytes=1024, max_in_flight=64, tls=True),
    Scenario(latency_ms=50, body_bytes=1024, max_in_flight=64, tls=True),
    *(
        Scenario(latency_ms=lat, body_bytes=1024, max_in_flight=m, read=True)
        for lat in (0, 20)
        for m in (8, 64)
    ),
]
# Large payloads through S3 (`large.py`): every client is bound by its CPU here, ~10 s a run
# at 2 MiB, so about four and a half minutes with the memory run: not in `--quick`. Over
# HTTPS too, as real S3 is: botocore then sends the body unsigned with a trailing checksum
# instead of hashing it for the signature.
LARGE = [
    Scenario(latency_ms=0, body_bytes=2 << 20, max_in_flight=64, s3=True),
    Scenario(latency_ms=0, body_bytes=256 << 10, max_in_flight=64, s3=True),
    Scenario(latency_ms=0, body_bytes=2 << 20, max_in_flight=64, s3=True, tls=True),
]
# The memory run of large payloads: 8 messages of 50 MiB, at these concurrencies.
LARGE_MEMORY = (50, 8, [1, 4, 8])

# Where a run's results go unless --out says otherwise: not tracked by git.
DEFAULT_OUT = HERE / "out" / "latest.json"


def memory_check(counts: tuple[int, int]) -> dict[str, float]:
    """Peak RSS of the engine sending N small messages from a generator, for two N."""
    scenario = Scenario(latency_ms=0, body_bytes=100, max_in_flight=64, jitter=0)
    peaks = {}
    with EndpointProcess() as endpoint:
        for count in counts:
            result = run_contender("sqs_async", scenario, endpoint, count)
            peaks[str(count)] = result.peak_rss_mb
            print(
                f"  memory: {count} messages, peak RSS {result.peak_rss_mb:.1f} MB, "
                f"lost {result.lost}",
                file=sys.stderr,
                flush=True,
            )
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="fewer scenarios, 8-15 minutes on 2 cores"
    )
    parser.add_argument(
        "--large",
        action="store_true",
        help="only the large-payload scenarios (through S3) and their memory run, ~4.5 minutes",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="write the results as JSON here, and the plot beside it (.png)",
    )
    parser.add_argument(
        "--moto",
        action="store_true",
        help="use moto's server instead of the benchmark endpoint (low rates; latency and "
        "failure knobs do not apply)",
    )
    parser.add_argument("--scenario", help="run only scenarios whose name contains this")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory check")
    parser.add_argument(
        "--rounds",
        type=int,
        help="interleaved rounds of the concurrent contenders per scenario; the median "
        "round is reported (default: the scenario's, 3; 5 for --quick's 0 ms / 1 KiB)",
    )
    parser.add_argument(
        "--contenders",
        help="comma-separated subset of "
        + ",".join(CONTENDERS)
        + " (and, for the large-payload scenarios, of "
        + ",".join(LARGE_CONTENDERS)
        + ")",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout of this repository (an earlier commit, say): its sqs_async, "
        "beam_adapter and read_from_sqs run as contenders sqs_async@baseline, ... (its "
        "SqsReceiver in the read scenarios), interleaved with this checkout's, so before and "
        "after are measured in one run (with the baseline's own contender code)",
    )
    args = parser.parse_args()
    chosen = tuple(args.contenders.split(",")) if args.contenders else None
    contenders = chosen or CONTENDERS
    if args.baseline is not None:
        engine = [c for c in ("sqs_async", "beam_adapter", "read_from_sqs") if c in contenders]
        rest = tuple(c for c in contenders if c not in engine)
        contenders = (*engine, *(c + BASELINE for c in engine), *rest)
    large_contenders = tuple(c for c in LARGE_CONTENDERS if chosen is None or c in chosen)
    scenarios = [] if args.large else QUICK if args.quick else FULL
    # The large-payload scenarios need the benchmark endpoint's S3 (moto's is not measured).
    large = [] if args.moto or (args.quick and not args.large) else LARGE
    if args.moto:  # the read scenarios need the benchmark endpoint (it loads the queue)
        scenarios = [s for s in scenarios if s.latency_ms == 0 and not (s.fail_rate or s.read)]
    if args.scenario:
        scenarios = [s for s in scenarios if args.scenario in s.name]
        large = [s for s in large if args.scenario in s.name]
    seconds = 2.0 if args.quick else 6.0
    results: list[ScenarioResult] = run_scenarios(
        scenarios,
        seconds=seconds,
        contenders=contenders,
        moto=args.moto,
        rounds=args.rounds,
        baseline=args.baseline,
    )
    results += run_scenarios(
        large, seconds=seconds, contenders=large_contenders, rounds=args.rounds
    )
    memory: dict[str, float] = {}
    if not (args.no_memory or args.moto or args.large):
        memory = memory_check((20_000, 100_000) if args.quick else (100_000, 1_000_000))
    large_memory_rows: list[dict[str, object]] = []
    if large and not args.no_memory:
        mib, messages, concurrencies = LARGE_MEMORY
        large_memory_rows = large_memory.run(mib, messages, concurrencies)
    machine = (
        f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {_cpus()} cores"
    )
    print(f"\nmachine: {machine}\n")
    print("\n\n".join(sections(results)))
    if large_memory_rows:
        print(f"\nlarge payloads, peak memory:\n\n{large_memory.table(large_memory_rows)}")
    if memory:
        low, high = sorted(memory, key=int)
        print(
            f"\nmemory (engine, generator input): peak RSS {memory[low]:.1f} MB for "
            f"{int(low):,} messages, {memory[high]:.1f} MB for {int(high):,}"
        )
    document = {
        "machine": machine,
        "memory_peak_rss_mb": memory,
        "large_memory": large_memory_rows,
        "scenarios": [r.as_json() for r in results],
        "targets": [{"target": t, "measured": m, "met": ok} for t, m, ok in targets(results)],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2))
    print(f"results: {args.out}")
    png = plot(results, args.out.with_suffix(".png"))
    if png:
        print(f"plot: {png}")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()
