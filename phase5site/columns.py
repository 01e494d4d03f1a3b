"""The shared vocabulary of sample columns (see CSV_V3.md in the design documents).

``CSV_V3_COLUMNS`` is the exact 41-column header of ``metrics.csv`` as the old observer
scripts wrote it; the order matters for export. ``SERVER_COUNT_COLUMNS`` and
``CLIENT_COLUMNS`` are stored beside them in the ``samples`` table so that every ratio can be
pooled over a phase (sum of numerators over sum of denominators) and every server-side
quantile can be recomputed from pooled bucket deltas.
"""

from __future__ import annotations

CSV_V3_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "http_success_rate",
    "p50_latency",
    "p90_latency",
    "p95_latency",
    "p99_latency",
    "raw_fallback_ratio",
    "effective_fallback_ratio",
    "error_rate",
    "error_rate_4xx",
    "error_rate_5xx",
    "cpu_percent",
    "rss_mb",
    "request_rate",
    "raw_fallback_total",
    "effective_fallback_total",
    "fallback_http",
    "fallback_message",
    "fallback_cache",
    "http_adapter_ops",
    "message_bus_rpc_attempts",
    "cache_get_attempts",
    "fb_http_ratio",
    "fb_message_ratio",
    "fb_cache_ratio",
    "plugin_reload_success",
    "plugin_reload_failure",
    "snapshot_create_success",
    "snapshot_create_failure",
    "snapshot_restore_success",
    "snapshot_restore_failure",
    "cache_hit_rate",
    "plugin_reload_p95",
    "plugin_reload_p99",
    "plugin_reload_success_rate",
    "snapshot_operation_p95",
    "snapshot_operation_p99",
    "snapshot_success_rate",
    "cache_hits_raw",
    "cache_misses_raw",
    "sample_num",
)

# CSV v3 columns that are window counts (Δ of a counter) by definition.
CSV_V3_COUNT_COLUMNS: tuple[str, ...] = (
    "raw_fallback_total",
    "effective_fallback_total",
    "fallback_http",
    "fallback_message",
    "fallback_cache",
    "http_adapter_ops",
    "message_bus_rpc_attempts",
    "cache_get_attempts",
    "plugin_reload_success",
    "plugin_reload_failure",
    "snapshot_create_success",
    "snapshot_create_failure",
    "snapshot_restore_success",
    "snapshot_restore_failure",
    "cache_hits_raw",
    "cache_misses_raw",
)

# Server-side window counts that CSV v3 only has as ratios; stored so ratios can be pooled.
# Bucket columns hold JSON lists of [upper_bound, delta_count] pairs ("+Inf" as the string).
SERVER_COUNT_COLUMNS: tuple[str, ...] = (
    "server_requests",  # Δ http_requests_total
    "server_ok",  # Δ http_requests_total{status=~"2..|3.."}
    "server_4xx",
    "server_5xx",
    "latency_buckets",  # Δ http_server_requests_seconds_bucket by le (JSON)
    "plugin_reload_buckets",  # Δ metasheet_plugin_reload_duration_seconds_bucket by le (JSON)
    "snapshot_buckets",  # Δ metasheet_snapshot_operation_duration_seconds_bucket by le (JSON)
)

# Client-side values for the same window, from the requests table (requests *intended*
# inside the window). Latencies in milliseconds, exact (not from buckets). A dropped request
# counts: in client_requests, as a failure and an error, and in the percentiles as a
# censored value ranked above every sent request (quantiles.censored_ranking).
CLIENT_COLUMNS: tuple[str, ...] = (
    "client_requests",  # every request intended in the window, dropped ones included
    "client_ok",
    "client_4xx",
    "client_5xx",
    "client_transport_errors",  # timeout + connect_error (dropped ones are in `dropped`)
    "client_p50_ms",
    "client_p90_ms",
    "client_p95_ms",
    "client_p99_ms",
    "client_success_rate",  # client_ok / client_requests
    "client_error_rate",  # (4xx + 5xx + transport + dropped) / client_requests
    "client_error_rate_4xx",
    "client_error_rate_5xx",
    "achieved_rate",  # sends in the window / window length
    "dropped",
)

# Columns that describe the window itself (beside phase, sample_num and source, which
# with them key a sample: source is prometheus | scrape | import | none).
WINDOW_COLUMNS: tuple[str, ...] = (
    "window_start",  # UTC epoch seconds (DOUBLE)
    "window_end",
    "window_s",
    "na_reasons",  # JSON object: column -> why it is NA
)

# Generator health of the same window (DESIGN.md, "Generator health"): the load generator's
# own send lag (sent_at - intended_at of requests that had a free slot when due), its CPU and
# event-loop lag. A window whose own-lag p99 exceeds target.max_generator_lag is
# generator-limited: its client latency is not a verdict on the service.
GENERATOR_COLUMNS: tuple[str, ...] = (
    "generator_lag_p99_ms",  # nearest-rank p99 of own send lag (slot free when due)
    "generator_lag_max_ms",
    "generator_cpu_ratio",  # CPU seconds of the load workers / window seconds (1.0 = one core)
    "loop_lag_max_ms",  # worst lateness of the workers' 10 ms event-loop probe
    "generator_limited",  # BOOLEAN: generator_lag_p99_ms > target.max_generator_lag
)
OUTCOMES: tuple[str, ...] = ("ok", "http_4xx", "http_5xx", "timeout", "connect_error", "dropped")
