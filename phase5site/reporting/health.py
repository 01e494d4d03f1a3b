"""Generator health and drops of a phase, read from the store for reports and the site.

The figures come from the request table (drops, send lag: ``RunReader.send_lag``) and from
the sample windows' generator columns (``columns.GENERATOR_COLUMNS``); the verdict side of
it (INVALID client latency) is ``slo.generator``. Runs recorded before generator health was
measured read as not measured, never as healthy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from phase5site.quantiles import ratio
from phase5site.reporting.models import GeneratorHealth, WindowHealth
from phase5site.slo.categories import client_intended, number

Row = Mapping[str, Any]


def _count(value: float | None) -> int | float | None:
    """Counts stored as numbers read back as ints when whole (server counts may be fractional)."""
    return int(value) if value is not None and value == int(value) else value


def window_health(row: Row) -> WindowHealth:
    """One sample row's generator figures. Example: a row with ``generator_limited`` True,
    lag p99 40 ms -> ``WindowHealth(..., generator_lag_p99_ms=40.0, generator_limited=True)``."""
    sample_num = number(row, "sample_num")
    limited = row.get("generator_limited")
    return WindowHealth(
        sample_num=None if sample_num is None else int(sample_num),
        window_end=number(row, "window_end"),
        intended=_count(client_intended(row)),
        dropped=_count(number(row, "dropped")),
        generator_lag_p99_ms=number(row, "generator_lag_p99_ms"),
        generator_lag_max_ms=number(row, "generator_lag_max_ms"),
        generator_cpu_ratio=number(row, "generator_cpu_ratio"),
        loop_lag_max_ms=number(row, "loop_lag_max_ms"),
        generator_limited=None if limited is None else bool(limited),
    )


def _worst(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None


def phase_health(reader: Any, phase: str, client_samples: Sequence[Row]) -> GeneratorHealth | None:
    """Drops, send lag and window health of ``phase``; None when it has no request rows."""
    outcomes = reader.outcome_counts(phase)
    intended = sum(outcomes.values())
    if intended == 0:
        return None
    lag = reader.send_lag(phase)
    windows = [window_health(row) for row in client_samples]
    return GeneratorHealth(
        intended=intended,
        dropped=outcomes.get("dropped", 0),
        dropped_share=ratio(outcomes.get("dropped", 0), intended),
        sends=lag["sends"],
        send_lag_p50_ms=lag["send_lag_p50_ms"],
        send_lag_p99_ms=lag["send_lag_p99_ms"],
        send_lag_max_ms=lag["send_lag_max_ms"],
        free_slot_sends=lag["free_slot_sends"],
        generator_lag_p50_ms=lag["generator_lag_p50_ms"],
        generator_lag_p99_ms=lag["generator_lag_p99_ms"],
        generator_lag_max_ms=lag["generator_lag_max_ms"],
        generator_cpu_ratio_max=_worst([w.generator_cpu_ratio for w in windows]),
        loop_lag_max_ms=_worst([w.loop_lag_max_ms for w in windows]),
        measured=lag["free_slot_sends"] > 0 or any(
            w.generator_limited is not None or w.generator_cpu_ratio is not None for w in windows),
        windows=windows,
        limited_samples=[w.sample_num for w in windows if w.generator_limited and w.sample_num is not None],
    )
