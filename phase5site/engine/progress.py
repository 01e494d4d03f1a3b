"""The parent's live view of one phase, built from its workers' batches.

Each batch carries a worker's rows (an Arrow table) and its counters. The counters of the
phase are the sums over the workers' latest counters; the live p95 and the send-lag figures
come from the rows as they arrive (a log-bucketed histogram: only for the display and the
heartbeat; verdicts use the stored rows). Rows are queued for the single DuckDB writer in
arrival order.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from phase5site.engine.load import LatencyHistogram
from phase5site.engine.protocol import WorkerStats

_SUMMED = ("planned", "sent", "completed", "dropped", "dropped_at_end", "in_flight", "cancelled",
           "cancelled_queued", "unexpected_errors")

Completion = Callable[[float, bool], None]  # (completed at as UTC epoch, is an error)


@dataclass
class PhaseProgress:
    """What the workers have reported so far for one phase."""

    phase: str
    rate: float
    workers: int
    stats: dict[int, WorkerStats] = field(default_factory=dict)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    send_lag_ms: LatencyHistogram = field(default_factory=LatencyHistogram)
    done: dict[int, WorkerStats] = field(default_factory=dict)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    rows_received: int = 0
    cpu_at_start: dict[int, float] = field(default_factory=dict)
    loop_lag_max_ms: float = 0.0  # since the last take_loop_lag()
    cpu_sampled: float = 0.0  # cpu_s() at the end of the last sample window

    def on_batch(self, index: int, table: pa.Table | None, stats: WorkerStats,
                 on_completion: Completion | None = None) -> None:
        self.stats[index] = stats
        self.cpu_at_start.setdefault(index, stats.cpu_s)
        self.loop_lag_max_ms = max(self.loop_lag_max_ms, stats.loop_lag_max_ms)
        if table is not None and table.num_rows:
            self.rows_received += table.num_rows
            self._read_rows(table, on_completion)

    def _read_rows(self, table: pa.Table, on_completion: Completion | None) -> None:
        columns = table.select(["intended_at", "sent_at", "latency_ms", "outcome"]).to_pydict()
        for intended, sent, latency_ms, outcome in zip(
                columns["intended_at"], columns["sent_at"], columns["latency_ms"], columns["outcome"]):
            if outcome == "dropped" or latency_ms is None:
                continue
            self.latency.add(latency_ms)
            self.send_lag_ms.add(max(0.0, (sent - intended) * 1000.0))
            if on_completion is not None:
                on_completion(intended + latency_ms / 1000.0, outcome != "ok")

    def on_done(self, index: int, stats: WorkerStats) -> None:
        self.stats[index] = stats
        self.done[index] = stats
        if len(self.done) == self.workers:
            self.finished.set()

    def total(self, name: str) -> int:
        return sum(int(s.load.get(name) or 0) for s in self.stats.values())

    def totals(self) -> dict[str, Any]:
        """The phase's counters: each a sum over the workers."""
        result: dict[str, Any] = {name: self.total(name) for name in _SUMMED}
        outcomes: Counter[str] = Counter()
        for s in self.stats.values():
            outcomes.update(s.load.get("outcomes") or {})
        result["outcomes"] = dict(sorted(outcomes.items()))
        errors = [s.load.get("last_unexpected_error") for s in self.stats.values()]
        result["last_unexpected_error"] = next((e for e in errors if e), None)
        return result

    def oldest_outstanding(self) -> float | None:
        """Oldest intended time (monotonic) of a request some worker has not finished;
        -inf until every worker has reported once (nothing can be said of it yet)."""
        if len(self.stats) < self.workers:
            return float("-inf")
        pending = [s.oldest_outstanding for s in self.stats.values() if s.oldest_outstanding is not None]
        return min(pending, default=None)

    def cpu_s(self) -> float:
        """CPU seconds the workers spent in this phase so far."""
        return sum(s.cpu_s - self.cpu_at_start.get(i, s.cpu_s) for i, s in self.stats.items())

    def take_loop_lag(self) -> float | None:
        """The worst worker loop lag since the last call (None before any report)."""
        if not self.stats:
            return None
        lag, self.loop_lag_max_ms = self.loop_lag_max_ms, 0.0
        return lag

    def stop_latency_ms(self, stop_sent_at: float) -> float | None:
        """How long the slowest worker took to read STOP (None when none reported it)."""
        seen = [s.stop_seen_at for s in self.done.values() if s.stop_seen_at is not None]
        return None if not seen else max(0.0, (max(seen) - stop_sent_at) * 1000.0)
