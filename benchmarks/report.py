"""The benchmark table and plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .harness import Result, Scenario, ScenarioResult


def load(path: Path) -> list[ScenarioResult]:
    """Scenario results from a JSON file written by `python -m benchmarks`."""
    document = json.loads(path.read_text())
    return [
        ScenarioResult(
            Scenario(
                latency_ms=s["latency_ms"],
                body_bytes=s["body_bytes"],
                max_in_flight=s["max_in_flight"],
                fail_rate=s["fail_rate"],
                tls=s.get("tls", False),
                s3=s.get("s3", False),
            ),
            {name: Result(**r) for name, r in s["results"].items()},
        )
        for s in document["scenarios"]
    ]


def _spread(result: Result) -> str:
    rates = result.round_rates
    if len(rates) < 2:
        return "-"
    return f"{min(rates):,.0f}-{max(rates):,.0f}"


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}x" if base else "-"


def table(results: list[ScenarioResult]) -> str:
    """A Markdown table: one row per contender per scenario (the large-payload ones have a
    table of their own: `large_table`)."""
    lines = [
        "| scenario | contender | msgs/s (steady, median) | min-max | end to end | vs sqs_pyio | "
        "vs aiobotocore_raw | theoretical | CPU s / 1k msgs | requests / 10 msgs | "
        "peak RSS MB | delivered / failed / lost (dup) |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for outcome in results:
        s = outcome.scenario
        if s.s3:
            continue
        theoretical = 10 * s.max_in_flight / (s.latency_ms / 1000) if s.latency_ms else None
        pyio = outcome.results.get("sqs_pyio")
        raw = outcome.results.get("aiobotocore_raw")
        for name, r in outcome.results.items():
            cpu = 1000 * r.cpu_s / r.messages if r.messages else 0
            per_10 = f"{10 * r.requests / r.messages:.2f}" if r.requests and r.messages else "-"
            reused = (
                f" (measured in {r.reused_from})"
                if r.reused_from and r.reused_from != s.name
                else ""
            )
            lines.append(
                f"| {s.name} | {name}{reused} | {r.msgs_per_s:,.0f} | {_spread(r)} | "
                f"{r.end_to_end_msgs_per_s or r.msgs_per_s:,.0f} | "
                f"{_ratio(r.msgs_per_s, pyio.msgs_per_s if pyio else None)} | "
                f"{_ratio(r.msgs_per_s, raw.msgs_per_s if raw else None)} | "
                f"{f'{theoretical:,.0f}' if theoretical else '-'} | {cpu:.3f} | {per_10} | "
                f"{r.peak_rss_mb:.0f} | {r.delivered} / {r.failed} / {r.lost} ({r.duplicates}) |"
            )
    return "\n".join(lines)


LARGE_BASE = "aws_extended_threads"


def large_table(results: list[ScenarioResult]) -> str | None:
    """A Markdown table of the large-payload scenarios (`Scenario.s3`), None without any.
    Rates count uploads (see `harness.run_contender`); MiB/s is of payload; CPU per message
    is the contender's own from its first message to its last; the endpoint's CPU is its
    share of the contender's run (it has a core of its own)."""
    chosen = [r for r in results if r.scenario.s3]
    if not chosen:
        return None
    lines = [
        "| scenario | contender | msgs/s (steady, median) | min-max | end to end | MiB/s | "
        f"vs {LARGE_BASE} | CPU ms / msg | peak RSS MB | endpoint CPU | "
        "delivered / failed / lost (dup) | objects stored / missing / extra | "
        "dangling / size mismatches / bad digests |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for outcome in chosen:
        s = outcome.scenario
        base = outcome.results.get(LARGE_BASE)
        for name, r in outcome.results.items():
            cpu = 1000 * r.cpu_s / r.messages if r.messages else 0
            mib = r.msgs_per_s * s.body_bytes / (1 << 20)
            endpoint = f"{100 * r.endpoint_cpu_s / r.seconds:.0f}%" if r.seconds else "-"
            reused = (
                f" (measured in {r.reused_from})"
                if r.reused_from and r.reused_from != s.name
                else ""
            )
            lines.append(
                f"| {s.name} | {name}{reused} | {r.msgs_per_s:,.0f} | {_spread(r)} | "
                f"{r.end_to_end_msgs_per_s or r.msgs_per_s:,.0f} | {mib:,.0f} | "
                f"{_ratio(r.msgs_per_s, base.msgs_per_s if base else None)} | {cpu:.2f} | "
                f"{r.peak_rss_mb:.0f} | {endpoint} | "
                f"{r.delivered} / {r.failed} / {r.lost} ({r.duplicates}) | "
                f"{r.objects_stored} / {r.objects_missing} / {r.objects_extra} | "
                f"{r.dangling} / {r.size_mismatches} / {r.bad_digests} |"
            )
    return "\n".join(lines)


def plot(results: list[ScenarioResult], path: Path) -> Path | None:
    """Throughput against max_in_flight at 50 ms, 1 KiB, no failures (log scale)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    chosen = sorted(
        (
            r
            for r in results
            if r.scenario.latency_ms == 50
            and r.scenario.body_bytes == 1024
            and not r.scenario.fail_rate
        ),
        key=lambda r: r.scenario.max_in_flight,
    )
    if not chosen:
        return None
    figure, axes = plt.subplots(figsize=(7, 4.5))
    contenders = list(chosen[0].results)
    xs = [r.scenario.max_in_flight for r in chosen]
    for name in contenders:
        axes.plot(xs, [r.results[name].msgs_per_s for r in chosen], marker="o", label=name)
    axes.plot(xs, [10 * x / 0.05 for x in xs], linestyle="--", color="grey", label="theoretical")
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xlabel("max_in_flight")
    axes.set_ylabel("messages per second")
    axes.set_title("SendMessageBatch throughput, 50 ms latency, 1 KiB bodies")
    axes.legend()
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


if __name__ == "__main__":
    # python -m benchmarks.report benchmarks/results/latest.json: the tables again.
    loaded = load(Path(sys.argv[1]))
    if any(not r.scenario.s3 for r in loaded):
        print(table(loaded))
    large = large_table(loaded)
    if large:
        print(f"\n{large}")


def retry_cost(results: list[ScenarioResult], contender: str = "sqs_async") -> str | None:
    """How much of its no-failure rate `contender` keeps with 10% transient entry failures
    (same latency, body size and max_in_flight), and its requests per 10 messages."""
    lines = []
    for faulty in results:
        if not faulty.scenario.fail_rate or contender not in faulty.results:
            continue
        s = faulty.scenario
        clean = next(
            (
                r
                for r in results
                if not r.scenario.fail_rate
                and (r.scenario.latency_ms, r.scenario.body_bytes, r.scenario.max_in_flight)
                == (s.latency_ms, s.body_bytes, s.max_in_flight)
                and contender in r.results
            ),
            None,
        )
        if clean is None:
            continue
        with_faults, without = faulty.results[contender], clean.results[contender]
        per_10 = 10 * with_faults.requests / with_faults.messages if with_faults.messages else 0
        lines.append(
            f"{contender} in {s.name}: {with_faults.msgs_per_s / without.msgs_per_s:.2f}x "
            f"of its rate in {clean.scenario.name} (steady, medians), "
            f"{per_10:.2f} requests per 10 messages"
        )
    return "\n".join(lines) or None
