"""What per-group ordering costs: the engine on a FIFO queue against the same messages on a
standard queue, by number of message groups, on the benchmark endpoint.

    python -m benchmarks.fifo [--latency-ms 20] [--max-in-flight 16] [--fail-rate 0.1]

A group moves one message per round trip (see `sqs_async.send._fifo`), so the FIFO rate grows with
the number of groups that have messages waiting. Each run is checked from the endpoint's
record: every message accepted once, and each group's messages accepted in input order.
Prints a table and one JSON line per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from sqs_async import SqsSender

from .contenders import CREDENTIALS
from .harness import EndpointProcess, Scenario

GROUPS = (1, 10, 100, 1000)
# Bounded in count and time: one group at 20 ms moves ~40 messages a second.
MESSAGES_PER_GROUP = 500
MAX_MESSAGES = 20_000


def messages(count: int, groups: int) -> list[dict[str, str]]:
    """Numbered messages, dealt round-robin over `groups` groups."""
    return [
        {"MessageBody": f"{i:09d}:g{i % groups}", "MessageGroupId": f"g{i % groups}"}
        for i in range(count)
    ]


async def send(
    endpoint: str, queue: str, batch: list[dict[str, str]], mif: int, per_group: int
) -> float:
    async with SqsSender(
        queue_name=queue,
        endpoint_url=endpoint,
        max_in_flight=mif,
        max_trials=5,
        fifo_messages_per_group=per_group,
        **CREDENTIALS,
    ) as sender:
        started = time.perf_counter()
        result = await sender.send(batch, keep_delivered=False)
        seconds = time.perf_counter() - started
    if result.failed:
        raise RuntimeError(f"{len(result.failed)} failed: {result.failed[0]}")
    return seconds


def check(stats: dict[str, Any], batch: list[dict[str, str]]) -> dict[str, Any]:
    """Lost and duplicated messages, and groups whose messages arrived out of input order."""
    order = [int(i) for i in stats["order"]]
    last: dict[str, int] = {}
    out_of_order = set()
    for i in order:
        group = batch[i]["MessageGroupId"]
        if last.get(group, -1) > i:
            out_of_order.add(group)
        last[group] = i
    return {
        "lost": len(batch) - stats["unique"],
        "duplicates": stats["duplicates"],
        "groups_out_of_order": len(out_of_order),
    }


def run(latency_ms: float, mif: int, fail_rate: float) -> list[dict[str, Any]]:
    rows = []
    scenario = Scenario(latency_ms=latency_ms, body_bytes=0, max_in_flight=mif, fail_rate=fail_rate)
    with EndpointProcess() as endpoint:
        for groups in GROUPS:
            batch = messages(min(MAX_MESSAGES, MESSAGES_PER_GROUP * groups), groups)
            row: dict[str, Any] = {"groups": groups, "messages": len(batch)}
            runs = (
                ("standard", "bench", 1),
                ("fifo", "bench.fifo", 1),
                ("fifo10", "bench.fifo", 10),
            )
            for kind, queue, per_group in runs:
                endpoint.reset(scenario)
                seconds = asyncio.run(send(endpoint.url, queue, batch, mif, per_group))
                row[f"{kind}_msgs_per_s"] = round(len(batch) / seconds)
                if kind != "standard":
                    found = check(endpoint.stats(with_order=True), batch)
                    row.update({f"{kind}_{key}": value for key, value in found.items()})
            for kind in ("fifo", "fifo10"):
                row[f"{kind}_ratio"] = round(
                    row[f"{kind}_msgs_per_s"] / row["standard_msgs_per_s"], 3
                )
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--max-in-flight", type=int, default=16)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    args = parser.parse_args()
    rows = run(args.latency_ms, args.max_in_flight, args.fail_rate)
    print(
        f"latency {args.latency_ms:g} ms, max_in_flight {args.max_in_flight}, "
        f"fail rate {args.fail_rate:g}"
    )
    print(
        "| groups | messages | standard msg/s | FIFO (1 per group) | FIFO (10 per group) "
        "| unordered groups (1 / 10) | lost | dups |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        problems = [
            " / ".join(str(r[f"{kind}_{key}"]) for kind in ("fifo", "fifo10"))
            for key in ("groups_out_of_order", "lost", "duplicates")
        ]
        print(
            f"| {r['groups']} | {r['messages']} | {r['standard_msgs_per_s']} | "
            f"{r['fifo_msgs_per_s']} ({r['fifo_ratio']:.2f}x) | "
            f"{r['fifo10_msgs_per_s']} ({r['fifo10_ratio']:.2f}x) | "
            + " | ".join(map(str, problems))
            + " |"
        )
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
