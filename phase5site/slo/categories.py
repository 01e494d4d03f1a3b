"""The SLO categories of DESIGN.md ("SLO verdicts") and how each reads a sample row.

A ratio category gives, per sample, ``(good, total)`` from the stored count columns; the
phase value is ``sum(good) / sum(total)`` (pooled), never the mean of per-sample ratios.
When the counts were not stored (legacy CSV files have only ratio columns for HTTP), the
HTTP request count is reconstructed as ``request_rate x window_s`` and ``good`` as
``ratio x total``, and the row says so.

A sample whose counts are impossible (a negative increase, ok + 4xx + 5xx above the
requests) has them NA from the sample gate (``columns.gate_row``), and with them the counts
read together with them (``columns.SIBLING_COUNTS``) and every ratio column made of them
(``columns.DERIVED_FROM``): a reader then finds neither counts nor a
ratio to fall back on, and the sample is no evidence for the category. Likewise a drop
count that is NA for a stored reason is unknown, not 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from phase5site.slo.models import Comparison
from phase5site.runspec.models import SloSpec

Row = Mapping[str, Any]
Counts = tuple[float, float]


def number(row: Row, column: str) -> float | None:
    """A numeric column of a sample row, ``None`` for NA/absent/unparseable/not finite."""
    value = row.get(column)
    if value is None or value == "" or value == "NA":
        return None
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None  # NaN is NA; so is an infinite value


def _sum(row: Row, columns: tuple[str, ...]) -> float | None:
    values = [number(row, column) for column in columns]
    if any(value is None for value in values):
        return None
    return float(sum(values))  # type: ignore[arg-type]


def server_requests(row: Row) -> tuple[float | None, bool]:
    """Δ http_requests_total of a sample, and whether it had to be reconstructed."""
    stored = number(row, "server_requests")
    if stored is not None:
        return stored, False
    rate, window_s = number(row, "request_rate"), number(row, "window_s")
    if rate is not None and window_s:
        return rate * window_s, True
    return None, False


def _server_ratio_counts(good_columns: tuple[str, ...], ratio_column: str, bad: bool) -> Callable[[Row], Counts | None]:
    def counts(row: Row) -> Counts | None:
        total, reconstructed = server_requests(row)
        if total is None:
            return None
        if not reconstructed:
            part = _sum(row, good_columns)
        else:
            ratio = number(row, ratio_column)
            part = None if ratio is None else ratio * total
        if part is None:
            return None
        return (total - part, total) if bad else (part, total)

    return counts


def _count_columns(good: tuple[str, ...], other: tuple[str, ...]) -> Callable[[Row], Counts | None]:
    def counts(row: Row) -> Counts | None:
        good_count = _sum(row, good)
        other_count = _sum(row, other)
        if good_count is None or other_count is None:
            return None
        return good_count, good_count + other_count

    return counts


CLIENT_OUTCOME_COLUMNS = ("client_ok", "client_4xx", "client_5xx", "client_transport_errors")


def client_intended(row: Row) -> float | None:
    """Requests intended in a sample window, dropped ones included (the client denominator).

    Since issue 11, ``client_requests`` counts the dropped requests; rows written before
    counted only the sent ones and kept ``dropped`` beside them. Outcomes partition the
    requests, so the stored counts say which: when ok + 4xx + 5xx + transport alone make
    ``client_requests``, the drops are added.

    >>> client_intended({"client_requests": 100, "client_ok": 95, "client_4xx": 0, "client_5xx": 0,
    ...                  "client_transport_errors": 0, "dropped": 5})
    100.0
    >>> client_intended({"client_requests": 95, "client_ok": 95, "client_4xx": 0, "client_5xx": 0,
    ...                  "client_transport_errors": 0, "dropped": 5})
    100.0
    """
    total = number(row, "client_requests")
    dropped = number(row, "dropped")
    if total is None or not dropped:
        return total
    answered = _sum(row, CLIENT_OUTCOME_COLUMNS)
    return total + dropped if answered is not None and answered == total else total


def stored_reason(row: Row, column: str) -> str | None:
    """The NA reason a sample stores for a column (``na_reasons``), if any."""
    reasons = row.get("na_reasons")
    if not isinstance(reasons, Mapping) or not reasons.get(column):
        return None
    return str(reasons[column])


def _client_counts(parts: tuple[str, ...]) -> Callable[[Row], Counts | None]:
    def counts(row: Row) -> Counts | None:
        if number(row, "dropped") is None and stored_reason(row, "dropped"):
            return None  # the drops are NA for a reason (the gate refused them): not 0
        total = client_intended(row)
        # A row without a dropped count (hand-made, or an import) had no drops to count.
        part = _sum({**row, "dropped": number(row, "dropped") or 0.0}, parts)
        if total is None or part is None:
            return None
        return part, total

    return counts


def _effective_fallback_counts(row: Row) -> Counts | None:
    total, _ = server_requests(row)
    fallback = number(row, "effective_fallback_total")
    if total is None or fallback is None:
        return None
    return fallback, total


@dataclass(frozen=True)
class RatioReader:
    """How one source reads a ratio category: counts per sample and the stored ratio column."""

    counts: Callable[[Row], Counts | None]
    ratio_column: str | None
    columns: tuple[str, ...]  # columns whose NA reasons explain an NA (a tie names the first)


@dataclass(frozen=True)
class Category:
    name: str
    title: str
    mandatory: bool
    comparison: Comparison
    threshold_field: str  # SloSpec attribute
    unit: str
    kind: str  # 'ratio' | 'latency' | 'memory'
    server: RatioReader | None = None
    client: RatioReader | None = None
    quantile: float | None = None
    # Server counters whose movement shows the load reached the category's code path; all
    # measured and summing to zero over the phase = not exercised. Empty: always exercised
    # (a gauge). 'latency_buckets' stands for the histogram's count.
    exercise: tuple[str, ...] = ()

    def threshold(self, slo: SloSpec) -> float:
        return float(getattr(slo, self.threshold_field))


CATEGORIES: tuple[Category, ...] = (
    Category(
        "success_rate", "HTTP success rate (2xx/3xx)", True, ">=", "success_rate_min", "ratio", "ratio",
        server=RatioReader(
            _server_ratio_counts(("server_ok",), "http_success_rate", bad=False),
            "http_success_rate", ("http_success_rate", "server_ok", "server_requests"),
        ),
        client=RatioReader(_client_counts(("client_ok",)), "client_success_rate",
                           ("client_requests", "client_ok", "dropped", "client_success_rate")),
        exercise=("server_requests",),
    ),
    Category(
        "error_rate", "Error rate (4xx + 5xx + transport + dropped)", True, "<=", "error_rate_max", "ratio", "ratio",
        server=RatioReader(
            _server_ratio_counts(("server_4xx", "server_5xx"), "error_rate", bad=False),
            "error_rate", ("error_rate", "server_4xx", "server_5xx", "server_requests"),
        ),
        client=RatioReader(
            _client_counts(("client_4xx", "client_5xx", "client_transport_errors", "dropped")),
            "client_error_rate", ("client_requests", "client_4xx", "client_5xx", "client_transport_errors",
                                  "dropped", "client_error_rate"),
        ),
        exercise=("server_requests",),
    ),
    Category("latency_p95", "Latency P95", True, "<=", "latency_p95_ms", "ms", "latency", quantile=0.95,
             exercise=("latency_buckets",)),
    Category("latency_p99", "Latency P99", True, "<=", "latency_p99_ms", "ms", "latency", quantile=0.99,
             exercise=("latency_buckets",)),
    Category(
        "effective_fallback", "Effective fallback ratio", True, "<=", "effective_fallback_max", "ratio", "ratio",
        server=RatioReader(
            _effective_fallback_counts, "effective_fallback_ratio",
            ("effective_fallback_ratio", "effective_fallback_total", "server_requests"),
        ),
        # A fallback can only happen where a fallible call ran: a fallback counted, or an
        # attempt of the HTTP adapter, the message bus or the cache.
        exercise=("raw_fallback_total", "http_adapter_ops", "message_bus_rpc_attempts", "cache_get_attempts"),
    ),
    Category("memory", "Memory (mean RSS)", True, "<=", "rss_mean_mb_max", "MiB", "memory"),
    Category(
        "cache_hit_rate", "Cache hit rate", True, ">=", "cache_hit_rate_min", "ratio", "ratio",
        server=RatioReader(
            _count_columns(("cache_hits_raw",), ("cache_misses_raw",)), "cache_hit_rate",
            ("cache_hit_rate", "cache_hits_raw", "cache_misses_raw"),
        ),
        exercise=("cache_hits_raw", "cache_misses_raw"),
    ),
    Category(
        "plugin_reload_success", "Plugin reload success", False, ">=", "plugin_reload_success_min",
        "ratio", "ratio",
        server=RatioReader(
            _count_columns(("plugin_reload_success",), ("plugin_reload_failure",)),
            "plugin_reload_success_rate",
            ("plugin_reload_success_rate", "plugin_reload_success", "plugin_reload_failure"),
        ),
        exercise=("plugin_reload_success", "plugin_reload_failure"),
    ),
    Category(
        "snapshot_success", "Snapshot success", False, ">=", "snapshot_success_min", "ratio", "ratio",
        server=RatioReader(
            _count_columns(
                ("snapshot_create_success", "snapshot_restore_success"),
                ("snapshot_create_failure", "snapshot_restore_failure"),
            ),
            "snapshot_success_rate",
            ("snapshot_success_rate", "snapshot_create_success", "snapshot_restore_success"),
        ),
        exercise=("snapshot_create_success", "snapshot_create_failure",
                  "snapshot_restore_success", "snapshot_restore_failure"),
    ),
)

CATEGORY_BY_NAME: dict[str, Category] = {category.name: category for category in CATEGORIES}
