"""Measured quantities of one window → CSV v3 columns + SERVER_COUNT_COLUMNS. Pure.

Each formula is the one in CSV_V3.md; NA rules: a ratio with a zero denominator, an input
that is NA (family absent, source unreachable) → None with a reason, never a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from phase5site.columns import (
    CSV_V3_COLUMNS,
    CSV_V3_COUNT_COLUMNS,
    SERVER_COUNT_COLUMNS,
    SampleLimits,
    gate_value,
)
from phase5site.metrics.counters import Measured, buckets_json
from phase5site.metrics.profile import NOT_EXPORTED, QUANTILE_COLUMNS
from phase5site.quantiles import histogram_quantile

BYTES_PER_MIB = 2**20
# Columns that are a window count copied from the quantity of the same name.
# effective_fallback_total is derived (see ``window_columns``), not copied.
COUNT_COLUMNS: tuple[str, ...] = tuple(
    c for c in CSV_V3_COUNT_COLUMNS if c != "effective_fallback_total"
) + ("server_requests", "server_ok", "server_4xx", "server_5xx")
BUCKET_COLUMNS: dict[str, str] = {
    "latency_buckets": "latency",
    "plugin_reload_buckets": "plugin_reload",
    "snapshot_buckets": "snapshot",
}
# Every column a source fills: CSV v3 without timestamp/sample_num, plus the server counts.
SOURCE_COLUMNS: tuple[str, ...] = tuple(
    c for c in CSV_V3_COLUMNS if c not in ("timestamp", "sample_num")
) + SERVER_COUNT_COLUMNS
# Quantities whose range is that of a column of another name (histograms: their buckets).
# cpu_seconds and rss_bytes are checked as the columns they become (cpu_percent, rss_mb).
QUANTITY_RANGE_COLUMN: dict[str, str] = {
    **{quantity: column for column, quantity in BUCKET_COLUMNS.items()},
    "effective_fallback_reported": "effective_fallback_total",
}


def gated(measured: Mapping[str, Measured], limits: SampleLimits, *, name_input: bool = False) -> dict[str, Measured]:
    """Every value through the one gate (``columns.gate_value``): an impossible one is NA
    with a reason quoting it. ``name_input`` prefixes the quantity's name, for inputs whose
    reason is carried on to the columns computed from them.

    >>> gated({"server_5xx": Measured(-5.0)}, SampleLimits(), name_input=True)["server_5xx"].reason
    'server_5xx: raw value -5.0 is below 0: a counter increase over the window cannot be'
    """
    out: dict[str, Measured] = {}
    for name, measured_value in measured.items():
        problem = gate_value(QUANTITY_RANGE_COLUMN.get(name, name), measured_value.value, limits)
        if problem is None:
            out[name] = measured_value
        else:
            out[name] = Measured.na(f"{name}: {problem}" if name_input else problem)
    return out


def ratio(numerator: Measured, denominator: Measured, what: str) -> Measured:
    """numerator / denominator, NA when either is NA or the denominator is 0.

    >>> ratio(Measured(3.0), Measured(4.0), "x").value
    0.75
    >>> ratio(Measured(0.0), Measured(0.0), "requests").reason
    'denominator zero (no requests in window)'
    """
    missing = [part for part in (numerator, denominator) if part.value is None]
    # A family the service never exports outranks a passing failure: it is why the ratio
    # can never be measured on this service, whatever the source says this window.
    missing.sort(key=lambda part: not (part.reason or "").startswith(NOT_EXPORTED))
    for part in missing:
        return Measured.na(part.reason or "input NA")
    if denominator.value == 0:
        return Measured.na(f"denominator zero (no {what} in window)")
    return Measured(float(numerator.value) / float(denominator.value))  # type: ignore[arg-type]


def total(parts: list[Measured]) -> Measured:
    """Sum of counts; NA if any part is NA (a partial sum would understate)."""
    for part in parts:
        if part.value is None:
            return part
    return Measured(float(sum(float(part.value) for part in parts)))  # type: ignore[arg-type]


def scaled(measured: Measured, factor: float) -> Measured:
    if measured.value is None:
        return measured
    return Measured(float(measured.value) * factor)  # type: ignore[arg-type]


def effective_fallback(q: Mapping[str, Measured], count_cache_miss: bool) -> Measured:
    """Δ metasheet_fallback_effective_total; when the service does not export that family,
    raw minus cache misses, or raw when COUNT_CACHE_MISS_AS_FALLBACK (CSV_V3.md).

    >>> q = {"effective_fallback_reported": Measured(None, "absent", absent=True),
    ...      "raw_fallback_total": Measured(10.0), "fallback_cache": Measured(4.0)}
    >>> effective_fallback(q, False).value, effective_fallback(q, True).value
    (6.0, 10.0)
    """
    reported = q["effective_fallback_reported"]
    if reported.value is not None or not reported.absent:
        return reported
    raw = q["raw_fallback_total"]
    if count_cache_miss or raw.value is None:
        return raw
    cache = q["fallback_cache"]
    if cache.value is None:
        return cache
    return Measured(float(raw.value) - float(cache.value))  # type: ignore[arg-type]


def quantile_of(buckets: Measured, q: float) -> Measured:
    if buckets.value is None:
        return buckets
    value = histogram_quantile(q, buckets.value)  # type: ignore[arg-type]
    if value is None:
        return Measured.na("no observations in window (or fewer than 2 buckets)")
    return Measured(value)


def _ratios(q: Mapping[str, Measured], out: dict[str, Measured]) -> None:
    requests = q["server_requests"]
    errors = total([q["server_4xx"], q["server_5xx"]])
    out["http_success_rate"] = ratio(q["server_ok"], requests, "requests")
    out["error_rate"] = ratio(errors, requests, "requests")
    out["error_rate_4xx"] = ratio(q["server_4xx"], requests, "requests")
    out["error_rate_5xx"] = ratio(q["server_5xx"], requests, "requests")
    out["raw_fallback_ratio"] = ratio(out["raw_fallback_total"], requests, "requests")
    out["effective_fallback_ratio"] = ratio(out["effective_fallback_total"], requests, "requests")
    out["fb_http_ratio"] = ratio(q["fallback_http"], q["http_adapter_ops"], "adapter ops")
    out["fb_message_ratio"] = ratio(q["fallback_message"], q["message_bus_rpc_attempts"], "RPC attempts")
    out["fb_cache_ratio"] = ratio(q["fallback_cache"], q["cache_get_attempts"], "cache gets")
    lookups = total([q["cache_hits_raw"], q["cache_misses_raw"]])
    out["cache_hit_rate"] = ratio(q["cache_hits_raw"], lookups, "cache lookups")
    reloads = total([q["plugin_reload_success"], q["plugin_reload_failure"]])
    out["plugin_reload_success_rate"] = ratio(q["plugin_reload_success"], reloads, "plugin reloads")
    snapshot_ok = total([q["snapshot_create_success"], q["snapshot_restore_success"]])
    snapshots = total([snapshot_ok, q["snapshot_create_failure"], q["snapshot_restore_failure"]])
    out["snapshot_success_rate"] = ratio(snapshot_ok, snapshots, "snapshot operations")


def measured_columns(
    q: Mapping[str, Measured], window_s: float, *, count_cache_miss: bool,
    limits: SampleLimits = SampleLimits(),
) -> dict[str, Measured]:
    """Every SOURCE_COLUMNS value as a Measured, from the quantities of one window.

    Inputs pass the gate before any formula, so a column computed from an impossible input
    is NA naming it (an error count of -5 is not an error rate of -0.4 %). The caller gates
    the columns themselves once its overrides are in (``gated``).

    Example: server_requests 1200, server_ok 1188 over a 600 s window →
    http_success_rate 0.99, request_rate 2.0 req/s.
    """
    q = gated(q, limits, name_input=True)
    out: dict[str, Measured] = {column: q[column] for column in COUNT_COLUMNS}
    out["effective_fallback_total"] = effective_fallback(q, count_cache_miss)
    _ratios(q, out)
    if window_s > 0:
        out["request_rate"] = scaled(q["server_requests"], 1.0 / window_s)
        out["cpu_percent"] = scaled(q["cpu_seconds"], 100.0 / window_s)
    else:
        out["request_rate"] = out["cpu_percent"] = Measured.na(f"empty window ({window_s:g} s)")
    out["rss_mb"] = scaled(q["rss_bytes"], 1.0 / BYTES_PER_MIB)
    for column, (histogram, quantile) in QUANTILE_COLUMNS.items():
        out[column] = quantile_of(q[histogram], quantile)
    for column, histogram in BUCKET_COLUMNS.items():
        buckets = q[histogram]
        out[column] = buckets if buckets.value is None else Measured(buckets_json(buckets.value))  # type: ignore[arg-type]
    return out


def split_values(measured: Mapping[str, Measured]) -> tuple[dict[str, Any], dict[str, str]]:
    """(values, na_reasons) as SampleResult wants them: every None has a reason."""
    values = {column: m.value for column, m in measured.items()}
    reasons = {column: m.reason or "not measured" for column, m in measured.items() if m.value is None}
    return values, reasons
