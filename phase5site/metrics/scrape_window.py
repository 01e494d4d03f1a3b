"""Scrape mode: the columns of one window from the scrapes at its two ends. Pure.

Overrides (``MetricsSpec.overrides``, column → metric name) in scrape mode:
An override is a metric name with an optional selector, ``name{label="v"}``; its matchers
are added to the profile's and the spec's.
* a count column (``fallback_http``, ``server_requests``…) reads Δ of the named counter,
  keeping the profile's label matchers (e.g. ``reason=~"http_error|http_timeout"``);
* ``rss_mb`` / ``cpu_percent`` read the named gauge / counter;
* a quantile column reads the named histogram (its base name, without ``_bucket``) when
  the page has ``<name>_bucket``; otherwise the named series' value at the window end —
  for a summary-only service, e.g. ``rpc_seconds{quantile="0.95"}``;
* a bucket column (``latency_buckets``…) replaces the histogram of the whole group;
* any other column (a ratio) is the named gauge's value at the window end.
"""

from __future__ import annotations

from collections.abc import Mapping

from phase5site.columns import SampleLimits
from phase5site.errors import MetricsError
from phase5site.metrics.columns import (
    BUCKET_COLUMNS,
    COUNT_COLUMNS,
    SOURCE_COLUMNS,
    gated,
    measured_columns,
    quantile_of,
)
from phase5site.metrics.counters import Measured, gauge_at, window_bucket_deltas, window_increase
from phase5site.metrics.exposition import Scrape
from phase5site.metrics.profile import (
    QUANTILE_COLUMNS,
    SINGLE_QUANTITY_COLUMNS,
    Profile,
    Quantity,
)
from phase5site.metrics.selectors import LabelMatcher, parse_series_ref


def check_overrides(overrides: Mapping[str, str]) -> None:
    """Every override must name a column a source fills."""
    unknown = sorted(set(overrides) - set(SOURCE_COLUMNS))
    if unknown:
        raise MetricsError(
            f"metrics.overrides names unknown column(s): {', '.join(unknown)}",
            hint="use CSV v3 column names such as p95_latency or fallback_http "
            "(timestamp and sample_num cannot be overridden)",
        )


def measure_quantity(
    quantity: Quantity, previous: Scrape, current: Scrape, selector: tuple[LabelMatcher, ...]
) -> Measured:
    matchers = quantity.matchers + selector
    if quantity.kind == "gauge":
        return gauge_at(current, quantity.metric, matchers)
    if quantity.kind == "histogram":
        return window_bucket_deltas(previous, current, quantity.metric, matchers)
    return window_increase(previous, current, quantity.metric, matchers)


def _profile_with_overrides(profile: Profile, overrides: Mapping[str, str]) -> Profile:
    for column, ref in overrides.items():
        metric, matchers = parse_series_ref(ref)
        name = column if column in COUNT_COLUMNS else (
            SINGLE_QUANTITY_COLUMNS.get(column) or BUCKET_COLUMNS.get(column))
        if name is not None:
            profile = profile.with_metric(name, metric, matchers)
    return profile


def _override_column(
    column: str, ref: str, previous: Scrape, current: Scrape, selector: tuple[LabelMatcher, ...]
) -> Measured:
    metric, matchers = parse_series_ref(ref)
    is_histogram = current.declared.get(metric) == "histogram" or (
        f"{metric}_bucket" in current.sample_names())
    if column in QUANTILE_COLUMNS and is_histogram:
        histogram = Quantity(f"override:{column}", "histogram", metric, matchers)
        buckets = measure_quantity(histogram, previous, current, selector)
        return quantile_of(buckets, QUANTILE_COLUMNS[column][1])
    return gauge_at(current, metric, matchers + selector)


def scrape_window_columns(
    profile: Profile,
    previous: Scrape,
    current: Scrape,
    *,
    window_s: float,
    selector: tuple[LabelMatcher, ...] = (),
    overrides: Mapping[str, str] | None = None,
    count_cache_miss: bool = False,
    limits: SampleLimits = SampleLimits(),
) -> dict[str, Measured]:
    """Every SOURCE_COLUMNS value for the window between ``previous`` and ``current``,
    each through the gate (``columns.gate_value``).

    Example: ``http_requests_total{status="200"}`` 100 → 160 and ``{status="500"}`` 0 → 3
    over 60 s give server_requests 63, error_rate_5xx 3/63 ≈ 0.048, request_rate 1.05.
    """
    overrides = dict(overrides or {})
    check_overrides(overrides)
    effective = _profile_with_overrides(profile, overrides)
    quantities = {
        q.name: measure_quantity(q, previous, current, selector) for q in effective.quantities
    }
    quantities.update(effective.not_exported())  # NA by design, never looked for on the page
    out = measured_columns(quantities, window_s, count_cache_miss=count_cache_miss, limits=limits)
    for column, ref in overrides.items():
        if column not in (*COUNT_COLUMNS, *SINGLE_QUANTITY_COLUMNS, *BUCKET_COLUMNS):
            out[column] = _override_column(column, ref, previous, current, selector)
    return gated(out, limits)
