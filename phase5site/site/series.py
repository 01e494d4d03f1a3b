"""Chart-ready rows from stored aggregates: pure functions, no IO.

Inputs are the per-second rows of ``RunReader.per_second`` and the sample rows of
``RunReader.samples``; outputs are small lists of dicts with a time axis ``t_s`` (seconds
since the run started). A long phase has more seconds than a chart can show and a page can
carry, so per-second rows are merged into buckets of ``bucket_s`` seconds: counts are
summed, rates are recomputed from the sums, and latency percentiles take the *worst* second
of the bucket (a percentile of a bucket cannot be rebuilt from per-second percentiles; the
maximum is the honest conservative summary, and the chart title says so).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

MAX_POINTS = 900  # per series; keeps a 2 h run's page far below 1.5 MB
LATENCY_KEYS = ("p50_ms", "p95_ms", "p99_ms")
LAG_KEYS = ("send_lag_max_ms", "generator_lag_max_ms")
COUNT_KEYS = ("intended", "sends", "ok", "http_4xx", "http_5xx", "timeout", "connect_error", "body_too_large",
              "dropped")


def bucket_seconds(total_s: float, max_points: int = MAX_POINTS) -> int:
    """Smallest whole bucket length that keeps a series at or under ``max_points``.

    Example: a 2 h 10 min run (7800 s) with 900 points -> ``ceil(7800 / 900)`` = 9 s.
    """
    if total_s <= max_points:
        return 1
    return math.ceil(total_s / max_points)


def _round(value: Any, digits: int = 3) -> float | None:
    if value is None:
        return None
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        return None
    return round(number, digits)


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator <= 0 else numerator / denominator


def per_second_rows(per_second: dict[str, list[dict[str, Any]]], phase_offsets_s: dict[str, float],
                    bucket_s: int, phase_lengths_s: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Merge every phase's per-second rows into buckets on the run's time axis.

    Example: two seconds ``{second: 0, intended: 10, sends: 10, http_5xx: 1, p95_ms: 40}`` and
    ``{second: 1, intended: 30, sends: 30, http_5xx: 1, p95_ms: 90}`` with bucket 2 ->
    ``t_s`` 0, achieved rate 20 req/s, 5xx share 2/40 = 0.05, p95 90 ms (the worst second).
    Shares are of every request intended, dropped ones included (a drop is a failure);
    send lags take the worst second too.

    A phase's last bucket is often shorter than ``bucket_s`` (a 600 s warmup in 9 s buckets
    ends with 6 s): with ``phase_lengths_s`` its rate is divided by the seconds it really
    covers, so the chart shows no false dip at every phase end.
    """
    merged: list[dict[str, Any]] = []
    for phase, rows in per_second.items():
        offset_s = phase_offsets_s.get(phase, 0.0)
        length_s = (phase_lengths_s or {}).get(phase)
        buckets: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            buckets.setdefault(int(row["second"]) // bucket_s, []).append(row)
        for index in sorted(buckets):
            span_s = bucket_s
            if length_s is not None:
                span_s = max(1, min(bucket_s, math.ceil(length_s) - index * bucket_s))
            merged.append(_merge_bucket(phase, offset_s + index * bucket_s, span_s, buckets[index]))
    merged.sort(key=lambda row: row["t_s"])
    return merged


def _merge_bucket(phase: str, t_s: float, span_s: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {key: sum(int(row.get(key) or 0) for row in rows) for key in COUNT_KEYS}
    # Every request intended in the bucket, dropped ones included: the denominator of each
    # share, as for the client columns (a dropped request is a failure, never left out).
    intended = counts["intended"]
    out: dict[str, Any] = {"t_s": round(t_s, 1), "phase": phase,
                           "achieved_rate": _round(counts["sends"] / span_s, 2),
                           "dropped": counts["dropped"]}
    for key in LATENCY_KEYS + LAG_KEYS:
        values = [float(row[key]) for row in rows if row.get(key) is not None]
        out[key] = _round(max(values), 2) if values else None
    out["share_4xx"] = _round(_ratio(counts["http_4xx"], intended), 5)
    out["share_5xx"] = _round(_ratio(counts["http_5xx"], intended), 5)
    out["share_transport"] = _round(_ratio(
        counts["timeout"] + counts["connect_error"] + counts["body_too_large"], intended), 5)
    out["share_dropped"] = _round(_ratio(counts["dropped"], intended), 5)
    return out


def sample_rows(samples: Iterable[dict[str, Any]], run_started_at: float,
                source: str | None) -> list[dict[str, Any]]:
    """One row per sample of the chosen source, placed at its window end on the run axis.
    Server latencies are stored in seconds (CSV v3) and shown in ms.

    Example: a sample with ``window_end`` = start + 600 and ``p95_latency`` 0.12 ->
    ``{"t_s": 600.0, "server_p95_ms": 120.0, ...}``.
    """
    rows = []
    for sample in samples:
        if source is not None and sample.get("source") != source:
            continue
        end = sample.get("window_end")
        if end is None:
            continue
        row: dict[str, Any] = {"t_s": round(float(end) - run_started_at, 1),
                               "phase": sample.get("phase"), "sample": sample.get("sample_num")}
        for quantile in ("50", "95", "99"):
            seconds = sample.get(f"p{quantile}_latency")
            row[f"server_p{quantile}_ms"] = None if seconds is None else _round(float(seconds) * 1000, 2)
        for key in ("request_rate", "error_rate_4xx", "error_rate_5xx", "raw_fallback_ratio",
                    "effective_fallback_ratio", "fb_http_ratio", "fb_message_ratio", "fb_cache_ratio",
                    "cache_hit_rate", "rss_mb", "cpu_percent", "client_p50_ms", "client_p95_ms",
                    "client_p99_ms"):
            row[key] = _round(sample.get(key), 5)
        for key in ("plugin_reload_p95", "plugin_reload_p99", "snapshot_operation_p95",
                    "snapshot_operation_p99"):
            seconds = sample.get(key)
            row[key + "_ms"] = None if seconds is None else _round(float(seconds) * 1000, 2)
        rows.append(row)
    rows.sort(key=lambda row: row["t_s"])
    return rows


def has_values(rows: list[dict[str, Any]], keys: Iterable[str]) -> bool:
    """True when at least one row has a non-NA value in one of ``keys``."""
    wanted = tuple(keys)
    return any(row.get(key) is not None for row in rows for key in wanted)
