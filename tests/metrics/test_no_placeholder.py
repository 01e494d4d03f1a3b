"""No placeholder, ever: with one metric family missing from the embedded target's page,
the columns that depend on it are NA with a reason — never 0 or a default — and the other
columns are still measured. The dependency table is written out by hand from CSV_V3.md.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from phase5site.metrics.sources import SampleResult, make_sources
from phase5site.runspec.models import EmbeddedSpec, FlagsSpec, MetricsSpec
from phase5site.simulator import start_target

RATIOS_OVER_REQUESTS = ("http_success_rate", "error_rate", "error_rate_4xx", "error_rate_5xx",
                        "raw_fallback_ratio", "effective_fallback_ratio")
DEPENDENT_COLUMNS: dict[str, set[str]] = {
    "http_requests_total": {"server_requests", "server_ok", "server_4xx", "server_5xx", "request_rate",
                            *RATIOS_OVER_REQUESTS},
    "http_server_requests_seconds": {"p50_latency", "p90_latency", "p95_latency", "p99_latency",
                                     "latency_buckets"},
    "process_resident_memory_bytes": {"rss_mb"},
    "process_cpu_seconds_total": {"cpu_percent"},
    "metasheet_fallback_total": {"raw_fallback_total", "fallback_http", "fallback_message", "fallback_cache",
                                 "fb_http_ratio", "fb_message_ratio", "fb_cache_ratio", "raw_fallback_ratio"},
    "metasheet_fallback_effective_total": set(),  # derived from raw minus cache misses instead
    "http_server_requests_seconds_summary": set(),  # exported; no column reads it
    "cache_hits_total": {"cache_hits_raw", "cache_hit_rate"},
    "cache_miss_total": {"cache_misses_raw", "cache_hit_rate"},
    "metasheet_plugin_reload_total": {"plugin_reload_success", "plugin_reload_failure",
                                      "plugin_reload_success_rate"},
    "metasheet_plugin_reload_duration_seconds": {"plugin_reload_p95", "plugin_reload_p99",
                                                 "plugin_reload_buckets"},
    "metasheet_snapshot_create_total": {"snapshot_create_success", "snapshot_create_failure",
                                        "snapshot_success_rate"},
    "metasheet_snapshot_restore_total": {"snapshot_restore_success", "snapshot_restore_failure",
                                         "snapshot_success_rate"},
    "metasheet_snapshot_operation_duration_seconds": {"snapshot_operation_p95", "snapshot_operation_p99",
                                                      "snapshot_buckets"},
}
# Families the current service does not export: their columns are NA by design.
NOT_EXPORTED: dict[str, set[str]] = {
    "metasheet_http_adapter_ops_total": {"http_adapter_ops", "fb_http_ratio"},
    "metasheet_message_bus_rpc_attempts_total": {"message_bus_rpc_attempts", "fb_message_ratio"},
    "metasheet_cache_get_attempts_total": {"cache_get_attempts", "fb_cache_ratio"},
}
BY_DESIGN = {column for columns in NOT_EXPORTED.values() for column in columns}
PATHS = ("/health", "/api/v2/hello", "/api/plugins")


async def one_window(metrics_url: str, base_url: str) -> SampleResult:
    [source] = make_sources(MetricsSpec(source="scrape"), scrape_url=metrics_url, headers={})
    await source.open(0.0)
    async with httpx.AsyncClient(base_url=base_url, timeout=5.0) as client:
        for _ in range(4):
            for path in PATHS:
                await client.get(path)
    await asyncio.sleep(0.1)
    result = await source.sample(0.0, 1.0, FlagsSpec())
    await source.aclose()
    return result


def test_every_profile_family_is_listed() -> None:
    from phase5site.metrics.profile import get_profile
    from phase5site.simulator.metrics import PROFILE_FAMILIES

    assert set(DEPENDENT_COLUMNS) == set(PROFILE_FAMILIES)
    profile = get_profile("metasheet")
    assert {q.metric for q in profile.quantities} == set(DEPENDENT_COLUMNS) - {"http_server_requests_seconds_summary"}
    assert {q.metric for q in profile.all_quantities} - {q.metric for q in profile.quantities} == set(NOT_EXPORTED)


def test_families_the_service_does_not_export_are_na_by_design() -> None:
    target = start_target(EmbeddedSpec())
    try:
        result = asyncio.run(one_window(target.metrics_url, target.base_url))
    finally:
        target.stop()
    for family, columns in NOT_EXPORTED.items():
        for column in columns:
            assert result.values[column] is None
            assert result.na_reasons[column].startswith("not exported by this service"), column
        assert family in " ".join(result.na_reasons[c] for c in columns)
    assert result.values["server_requests"] >= len(PATHS) * 4  # type: ignore[operator]


@pytest.mark.parametrize("family", sorted(DEPENDENT_COLUMNS))
def test_missing_family_gives_na_never_a_default(family: str) -> None:
    target = start_target(EmbeddedSpec(disable_families=[family]))
    try:
        result = asyncio.run(one_window(target.metrics_url, target.base_url))
    finally:
        target.stop()
    short = family.removesuffix("_total")
    for column in DEPENDENT_COLUMNS[family]:
        assert result.values[column] is None, (column, result.values[column])
        if column in BY_DESIGN:  # e.g. fb_http_ratio: its denominator never exists here
            assert result.na_reasons[column].startswith("not exported by this service"), column
            continue
        assert "absent" in result.na_reasons[column] and short in result.na_reasons[column], column
    for column, reason in result.na_reasons.items():
        if column not in DEPENDENT_COLUMNS[family] | BY_DESIGN:
            assert short not in reason, (column, reason)
    # the window really was measured: requests were counted where the family exists
    if family != "http_requests_total":
        assert result.values["server_requests"] >= len(PATHS) * 4  # type: ignore[operator]
    if family == "metasheet_fallback_effective_total":
        raw, cache = result.values["raw_fallback_total"], result.values["fallback_cache"]
        assert result.values["effective_fallback_total"] == raw - cache  # type: ignore[operator]
