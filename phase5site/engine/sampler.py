"""The sampler of an observed phase: one sample per window, server and client side.

Sample ``k`` (1..N) covers ``(t0 + (k-1)·T, t0 + k·T]``; the boundaries are an absolute
schedule from the phase start, so a slow query never shifts later windows. At each
boundary every metrics source is asked for that window only (per-interval deltas), then the
client columns of the same window are computed from the request rows once every request
intended in the window has completed or timed out (``completion_deadline``).
One row per source goes to ``samples``; the primary source's row is appended to
metrics.csv at once.

The load of a phase starts half a send period after the phase start (t0 + 0.5/rate), so no
request is intended exactly on a boundary and every window holds exactly rate x T requests.

A phase given only a ``duration`` is observed as one sample covering the whole phase.
With no metrics source, client-only rows (source ``none``) are stored so that client-side
verdicts exist; their server columns are NA with the reason ``metrics source none``.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

from phase5site.columns import CSV_V3_COLUMNS, SERVER_COUNT_COLUMNS, SERVER_WINDOW_COLUMNS
from phase5site.runspec.models import PhaseSpec

NO_SOURCE_REASON = "metrics source none"


@dataclass(frozen=True)
class SamplePlan:
    """How many samples a phase takes and how long each window is.

    >>> from phase5site.runspec.models import PhaseSpec
    >>> SamplePlan.of(PhaseSpec(name="b", rate=1, concurrency=1, samples=3, interval=60))
    SamplePlan(count=3, interval_s=60.0)
    >>> SamplePlan.of(PhaseSpec(name="d", rate=1, concurrency=1, duration=90))
    SamplePlan(count=1, interval_s=90.0)
    >>> SamplePlan.of(PhaseSpec(name="w", rate=1, concurrency=1, duration=90, observe=False))
    SamplePlan(count=0, interval_s=None)
    """

    count: int
    interval_s: float | None

    @classmethod
    def of(cls, phase: PhaseSpec) -> SamplePlan:
        if not phase.observe:
            return cls(0, None)
        if phase.samples is not None and phase.interval is not None:
            return cls(phase.samples, float(phase.interval))
        return cls(1, float(phase.planned_duration_s))


def server_columns() -> tuple[str, ...]:
    return tuple(c for c in CSV_V3_COLUMNS if c not in ("timestamp", "sample_num")) + tuple(
        SERVER_COUNT_COLUMNS
    )


def sample_row(
    *,
    phase: str,
    sample_num: int,
    source: str,
    timestamp: str,
    window_start: float,
    window_end: float,
    values: dict[str, Any],
    na_reasons: dict[str, str],
    client: dict[str, Any],
    server_window: dict[str, float] | None = None,
) -> dict[str, Any]:
    """One ``samples`` row: server values of one source plus the window's client columns.

    Every server column missing from ``values`` is NA, with a reason (never a default).

    >>> row = sample_row(phase="b", sample_num=1, source="none", timestamp="t",
    ...                  window_start=0.0, window_end=60.0, values={}, na_reasons={},
    ...                  client={"client_requests": 10})
    >>> row["http_success_rate"], row["na_reasons"]["http_success_rate"], row["window_s"]
    (None, 'not reported by source none', 60.0)
    """
    row: dict[str, Any] = {
        "phase": phase,
        "sample_num": sample_num,
        "source": source,
        "timestamp": timestamp,
        "window_start": window_start,
        "window_end": window_end,
        "window_s": window_end - window_start,
        # The interval the server values actually cover (columns.SERVER_WINDOW_COLUMNS):
        # NA when the source had no two readings (then every server column is NA too).
        **dict.fromkeys(SERVER_WINDOW_COLUMNS),
        **(server_window or {}),
    }
    reasons: dict[str, str] = {}
    for column in server_columns():
        value = values.get(column)
        row[column] = value
        if value is None:
            reasons[column] = na_reasons.get(column) or f"not reported by source {source}"
    row.update(client)
    row["na_reasons"] = reasons
    return row


def completion_deadline(
    window_end: float,
    *,
    timeout_s: float,
    phase_end: float,
    next_window_end: float | None,
) -> float:
    """Until when the client columns of a window wait for its requests to have rows.

    A request intended before the window end may wait in the backlog, but not past the end
    of its phase (then it is dropped, with a row), and once sent it takes at most
    ``timeout_s``. So every request of the window has a row by ``phase_end + timeout_s``
    (plus a second for the rows to reach the store). Those are the window's slowest
    requests, so leaving them out would understate its percentiles. The wait never reaches
    into the next window's scrape (a quarter second before its end), and is never shorter
    than ``timeout_s + 1``.

    >>> completion_deadline(100.0, timeout_s=5, phase_end=100.0, next_window_end=None)
    106.0
    >>> completion_deadline(100.0, timeout_s=5, phase_end=200.0, next_window_end=110.0)
    109.75
    >>> completion_deadline(100.0, timeout_s=2, phase_end=200.0, next_window_end=103.0)
    103.0
    """
    worst = max(window_end, phase_end) + timeout_s + 1.0
    if next_window_end is not None:
        worst = min(worst, next_window_end - 0.25)
    return max(window_end + timeout_s + 1.0, worst)


async def wait_for_window_completion(
    oldest_outstanding, window_end_mono: float, deadline_mono: float, now
) -> bool:
    """Wait until no request intended at or before the window end is queued or in flight.

    Returns False when the deadline came first (the client columns then miss those).
    """
    while True:
        oldest = oldest_outstanding()
        if oldest is None or oldest > window_end_mono:
            return True
        if now() >= deadline_mono:
            return False
        await asyncio.sleep(0.02)


def describe_na(reasons: dict[str, str]) -> str:
    """Group NA columns by reason for one observe.log line.

    >>> describe_na({"a": "absent", "b": "absent", "c": "down"})
    'NA a, b (absent); NA c (down)'
    """
    grouped: dict[str, list[str]] = {}
    for column, reason in reasons.items():
        grouped.setdefault(reason, []).append(column)
    return "; ".join(f"NA {', '.join(cols)} ({reason})" for reason, cols in grouped.items())

