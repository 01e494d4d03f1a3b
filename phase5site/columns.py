"""The shared vocabulary of sample columns (see CSV_V3.md in the design documents).

``CSV_V3_COLUMNS`` is the exact 41-column header of ``metrics.csv`` as the old observer
scripts wrote it; the order matters for export. ``SERVER_COUNT_COLUMNS`` and
``CLIENT_COLUMNS`` are stored beside them in the ``samples`` table so that every ratio can be
pooled over a phase (sum of numerators over sum of denominators) and every server-side
quantile can be recomputed from pooled bucket deltas.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
    "client_transport_errors",  # timeout + connect_error + body_too_large (dropped: `dropped`)
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

# The NA reason of a column whose family the service does not export at all (the metrics
# profile's ``Family.exported``), stored as "not exported by this service: <family>". A fact
# about the service, not the window: such a column can never move, so it is neither
# evidence of exercise nor a sample's explained gap (slo.exercise reads it).
NOT_EXPORTED = "not exported by this service"

# Columns that describe the window itself (beside phase, sample_num and source, which
# with them key a sample: source is prometheus | scrape | import | none).
WINDOW_COLUMNS: tuple[str, ...] = (
    "window_start",  # UTC epoch seconds (DOUBLE)
    "window_end",
    "window_s",
    "na_reasons",  # JSON object: column -> why it is NA
)

# The interval the server-side values of a sample actually cover (schema 3, issue 12): the
# two readings diffed, so counts are exactly those of (server_window_start, server_window_end]
# and server rates are divided by server_window_s. Prometheus mode: the first and the last
# scrape Prometheus holds *inside* the window [window_start, window_end], so no sample of
# the previous window (or of a warmup before the phase) leaks in; scrape mode: the times
# the two pages were requested. NULL for client-only rows, imports and files before schema 3.
SERVER_WINDOW_COLUMNS: tuple[str, ...] = (
    "server_window_start",  # UTC epoch seconds of the reading at the start
    "server_window_end",  # UTC epoch seconds of the reading at the end
    "server_window_s",  # the interval server rates (request_rate, cpu_percent) are divided by
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
# body_too_large: the answer's body passed target.max_body_bytes; the client closed the
# connection instead of reading on (a transport failure, like timeout and connect_error).
OUTCOMES: tuple[str, ...] = ("ok", "http_4xx", "http_5xx", "timeout", "connect_error", "body_too_large",
                             "dropped")


# --- the physical range of each column, and the one gate every sample value passes -------
#
# A value outside its column's range is not a measurement (issue 13: Prometheus answered
# "+Inf", 1e400 and -5, which became an OverflowError in the verdict, an error rate of 200 %
# and CPU at -166 %). ``gate_value`` turns it into NA with a reason that quotes the raw value;
# the metrics sources, the store's writer and the evaluator all call it, so a value the
# table rejects can neither be stored nor judged.

MAX_CORES = 8192  # Linux's largest CONFIG_NR_CPUS: no one process has more cores than that
MAX_MEMORY_BYTES = float(2**52)  # 4 PiB: the most a 64-bit CPU addresses (52-bit physical)
COUNT_MAX = float(2**53)  # a float holds integers exactly up to 2^53; no window counts more
DAY_S = 86_400.0
LAST_EPOCH_S = 253_402_300_799.0  # 9999-12-31 23:59:59 UTC, the last instant datetime prints
# Two scrapes are not exactly one window apart (scrape interval, the scrape's own latency),
# so a busy process's CPU over a nominal window may read a little above cores x 100 %.
CPU_TIMING_SLACK = 1.25


@dataclass(frozen=True)
class SampleLimits:
    """The machine the service runs on, where known (the embedded target: this machine).

    Unknown: the largest any machine has (MAX_CORES, MAX_MEMORY_BYTES), so only a value no
    machine could produce is refused.
    """

    cpu_cores: float = MAX_CORES
    memory_bytes: float = MAX_MEMORY_BYTES


@dataclass(frozen=True)
class ColumnRange:
    """Where a column's values can lie. ``high`` is a number, or ``"cpu_percent"`` /
    ``"cpu_ratio"`` / ``"memory_mib"`` / ``"memory_bytes"``: the limit of the machine
    (``SampleLimits``)."""

    what: str  # the physical quantity, for the reason text
    low: float | None
    high: float | str | None
    kind: str = "number"  # number | buckets


_RATIO = ColumnRange("a ratio of a part to its whole", 0.0, 1.0)
_PER_REQUEST = ColumnRange("fallback events per request (one request may fall back twice)", 0.0, COUNT_MAX)
_COUNT = ColumnRange("a counter increase over the window", 0.0, COUNT_MAX)
_SECONDS = ColumnRange("a duration in seconds", 0.0, DAY_S)
_MS = ColumnRange("a duration in milliseconds", 0.0, DAY_S * 1000.0)
_RATE = ColumnRange("events per second", 0.0, COUNT_MAX)
_BUCKETS = ColumnRange("histogram bucket increases", 0.0, COUNT_MAX, kind="buckets")

COLUMN_RANGES: dict[str, ColumnRange] = {
    **dict.fromkeys(("http_success_rate", "error_rate", "error_rate_4xx", "error_rate_5xx",
                     "fb_http_ratio", "fb_message_ratio", "fb_cache_ratio", "cache_hit_rate",
                     "plugin_reload_success_rate", "snapshot_success_rate"), _RATIO),
    **dict.fromkeys(("raw_fallback_ratio", "effective_fallback_ratio"), _PER_REQUEST),
    **dict.fromkeys(("p50_latency", "p90_latency", "p95_latency", "p99_latency", "plugin_reload_p95",
                     "plugin_reload_p99", "snapshot_operation_p95", "snapshot_operation_p99"), _SECONDS),
    "cpu_percent": ColumnRange("CPU of the service process in % of one core", 0.0, "cpu_percent"),
    "rss_mb": ColumnRange("resident memory in MiB", 0.0, "memory_mib"),
    "request_rate": _RATE,
    **dict.fromkeys(CSV_V3_COUNT_COLUMNS, _COUNT),
    **dict.fromkeys(("server_requests", "server_ok", "server_4xx", "server_5xx"), _COUNT),
    **dict.fromkeys(("latency_buckets", "plugin_reload_buckets", "snapshot_buckets"), _BUCKETS),
    **dict.fromkeys(("client_requests", "client_ok", "client_4xx", "client_5xx",
                     "client_transport_errors", "dropped"), _COUNT),
    **dict.fromkeys(("client_p50_ms", "client_p90_ms", "client_p95_ms", "client_p99_ms"), _MS),
    **dict.fromkeys(("client_success_rate", "client_error_rate", "client_error_rate_4xx",
                     "client_error_rate_5xx"), _RATIO),
    "achieved_rate": _RATE,
    "window_start": ColumnRange("an instant in UTC epoch seconds", 0.0, LAST_EPOCH_S),
    "window_end": ColumnRange("an instant in UTC epoch seconds", 0.0, LAST_EPOCH_S),
    "window_s": ColumnRange("a window length in seconds", 0.0, 366 * DAY_S),
    "server_window_start": ColumnRange("an instant in UTC epoch seconds", 0.0, LAST_EPOCH_S),
    "server_window_end": ColumnRange("an instant in UTC epoch seconds", 0.0, LAST_EPOCH_S),
    "server_window_s": ColumnRange("a window length in seconds", 0.0, 366 * DAY_S),
    # The generator's own lag is a difference of two clocks' readings: no lower bound.
    "generator_lag_p99_ms": ColumnRange("a send lag in milliseconds", None, DAY_S * 1000.0),
    "generator_lag_max_ms": ColumnRange("a send lag in milliseconds", None, DAY_S * 1000.0),
    "generator_cpu_ratio": ColumnRange("CPU of the load workers in cores", 0.0, "cpu_ratio"),
    "loop_lag_max_ms": _MS,
}

# Measured inputs that are not columns themselves, checked before the columns computed from
# them (cpu_percent, rss_mb), so the reason quotes what the service reported.
INPUT_RANGES: dict[str, ColumnRange] = {
    "cpu_seconds": ColumnRange("a CPU-time increase over the window", 0.0, COUNT_MAX),
    "rss_bytes": ColumnRange("resident memory in bytes", 0.0, "memory_bytes"),
}

# Parts that cannot exceed their whole in one sample: part columns -> whole column. The
# outcomes partition the requests (2xx/3xx, 4xx, 5xx and others for the service; ok, 4xx,
# 5xx, transport and dropped for the client), so their sum cannot exceed them either. The
# client's drops stay out: rows before issue 11 counted only the sent requests.
COUNT_PARTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("server_ok",), "server_requests"),
    (("server_4xx", "server_5xx"), "server_requests"),
    (("server_ok", "server_4xx", "server_5xx"), "server_requests"),
    (("client_ok",), "client_requests"),
    (("client_4xx", "client_5xx", "client_transport_errors"), "client_requests"),
    (("client_ok", "client_4xx", "client_5xx", "client_transport_errors"), "client_requests"),
)

# Counts that are one category's evidence together and have no stored whole to check them
# against: one of them impossible leaves the others unusable for it too (a reload count of
# -1 beside 0 failures is not "no reload happened"), so they are NA with it.
SIBLING_COUNTS: tuple[tuple[str, ...], ...] = (
    ("cache_hits_raw", "cache_misses_raw"),
    ("plugin_reload_success", "plugin_reload_failure"),
    ("snapshot_create_success", "snapshot_create_failure", "snapshot_restore_success", "snapshot_restore_failure"),
)

# The columns computed from window counts (CSV_V3.md formulas): column -> the counts (or
# bucket increases) it is made of. A sample whose count is impossible (negative, a part above
# its whole) cannot vouch for a ratio made of it either, even one that lies in [0, 1]: the
# ratio is NA with it, naming the count, so the evaluator can read neither (issue: an
# impossible 4xx count beside a valid-looking error_rate passed).
DERIVED_FROM: dict[str, tuple[str, ...]] = {
    "http_success_rate": ("server_ok", "server_requests"),
    "error_rate": ("server_4xx", "server_5xx", "server_requests"),
    "error_rate_4xx": ("server_4xx", "server_requests"),
    "error_rate_5xx": ("server_5xx", "server_requests"),
    "request_rate": ("server_requests",),  # the evaluator rebuilds counts from it
    "raw_fallback_ratio": ("raw_fallback_total", "server_requests"),
    "effective_fallback_ratio": ("effective_fallback_total", "server_requests"),
    "fb_http_ratio": ("fallback_http", "http_adapter_ops"),
    "fb_message_ratio": ("fallback_message", "message_bus_rpc_attempts"),
    "fb_cache_ratio": ("fallback_cache", "cache_get_attempts"),
    "cache_hit_rate": ("cache_hits_raw", "cache_misses_raw"),
    "plugin_reload_success_rate": ("plugin_reload_success", "plugin_reload_failure"),
    "snapshot_success_rate": ("snapshot_create_success", "snapshot_create_failure",
                              "snapshot_restore_success", "snapshot_restore_failure"),
    **dict.fromkeys(("p50_latency", "p90_latency", "p95_latency", "p99_latency"), ("latency_buckets",)),
    **dict.fromkeys(("plugin_reload_p95", "plugin_reload_p99"), ("plugin_reload_buckets",)),
    **dict.fromkeys(("snapshot_operation_p95", "snapshot_operation_p99"), ("snapshot_buckets",)),
    # client_requests counts the dropped requests (issue 11): an impossible drop count leaves
    # every client denominator unknown
    "client_success_rate": ("client_ok", "client_requests", "dropped"),
    "client_error_rate": ("client_4xx", "client_5xx", "client_transport_errors", "dropped", "client_requests"),
    "client_error_rate_4xx": ("client_4xx", "client_requests", "dropped"),
    "client_error_rate_5xx": ("client_5xx", "client_requests", "dropped"),
}


def _high(bound: float | str | None, limits: SampleLimits) -> tuple[float | None, str]:
    if bound == "cpu_percent":
        high = limits.cpu_cores * 100.0 * CPU_TIMING_SLACK
        return high, f" ({limits.cpu_cores:g} cores x 100 % x {CPU_TIMING_SLACK:g} for scrape timing)"
    if bound == "cpu_ratio":
        return limits.cpu_cores * CPU_TIMING_SLACK, f" ({limits.cpu_cores:g} cores x {CPU_TIMING_SLACK:g})"
    if bound == "memory_mib":
        return limits.memory_bytes / 2**20, " (the machine's memory)"
    if bound == "memory_bytes":
        return limits.memory_bytes, " (the machine's memory)"
    return (None if bound is None else float(bound)), ""  # type: ignore[arg-type]


def _number_problem(value: object, spec: ColumnRange, limits: SampleLimits) -> str | None:
    """Why ``value`` cannot be a value of a column with range ``spec`` (None: it can)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"raw value {value!r:.60} is not a number"
    number = float(value) if abs(value) < 1e308 or isinstance(value, float) else math.inf
    if not math.isfinite(number):
        return f"raw value {value!r} is not a finite number"
    if spec.low is not None and number < spec.low:
        return f"raw value {value!r} is below {spec.low:g}: {spec.what} cannot be"
    high, detail = _high(spec.high, limits)
    if high is not None and number > high:
        return f"raw value {value!r} is above {high:g}{detail}: {spec.what} cannot be"
    return None


def _bucket_problem(value: object, spec: ColumnRange, limits: SampleLimits) -> str | None:
    pairs = value
    if isinstance(value, str):
        try:
            pairs = json.loads(value)
        except ValueError:
            return f"raw value {value!r:.60} is not a JSON bucket list"
    if not isinstance(pairs, (list, tuple)):
        return f"raw value {value!r:.60} is not a bucket list"
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            return f"bucket {pair!r:.60} is not an (upper bound, count) pair"
        bound, count = pair
        if bound not in ("+Inf", math.inf) and (isinstance(bound, bool) or not isinstance(bound, (int, float))
                                                or math.isnan(bound)):
            return f"bucket bound {bound!r:.60} is not a number"
        problem = _number_problem(count, spec, limits)
        if problem is not None:
            return f"bucket le={bound!r}: {problem}"
    return None


def gate_value(column: str, value: object, limits: SampleLimits = SampleLimits()) -> str | None:
    """Why ``value`` cannot be stored or judged as ``column`` (None: it is a valid value).

    >>> gate_value("error_rate", 2.0)
    'raw value 2.0 is above 1: a ratio of a part to its whole cannot be'
    >>> gate_value("server_5xx", -5.0)
    'raw value -5.0 is below 0: a counter increase over the window cannot be'
    >>> gate_value("p95_latency", float("inf"))
    'raw value inf is not a finite number'
    >>> gate_value("cpu_percent", 250.0, SampleLimits(cpu_cores=2)) is None
    True
    >>> gate_value("error_rate", None) is None   # NA is a valid value
    True
    """
    spec = COLUMN_RANGES.get(column) or INPUT_RANGES.get(column)
    if spec is None or value is None:
        return None
    if spec.kind == "buckets":
        return _bucket_problem(value, spec, limits)
    return _number_problem(value, spec, limits)


def gate_row(row: Mapping[str, Any], reasons: Mapping[str, Any] | None = None,
             limits: SampleLimits = SampleLimits()) -> tuple[dict[str, Any], dict[str, str]]:
    """(values, na_reasons) of one sample with every impossible value NA, its reason added.

    Also a part larger than its whole (``server_ok`` above ``server_requests``, or ok + 4xx +
    5xx above it) makes the parts NA: one of the two is wrong and the ratio cannot be known.
    A column made of a refused count (``DERIVED_FROM``: its ratio, its rate) is NA with it,
    even when its own value looks valid, with a reason naming the count.

    >>> values, why = gate_row({"server_requests": 100.0, "server_5xx": -5.0, "error_rate": -0.05})
    >>> values["server_5xx"], values["error_rate"], values["server_requests"]
    (None, None, 100.0)
    >>> why["server_5xx"]
    'raw value -5.0 is below 0: a counter increase over the window cannot be'
    >>> values, why = gate_row({"server_requests": 100, "server_ok": 90, "server_4xx": 20, "server_5xx": 0,
    ...                         "http_success_rate": 0.9})
    >>> values["http_success_rate"], why["http_success_rate"]  # doctest: +NORMALIZE_WHITESPACE
    (None, 'made of server_ok, which is impossible in this sample (raw server_ok + server_4xx +
    server_5xx = 110 exceeds server_requests = 100: a part cannot be larger than its whole)')
    """
    values = dict(row)
    na_reasons = {str(k): str(v) for k, v in reasons.items()} if isinstance(reasons, Mapping) else {}
    refused: dict[str, str] = {}
    for column, value in row.items():
        problem = gate_value(column, value, limits)
        if problem is not None:
            values[column] = None
            refused[column] = problem
    in_range = dict(values)  # every relation is checked on these: refusing one must not hide another
    for parts, whole in COUNT_PARTS:
        numbers = [in_range.get(part) for part in parts]
        total = in_range.get(whole)
        if total is None or any(number is None for number in numbers):
            continue
        if sum(numbers) > total * (1 + 1e-9) + 1e-9:  # type: ignore[arg-type]
            for part in parts:
                values[part] = None
                refused.setdefault(part, f"raw {' + '.join(parts)} = {sum(numbers)!r} exceeds {whole} = "  # type: ignore[arg-type]
                                   f"{total!r}: a part cannot be larger than its whole")
    na_reasons.update(refused)
    for column, problem in _spread_refusals(values, refused).items():
        values[column] = None
        na_reasons[column] = problem
    return values, na_reasons


def _spread_refusals(values: Mapping[str, Any], refused: Mapping[str, str]) -> dict[str, str]:
    """column -> reason, for every stored value made unusable by a count the gate refused:
    its siblings (``SIBLING_COUNTS``), then every column made of either (``DERIVED_FROM``).
    Each reason names the impossible count and quotes why it is impossible."""
    origin = {column: column for column in refused}  # unusable column -> the impossible count
    found: dict[str, str] = {}
    for group in SIBLING_COUNTS:
        bad = next((name for name in group if name in refused), None)
        for name in group if bad is not None else ():
            if name not in refused and values.get(name) is not None:
                origin[name] = bad  # type: ignore[assignment]
                found[name] = f"read with {bad}, which is impossible in this sample ({refused[bad]})"
    for column, inputs in DERIVED_FROM.items():
        if column in origin or values.get(column) is None:
            continue
        bad = next((origin[name] for name in inputs if name in origin), None)
        if bad is not None:
            found[column] = f"made of {bad}, which is impossible in this sample ({refused[bad]})"
    return found


def gate_sample(row: Mapping[str, Any], limits: SampleLimits = SampleLimits()) -> dict[str, Any]:
    """A whole sample row through ``gate_row``, its reasons merged into ``na_reasons`` (a
    dict; whatever else was stored there is replaced, since it cannot explain anything).
    ``na_reasons`` stays absent when the row had none and nothing was refused.

    >>> gate_sample({"rss_mb": -1.0, "na_reasons": {"p95_latency": "absent"}})["na_reasons"]
    {'p95_latency': 'absent', 'rss_mb': 'raw value -1.0 is below 0: resident memory in MiB cannot be'}
    """
    values, reasons = gate_row(row, row.get("na_reasons"), limits)
    if reasons or row.get("na_reasons") is not None:
        values["na_reasons"] = reasons
    return values
