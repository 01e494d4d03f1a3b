"""Shared builders for the store tests: real DuckDB files in pytest's tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from phase5site.store import RequestRows, RunWriter

T0 = 1_764_000_000.0  # 2025-11-24 16:00:00 UTC


def new_writer(run_dir: Path, **overrides: Any) -> RunWriter:
    fields: dict[str, Any] = dict(
        run_id=run_dir.name,
        name="unit",
        spec_path="runspecs/unit.yaml",
        spec_sha256="0" * 64,
        spec_redacted={"name": "unit", "target": {"auth": {"bearer": "***"}}},
        environment={"python": "3.11"},
        tool_version="0.1.0",
        started_at=T0,
    )
    fields.update(overrides)
    return RunWriter.create(run_dir, **fields)


def begin(writer: RunWriter, name: str = "baseline", ordinal: int = 1, **overrides: Any) -> None:
    fields: dict[str, Any] = dict(
        ordinal=ordinal,
        rate=10.0,
        concurrency=2,
        planned_duration_s=10.0,
        samples=2,
        interval_s=5.0,
        observe=True,
        flags={"COUNT_CACHE_MISS_AS_FALLBACK": False},
        started_at=T0,
    )
    fields.update(overrides)
    writer.begin_phase(name, **fields)


def request(
    rows: RequestRows,
    seq: int,
    intended_at: float,
    outcome: str = "ok",
    latency_ms: float | None = 10.0,
    *,
    phase: str = "baseline",
    send_delay_s: float = 0.0,
    slot_free: bool | None = None,
    wait_ms: float | None = None,
) -> None:
    """Append one request. A dropped one gets no send time or status; its ``latency_ms`` is
    ``wait_ms``, the time it waited before it was dropped (None: not recorded, as the
    engine before schema 2 did)."""
    status = {"ok": 200, "http_4xx": 404, "http_5xx": 503}.get(outcome)
    if outcome == "dropped":
        rows.append(phase, seq, "health", intended_at, None, wait_ms, None, None, "dropped", None,
                    slot_free=slot_free)
        return
    rows.append(
        phase,
        seq,
        "health",
        intended_at,
        intended_at + send_delay_s,
        latency_ms,
        None if latency_ms is None else latency_ms - send_delay_s * 1000,
        status,
        outcome,
        None if status is None else 17,
        slot_free=slot_free,
    )
