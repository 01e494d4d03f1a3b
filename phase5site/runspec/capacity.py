"""What a run holds in memory at most, estimated from its spec before anything starts.

Phases run one after another, so the run needs what its largest phase needs:

* every slot (``concurrency``) holds a connection whose read buffer may grow to 64 KiB
  (asyncio's ``StreamReader`` limit); its transport and task are ~1.4 KiB (tracemalloc, raw
  client; httpx ~3 KiB);
* every request waiting for a slot (at most the backlog bound) costs 256 bytes (measured:
  227 B for the queue entry and the outstanding-request map entry);
* the phase's request rows are read back to judge it: its latencies, sorted, and DuckDB's
  exact quantiles over them, 64 bytes per row (measured: 50 B per row, 5,000,000 rows,
  maxrss before and after);
* 256 MiB for the interpreters of the parent and its load workers, DuckDB and pyarrow.

The estimate is pure: the caller passes the machine's memory in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from phase5site.runspec.models import PhaseSpec, RunSpec

BACKLOG_SECONDS = 30.0
BACKLOG_FLOOR = 10_000
BYTES_PER_SLOT = 64 * 1024
BYTES_PER_WAITING_REQUEST = 256
BYTES_PER_ROW_READ = 64
BASE_BYTES = 256 * 1024 * 1024


def backlog_capacity(rate: float, max_backlog: int | None = None) -> int:
    """Most requests of a phase that may wait for a free slot: ``target.max_backlog``, by
    default ``max(30 s of sends, 10,000)``. The bound is memory, not patience: a waiting
    request keeps its intended time, so its wait is in its latency.

    Beyond it a due request is dropped and counted, as k6 counts ``dropped_iterations``.

    >>> backlog_capacity(80), backlog_capacity(1000), backlog_capacity(80, max_backlog=5)
    (10000, 30000, 5)
    """
    if max_backlog is not None:
        return max(1, int(max_backlog))
    return max(BACKLOG_FLOOR, math.ceil(rate * BACKLOG_SECONDS))


@dataclass(frozen=True)
class MemoryEstimate:
    """The phase that needs the most memory, with what it holds."""

    phase: str
    index: int  # position in spec.phases, to locate it in the file
    requests: int
    concurrency: int
    backlog: int
    bytes_needed: int


def phase_memory_bytes(phase: PhaseSpec, max_backlog: int | None) -> int:
    """Memory one phase needs at most.

    Example (day1 baseline): 20 slots x 65,536 + 10,000 waiting x 256 + 576,000 rows x 64
    + 268,435,456 = 309,170,176 bytes (294.9 MiB).

    >>> from phase5site.runspec.models import PhaseSpec
    >>> phase_memory_bytes(PhaseSpec(name="b", rate=80, concurrency=20, samples=12, interval=600), None)
    309170176
    """
    return (phase.concurrency * BYTES_PER_SLOT
            + backlog_capacity(phase.rate, max_backlog) * BYTES_PER_WAITING_REQUEST
            + phase.expected_requests * BYTES_PER_ROW_READ + BASE_BYTES)


def estimate_memory(spec: RunSpec, phases: list[PhaseSpec]) -> MemoryEstimate:
    """The largest of ``phases`` (those that will run) by ``phase_memory_bytes``."""
    index, phase = max(((spec.phases.index(p), p) for p in phases),
                       key=lambda item: phase_memory_bytes(item[1], spec.target.max_backlog))
    return MemoryEstimate(
        phase=phase.name, index=index, requests=phase.expected_requests,
        concurrency=phase.concurrency, backlog=backlog_capacity(phase.rate, spec.target.max_backlog),
        bytes_needed=phase_memory_bytes(phase, spec.target.max_backlog),
    )


def memory_problem(estimate: MemoryEstimate, limit_bytes: int) -> str | None:
    """Why the run does not fit in ``limit_bytes``, or None when it does."""
    if estimate.bytes_needed <= limit_bytes:
        return None
    return (f"the run would need about {format_bytes(estimate.bytes_needed)} of memory, more than the "
            f"{format_bytes(limit_bytes)} of this machine: phase {estimate.phase} expects "
            f"{estimate.requests:,} requests (each read back to judge it), {estimate.concurrency:,} "
            f"in flight and up to {estimate.backlog:,} waiting; lower its rate x duration, its "
            "concurrency or target.max_backlog, or split it into several runs")


def format_bytes(count: int) -> str:
    """``129054592`` -> ``123.1 MiB``; binary units, one decimal."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
