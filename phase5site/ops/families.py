"""Which metric families a profile reads, and which CSV v3 columns need each.

The names are series names as Prometheus stores them (a histogram is seen through its
``_bucket`` series). Source: DESIGN.md "MetaSheet profile" and CSV_V3.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from phase5site.metrics.exposition import parse_exposition
from phase5site.metrics.profile import not_exported_families, required_families

# series name -> CSV v3 columns computed from it
METASHEET_FAMILIES: dict[str, tuple[str, ...]] = {
    "http_requests_total": (
        "http_success_rate", "error_rate", "error_rate_4xx", "error_rate_5xx", "request_rate",
        "raw_fallback_ratio", "effective_fallback_ratio",
    ),
    "http_server_requests_seconds_bucket": ("p50_latency", "p90_latency", "p95_latency", "p99_latency"),
    "process_resident_memory_bytes": ("rss_mb",),
    "process_cpu_seconds_total": ("cpu_percent",),
    "metasheet_fallback_total": (
        "raw_fallback_total", "fallback_http", "fallback_message", "fallback_cache", "raw_fallback_ratio",
    ),
    "metasheet_fallback_effective_total": ("effective_fallback_total", "effective_fallback_ratio"),
    "metasheet_http_adapter_ops_total": ("http_adapter_ops", "fb_http_ratio"),
    "metasheet_message_bus_rpc_attempts_total": ("message_bus_rpc_attempts", "fb_message_ratio"),
    "metasheet_cache_get_attempts_total": ("cache_get_attempts", "fb_cache_ratio"),
    "cache_hits_total": ("cache_hit_rate", "cache_hits_raw"),
    "cache_miss_total": ("cache_hit_rate", "cache_misses_raw"),
    "metasheet_plugin_reload_total": (
        "plugin_reload_success", "plugin_reload_failure", "plugin_reload_success_rate",
    ),
    "metasheet_plugin_reload_duration_seconds_bucket": ("plugin_reload_p95", "plugin_reload_p99"),
    "metasheet_snapshot_create_total": (
        "snapshot_create_success", "snapshot_create_failure", "snapshot_success_rate",
    ),
    "metasheet_snapshot_restore_total": (
        "snapshot_restore_success", "snapshot_restore_failure", "snapshot_success_rate",
    ),
    "metasheet_snapshot_operation_duration_seconds_bucket": ("snapshot_operation_p95", "snapshot_operation_p99"),
}


def required_series(profile: str, overrides: Iterable[str] = ()) -> dict[str, tuple[str, ...]]:
    """Series the profile needs (``phase5site.metrics.required_families``), each with the
    columns it feeds, minus columns the spec overrides with its own query.

    >>> sorted(required_series("metasheet", overrides=["rss_mb"]))[:2]
    ['cache_hits_total', 'cache_miss_total']
    >>> "process_resident_memory_bytes" in required_series("metasheet", overrides=["rss_mb"])
    False
    """
    overridden = set(overrides)
    needed = {}
    for series in required_families(profile):
        columns = METASHEET_FAMILIES.get(series, ())
        kept = tuple(column for column in columns if column not in overridden)
        if kept or not columns:
            needed[series] = kept
    return needed


def not_exported_series(profile: str) -> dict[str, tuple[str, ...]]:
    """Series the profile reads but the service does not export at all, with the columns
    that are NA "not exported by this service" because of them (never a missing family).

    >>> sorted(not_exported_series("metasheet"))[0]
    'metasheet_cache_get_attempts_total'
    >>> not_exported_series("metasheet-2025")
    {}
    """
    return {series: METASHEET_FAMILIES.get(series, ()) for series in not_exported_families(profile)}


def missing_series(
    needed: Mapping[str, tuple[str, ...]], present: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """The entries of ``needed`` whose series is not in ``present``."""
    seen = set(present)
    return {series: columns for series, columns in needed.items() if series not in seen}


def exposition_names(text: str) -> tuple[set[str], set[str]]:
    """Series names with at least one sample, and family names declared by ``# TYPE`` lines.

    >>> sampled, declared = exposition_names('# TYPE a_total counter\\n# TYPE b gauge\\na_total{x="1"} 3\\n')
    >>> sorted(sampled), sorted(declared)
    (['a_total'], ['a_total', 'b'])
    """
    sampled: set[str] = set()
    declared: set[str] = set()
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# TYPE "):
            fields = stripped.split()
            if len(fields) >= 3:
                declared.add(fields[2])
        elif stripped and not stripped.startswith("#"):
            name = stripped.split("{", 1)[0].split(None, 1)[0]
            sampled.add(name)
    return sampled, declared


def declared_family(series: str, declared: set[str]) -> bool:
    """Whether ``series`` belongs to a family declared (maybe without samples yet)."""
    if series in declared:
        return True
    for suffix in ("_bucket", "_total"):
        if series.endswith(suffix) and series[: -len(suffix)] in declared:
            return True
    return False


def exposition_problem(text: str) -> str | None:
    """Why ``text`` is not a Prometheus text exposition page, or None when it is.

    Prometheus rejects a whole scrape for one line it cannot parse, so one such line is
    enough: an HTML login page (a proxy, an expired session) served at the metrics URL is
    not a page whose families happen to be missing.

    >>> exposition_problem('# TYPE a_total counter\\na_total 3\\n') is None
    True
    >>> exposition_problem('<!DOCTYPE html>\\n<title>Sign in</title>\\n')
    "line 1 is not exposition text: '<!DOCTYPE html>' (2 of 2 lines are not)"
    """
    scrape = parse_exposition(text)
    if scrape.skipped_lines:
        number, line = scrape.skipped_lines[0]
        lines = sum(1 for line in text.splitlines() if line.strip())
        shown = line if len(line) <= 60 else line[:57] + "..."
        return (f"line {number} is not exposition text: {shown!r} "
                f"({len(scrape.skipped_lines)} of {lines} lines are not)")
    if not scrape.samples and not scrape.declared:
        return "the page holds no metric at all"
    return None
