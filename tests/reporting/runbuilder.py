"""Build real run folders (real DuckDB via RunWriter) with synthetic, known samples."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from phase5site.store import RequestRows, RunWriter

T0 = 1_764_000_000.0
BUCKET_BOUNDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


def buckets_for(latencies_s: list[float]) -> list[list[Any]]:
    """Cumulative le-buckets (MetaSheet bounds) for a set of observations."""
    pairs: list[list[Any]] = [[bound, sum(1 for v in latencies_s if v <= bound)] for bound in BUCKET_BOUNDS]
    pairs.append(["+Inf", len(latencies_s)])
    return pairs


def good_sample(phase: str, num: int, *, source: str = "prometheus", requests: int = 1000, **over: Any) -> dict[str, Any]:
    """A healthy sample: 99.5% success, fast, low fallback, 90% cache hits."""
    rng = random.Random(num)
    latencies = [rng.uniform(0.002, 0.09) for _ in range(requests)]
    row: dict[str, Any] = {
        "phase": phase,
        "sample_num": num,
        "source": source,
        "timestamp": "2025-11-24 20:00:00",
        "window_start": T0 + (num - 1) * 60,
        "window_end": T0 + num * 60,
        "window_s": 60.0,
        "server_requests": requests,
        "server_ok": requests - 5,
        "server_4xx": 3,
        "server_5xx": 2,
        "http_success_rate": (requests - 5) / requests,
        "error_rate": 5 / requests,
        "latency_buckets": buckets_for(latencies),
        "effective_fallback_total": 10,
        "raw_fallback_total": 20,
        "effective_fallback_ratio": 10 / requests,
        "fallback_http": 4,
        "http_adapter_ops": 400,
        "rss_mb": 200.0 + num,
        "cache_hits_raw": 90,
        "cache_misses_raw": 10,
        "cache_hit_rate": 0.9,
        "plugin_reload_success": 2,
        "plugin_reload_failure": 0,
        "snapshot_create_success": 1,
        "snapshot_create_failure": 0,
        "snapshot_restore_success": 1,
        "snapshot_restore_failure": 0,
        "client_requests": requests,
        "client_ok": requests - 2,
        "client_4xx": 1,
        "client_5xx": 1,
        "client_transport_errors": 0,
        "client_p95_ms": 85.0,
        "client_p99_ms": 89.0,
        "na_reasons": {},
    }
    row.update(over)
    return row


def make_run(
    root: Path,
    *,
    samples: list[dict[str, Any]],
    phase: str = "baseline",
    planned_samples: int | None = None,
    status: str = "completed",
    spec: dict[str, Any] | None = None,
    latencies_ms: list[float] | None = None,
    finish: bool = True,
    name: str = "synthetic",
    dropped_waits_ms: list[float | None] | None = None,
    client_from_requests: bool = False,
    mixed_requests: list[tuple[Any, ...]] | None = None,
    bytes_sent: int | None = None,
) -> Path:
    """A run folder with one observed phase holding ``samples`` and optional request rows.

    ``latencies_ms`` become 'ok' requests 12.5 ms apart from T0 (80 req/s), then
    ``dropped_waits_ms`` dropped ones that waited that long. With ``client_from_requests``
    each sample's client columns are the store's own window over those rows
    (``RunWriter.client_window``), as the engine writes them. ``mixed_requests`` are further
    rows ``(request_name, latency_ms, status, outcome, bytes)`` after those, 12.5 ms apart
    (a 'dropped' one gets sent_at NULL), optionally followed by ``error`` and ``bytes_sent``
    (schema 4). ``bytes_sent`` is each sent 'health' row's count, and a mixed row's when the
    row gives none (NULL by default: not recorded).
    """
    run_dir = root / f"{name}-run"
    writer = RunWriter.create(
        run_dir, run_id=run_dir.name, name=name, spec_path=None, spec_sha256=None,
        spec_redacted=spec or {"name": name, "phases": [{"name": phase}]}, environment={},
        tool_version="test", started_at=T0,
    )
    with writer:
        planned = planned_samples if planned_samples is not None else len(samples)
        writer.begin_phase(
            phase, ordinal=1, rate=80.0, concurrency=20, planned_duration_s=60.0 * planned,
            samples=planned, interval_s=60.0, observe=True, flags={}, started_at=T0,
        )
        sent = len(latencies_ms or [])
        if latencies_ms or dropped_waits_ms:
            rows = RequestRows()
            for seq, latency in enumerate(latencies_ms or []):
                at = T0 + seq * 0.0125
                rows.append(phase, seq, "health", at, at, latency, latency, 200, "ok", 10, None, None, None,
                            bytes_sent)
            for seq, wait in enumerate(dropped_waits_ms or [], start=sent):
                rows.append(phase, seq, "health", T0 + seq * 0.0125, None, wait, None, None, "dropped", None)
            writer.append_requests(rows)
        if mixed_requests:
            rows = RequestRows()
            first = len(latencies_ms or []) + len(dropped_waits_ms or [])
            for seq, (request_name, latency, code, outcome, size, *more) in enumerate(mixed_requests, start=first):
                at = T0 + seq * 0.0125
                sent_at = None if outcome == "dropped" else at
                error = more[0] if more else None
                sent_bytes = more[1] if len(more) > 1 else (None if sent_at is None else bytes_sent)
                rows.append(phase, seq, request_name, at, sent_at, latency, None if sent_at is None else latency,
                            code, outcome, size, None, None, error, sent_bytes)
            writer.append_requests(rows)
            sent += sum(1 for row in mixed_requests if row[3] != "dropped")
        for sample in samples:
            if client_from_requests:
                sample = {**sample, **writer.client_window(phase, sample["window_start"], sample["window_end"])}
            writer.add_sample(sample)
        writer.end_phase(
            phase, ended_at=T0 + 60.0 * max(1, len(samples)),
            # a run left unfinished was cut short in its (only) phase, as the engine records it
            status=status if finish else "interrupted",
            requests_sent=sent,
            dropped=len(dropped_waits_ms or []) + sum(1 for row in mixed_requests or [] if row[3] == "dropped"),
        )
        if finish:
            writer.finish(status, ended_at=T0 + 60.0 * max(1, len(samples)))
    return run_dir
