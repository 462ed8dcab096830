"""What a command tells its user while it runs and when it ends: a progress bar (or a plain
line every few seconds when not on a terminal), where every line of a send ended, and the
send's counters."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

# Failures shown in the summary; --failed has them all.
SHOWN_FAILURES = 5
# Counters the summary's first line already tells.
TOLD_COUNTERS = frozenset({"delivered_count"})


@dataclass
class Tally:
    read: int = 0
    delivered: int = 0
    failed: int = 0
    started: float = field(default_factory=time.monotonic)
    # The engine's counters (`SendResult.counters()`), when it tells them.
    counters: dict[str, int | float] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return self.delivered + self.failed

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)


def counters_line(counters: Mapping[str, int | float]) -> str:
    """The non-zero counters, each named after its `SendResult` field (`  requests 3,
    retried 1, possible duplicates 1`), but those the first line tells; "" if none."""
    shown = [
        f"{name.replace('_', ' ')} {value:.2f}"
        if isinstance(value, float)
        else f"{name.replace('_', ' ')} {value}"
        for name, value in counters.items()
        if value and name not in TOLD_COUNTERS
    ]
    return "  " + ", ".join(shown) if shown else ""


class Progress:
    """A tqdm bar on a terminal, redrawn at most every `interval` seconds, with the total when
    it is known; a plain line every `plain_interval` seconds elsewhere."""

    def __init__(
        self,
        tally: Tally,
        stream: IO[str],
        *,
        total: int | None = None,
        interval: float = 0.2,
        plain_interval: float = 5.0,
    ) -> None:
        self.tally = tally
        self.stream = stream
        self.plain_interval = plain_interval
        self.last = time.monotonic()
        self.bar: Any = None
        self._shown_failed = 0
        if stream.isatty():
            with contextlib.suppress(ImportError):
                from tqdm import tqdm

                self.bar = tqdm(
                    total=total,
                    unit="msg",
                    file=stream,
                    dynamic_ncols=True,
                    mininterval=interval,
                    miniters=1,
                )

    def update(self) -> None:
        t = self.tally
        if self.bar is not None:
            if t.failed != self._shown_failed:
                self._shown_failed = t.failed
                self.bar.set_postfix(failed=t.failed, refresh=False)
            self.bar.update(t.done - self.bar.n)  # tqdm redraws only after `interval`
        elif time.monotonic() - self.last >= self.plain_interval:
            self.last = time.monotonic()
            self.stream.write(
                f"sent {t.delivered}, failed {t.failed}, read {t.read}, "
                f"{t.delivered / t.elapsed:.0f} msg/s\n"
            )
            self.stream.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Outcomes:
    """The one place where a line's end is recorded: delivered, or failed with its message
    and reason (to --failed, and the first few kept for the summary)."""

    def __init__(self, failed_out: IO[str] | None, progress: Progress) -> None:
        self.tally = progress.tally
        self.failed_out = failed_out
        self.progress = progress
        self.first_failures: dict[str, list[tuple[int, str]]] = {}  # code -> (line, reason)

    def delivered(self) -> None:
        self.tally.delivered += 1
        self.progress.update()

    def failed(self, line: int, message: Any, code: str, reason: str, sender_fault: bool) -> None:
        self.tally.failed += 1
        kept = self.first_failures.setdefault(code, [])
        if len(kept) < SHOWN_FAILURES:
            kept.append((line, reason))
        if self.failed_out is not None:
            error = {"Code": code, "Message": reason, "SenderFault": sender_fault}
            row = {"line": line, "message": message, "error": error}
            self.failed_out.write(json.dumps(row) + "\n")
        self.progress.update()

    def summary(self, failed_path: str | None, told: str | None = None) -> str:
        """The first failures (but those with code `told`, said elsewhere), and where all of
        them are (or how to get them)."""
        if not self.first_failures:
            return ""
        shown = sorted(
            (line, code, reason)
            for code, kept in self.first_failures.items()
            if code != told
            for line, reason in kept
        )[:SHOWN_FAILURES]
        lines = [f"  line {n}: {code}: {reason}" for n, code, reason in shown]
        more = self.tally.failed - len(shown)
        if failed_path is not None:
            lines.append(f"  every failed line, with its message, is in {failed_path}")
        else:
            lines.append(
                (f"  ... and {more} more; " if more else "  ")
                + '--failed FILE writes every failed line (its "message" can be sent again)'
            )
        return "\n".join(lines)
