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
                read=s.get("read", False),
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
    """Sending: throughput against max_in_flight at 50 ms, 1 KiB, no failures (log scale).
    Reading, beside it when the run has read scenarios: each reader's rate per scenario."""
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
            and not r.scenario.read
        ),
        key=lambda r: r.scenario.max_in_flight,
    )
    reads = [r for r in results if r.scenario.read]
    if not chosen and not reads:
        return None
    panels = int(bool(chosen)) + int(bool(reads))
    figure, all_axes = plt.subplots(1, panels, figsize=(7 * panels, 4.5), squeeze=False)
    axes_left = iter(all_axes[0])
    if chosen:
        axes = next(axes_left)
        contenders = list(chosen[0].results)
        xs = [r.scenario.max_in_flight for r in chosen]
        for name in contenders:
            ys = [r.results[name].msgs_per_s if name in r.results else None for r in chosen]
            axes.plot(xs, ys, marker="o", label=name)
        axes.plot(
            xs, [10 * x / 0.05 for x in xs], linestyle="--", color="grey", label="theoretical"
        )
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xlabel("max_in_flight")
        axes.set_ylabel("messages per second")
        axes.set_title("SendMessageBatch throughput, 50 ms latency, 1 KiB bodies")
        axes.legend()
        axes.grid(True, which="both", alpha=0.3)
    if reads:
        axes = next(axes_left)
        names = list(dict.fromkeys(n for r in reads for n in r.results if n != "beam_read_floor"))
        width = 0.8 / max(1, len(names))
        for i, name in enumerate(names):
            xs = [j + i * width for j, r in enumerate(reads) if name in r.results]
            ys = [r.results[name].msgs_per_s for r in reads if name in r.results]
            axes.bar(xs, ys, width, label=name)
        axes.set_xticks([j + 0.4 - width / 2 for j in range(len(reads))])
        axes.set_xticklabels([r.scenario.name.removeprefix("read-") for r in reads], fontsize=8)
        axes.set_ylabel("messages read and deleted per second (steady, median)")
        axes.set_title("Reading: receive + delete, 1 KiB bodies")
        axes.legend(fontsize=8)
        axes.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


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


def _cpu_ms(result: Result) -> float:
    return 1000 * result.cpu_s / result.messages if result.messages else 0.0


def floor_costs(results: list[ScenarioResult]) -> str | None:
    """Each Beam connector's CPU per message above Beam's own floor on this runner, next to
    its engine's: `beam_adapter` over `beam_floor` against `sqs_async` (sending), and
    `read_from_sqs` over `beam_read_floor` against the receiver (reading). Both Beam figures
    include the pipeline's start-up."""
    pairs = (("beam_adapter", "beam_floor"), ("read_from_sqs", "beam_read_floor"))
    lines = []
    for outcome in results:
        found = outcome.results
        for adapter, floor in pairs:
            if not {adapter, floor, "sqs_async"} <= found.keys():
                continue
            a, f, e = (_cpu_ms(found[n]) for n in (adapter, floor, "sqs_async"))
            lines.append(
                f"{outcome.scenario.name}: {adapter} {a:.3f} ms CPU per message = {floor} "
                f"{f:.3f} + {a - f:.3f} above it; the engine alone {e:.3f} "
                f"(above the floor / engine: {(a - f) / e:.2f}x)"
                if e
                else f"{outcome.scenario.name}: {adapter} {a:.3f}, {floor} {f:.3f}"
            )
    return "\n".join(lines) or None


def _find(
    results: list[ScenarioResult], *, read: bool, latency: float, concurrency: int
) -> ScenarioResult | None:
    return next(
        (
            r
            for r in results
            if r.scenario.read == read
            and r.scenario.latency_ms == latency
            and r.scenario.max_in_flight == concurrency
            and r.scenario.body_bytes == 1024
            and not (r.scenario.tls or r.scenario.fail_rate or r.scenario.s3)
        ),
        None,
    )


def targets(results: list[ScenarioResult]) -> list[tuple[str, str, bool]]:
    """Issue 25's targets, computed from this run's medians: (target, measured, met)."""
    rows: list[tuple[str, str, bool]] = []

    def compare(
        target: str,
        outcome: ScenarioResult | None,
        top: str,
        base: str,
        *,
        at_least: float | None = None,
        at_most: float | None = None,
        cpu: bool = False,
    ) -> None:
        """A row for `top` over `base` (msg/s, or CPU per message), when both ran."""
        if outcome is None or not {top, base} <= outcome.results.keys():
            return
        a, b = outcome.results[top], outcome.results[base]
        over = (_cpu_ms(a), _cpu_ms(b)) if cpu else (a.msgs_per_s, b.msgs_per_s)
        if not over[1]:
            return
        value = over[0] / over[1]
        met = (at_least is None or value >= at_least) and (at_most is None or value <= at_most)
        rows.append((target, f"{value:.2f}x ({outcome.scenario.name})", met))

    for concurrency in (8, 64):
        outcome = _find(results, read=True, latency=0, concurrency=concurrency)
        read = f"read, 0 ms, {concurrency} receives"
        raw = ("sqs_async", "aiobotocore_raw")
        compare(f"{read}: SqsReceiver >= 1.5x raw msg/s", outcome, *raw, at_least=1.5)
        compare(f"{read}: SqsReceiver CPU/msg <= 0.5x raw's", outcome, *raw, at_most=0.5, cpu=True)
        compare(
            f"{read}: ReadFromSqs >= 0.6x SqsReceiver",
            outcome,
            "read_from_sqs",
            "sqs_async",
            at_least=0.6,
        )
    for concurrency in (8, 64):
        compare(
            f"read, 20 ms, {concurrency} receives: SqsReceiver >= 1.0x raw msg/s",
            _find(results, read=True, latency=20, concurrency=concurrency),
            "sqs_async",
            "aiobotocore_raw",
            at_least=1.0,
        )
    outcome = _find(results, read=False, latency=0, concurrency=64)
    compare(
        "send, 0 ms, 1 KiB, mif 64: sqs_async CPU/msg <= 0.4x raw's",
        outcome,
        "sqs_async",
        "aiobotocore_raw",
        at_most=0.4,
        cpu=True,
    )
    if (
        outcome is not None
        and {"beam_adapter", "beam_floor", "sqs_async"} <= outcome.results.keys()
    ):
        a, f, e = (_cpu_ms(outcome.results[n]) for n in ("beam_adapter", "beam_floor", "sqs_async"))
        rows.append(
            (
                "send, 0 ms, 1 KiB, mif 64: beam_adapter CPU/msg <= beam_floor + 1.3x sqs_async",
                f"{a:.3f} ms vs {f:.3f} + 1.3 x {e:.3f} = {f + 1.3 * e:.3f} "
                f"(above the floor: {(a - f) / e:.2f}x the engine)",
                a <= f + 1.3 * e,
            )
        )
    return rows


def targets_table(rows: list[tuple[str, str, bool]]) -> str | None:
    if not rows:
        return None
    lines = ["| target | measured (this run, medians) | |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {'met' if ok else 'not met'} |" for t, m, ok in rows]
    return "\n".join(lines)


def sections(results: list[ScenarioResult]) -> list[str]:
    """The report's parts that this run has, each with its heading: the table, large
    payloads, the cost of retries, Beam's floors and the targets."""
    parts = [table(results)] if any(not r.scenario.s3 for r in results) else []
    headed = (
        ("large payloads through S3:\n", large_table(results)),
        ("", retry_cost(results)),
        ("Beam's floor:", floor_costs(results)),
        ("targets (issue 25):\n", targets_table(targets(results))),
    )
    parts += [f"{heading}\n{text}" if heading else text for heading, text in headed if text]
    return parts


if __name__ == "__main__":
    # python -m benchmarks.report benchmarks/results/latest.json: the tables again.
    print("\n\n".join(sections(load(Path(sys.argv[1])))))
