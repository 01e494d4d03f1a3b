"""Server-side metrics: exposition parsing, window arithmetic, profiles, sources.

Pure parts (no IO): ``parse_exposition``, ``counter_increase``, ``histogram_quantile``,
``parse_selector``, ``scrape_window_columns``, ``required_families``. Sources (IO):
``make_sources`` → ``ScrapeSource`` / ``PrometheusSource`` (``phase5site.metrics.sources``).
"""

from __future__ import annotations

from phase5site.metrics.counters import Measured, counter_increase, window_bucket_deltas, window_increase
from phase5site.metrics.exposition import Scrape, parse_exposition
from phase5site.metrics.profile import get_profile, required_families
from phase5site.quantiles import histogram_quantile
from phase5site.metrics.scrape_window import scrape_window_columns
from phase5site.metrics.selectors import LabelMatcher, matches_all, parse_selector
from phase5site.metrics.sources import (
    MetricsSource,
    PrometheusSource,
    SampleResult,
    ServerWindow,
    ScrapeSource,
    check_families,
    check_prometheus_families,
    machine_limits,
    make_sources,
)

__all__ = [
    "LabelMatcher",
    "Measured",
    "MetricsSource",
    "PrometheusSource",
    "SampleResult",
    "ServerWindow",
    "ScrapeSource",
    "check_families",
    "check_prometheus_families",
    "machine_limits",
    "make_sources",
    "Scrape",
    "counter_increase",
    "get_profile",
    "histogram_quantile",
    "matches_all",
    "parse_exposition",
    "parse_selector",
    "required_families",
    "scrape_window_columns",
    "window_bucket_deltas",
    "window_increase",
]
