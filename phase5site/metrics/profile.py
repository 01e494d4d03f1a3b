"""Metric profiles: which server metric feeds which CSV v3 column (CSV_V3.md is the contract).

A profile is a set of *quantities* — a counter increase, a gauge at the window end or the
per-``le`` bucket increases of a histogram — each named by the column it feeds. Both
sources measure the same quantities (scrape: two scrapes diffed; prometheus: PromQL at the
window end) and ``phase5site.metrics.columns_from`` turns them into the 41 columns, so the
formulas live in one place. Metric names are the MetaSheet service's (DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from phase5site.errors import MetricsError
from phase5site.metrics.selectors import LabelMatcher, parse_selector, promql_selector

QuantityKind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class Quantity:
    """One measured input. ``metric`` is the sample name; for a histogram the base name."""

    name: str
    kind: QuantityKind
    metric: str
    matchers: tuple[LabelMatcher, ...] = ()

    @property
    def sample_name(self) -> str:
        """The series name that must exist: ``<base>_bucket`` for a histogram."""
        return f"{self.metric}_bucket" if self.kind == "histogram" else self.metric


def _q(name: str, kind: QuantityKind, metric: str, selector: str = "") -> Quantity:
    return Quantity(name, kind, metric, parse_selector(selector))


FALLBACK = "metasheet_fallback_total"
METASHEET_QUANTITIES: tuple[Quantity, ...] = (
    _q("server_requests", "counter", "http_requests_total"),
    _q("server_ok", "counter", "http_requests_total", '{status=~"2..|3.."}'),
    _q("server_4xx", "counter", "http_requests_total", '{status=~"4.."}'),
    _q("server_5xx", "counter", "http_requests_total", '{status=~"5.."}'),
    _q("latency", "histogram", "http_server_requests_seconds"),
    _q("cpu_seconds", "counter", "process_cpu_seconds_total"),
    _q("rss_bytes", "gauge", "process_resident_memory_bytes"),
    _q("raw_fallback_total", "counter", FALLBACK),
    _q("effective_fallback_reported", "counter", "metasheet_fallback_effective_total"),
    _q("fallback_http", "counter", FALLBACK, '{reason=~"http_error|http_timeout"}'),
    _q("fallback_message", "counter", FALLBACK, '{reason=~"message_error|message_timeout"}'),
    _q("fallback_cache", "counter", FALLBACK, '{reason="cache_miss"}'),
    _q("http_adapter_ops", "counter", "metasheet_http_adapter_ops_total"),
    _q("message_bus_rpc_attempts", "counter", "metasheet_message_bus_rpc_attempts_total"),
    _q("cache_get_attempts", "counter", "metasheet_cache_get_attempts_total"),
    _q("plugin_reload_success", "counter", "metasheet_plugin_reload_total", '{result="success"}'),
    _q("plugin_reload_failure", "counter", "metasheet_plugin_reload_total", '{result="failure"}'),
    _q("snapshot_create_success", "counter", "metasheet_snapshot_create_total", '{result="success"}'),
    _q("snapshot_create_failure", "counter", "metasheet_snapshot_create_total", '{result="failure"}'),
    _q("snapshot_restore_success", "counter", "metasheet_snapshot_restore_total", '{result="success"}'),
    _q("snapshot_restore_failure", "counter", "metasheet_snapshot_restore_total", '{result="failure"}'),
    _q("cache_hits_raw", "counter", "cache_hits_total"),
    _q("cache_misses_raw", "counter", "cache_miss_total"),
    _q("plugin_reload", "histogram", "metasheet_plugin_reload_duration_seconds"),
    _q("snapshot", "histogram", "metasheet_snapshot_operation_duration_seconds"),
)

# Quantile columns: column -> (histogram quantity, q).
QUANTILE_COLUMNS: dict[str, tuple[str, float]] = {
    "p50_latency": ("latency", 0.50),
    "p90_latency": ("latency", 0.90),
    "p95_latency": ("latency", 0.95),
    "p99_latency": ("latency", 0.99),
    "plugin_reload_p95": ("plugin_reload", 0.95),
    "plugin_reload_p99": ("plugin_reload", 0.99),
    "snapshot_operation_p95": ("snapshot", 0.95),
    "snapshot_operation_p99": ("snapshot", 0.99),
}
# Columns computed from exactly one quantity, whose metric an override may replace.
SINGLE_QUANTITY_COLUMNS: dict[str, str] = {"rss_mb": "rss_bytes", "cpu_percent": "cpu_seconds"}


@dataclass(frozen=True)
class Profile:
    name: str
    quantities: tuple[Quantity, ...]

    def quantity(self, name: str) -> Quantity:
        for quantity in self.quantities:
            if quantity.name == name:
                return quantity
        raise KeyError(name)

    def with_metric(
        self, name: str, metric: str, extra: tuple[LabelMatcher, ...] = ()
    ) -> Profile:
        """The profile with quantity ``name`` reading ``metric`` (scrape-mode override),
        keeping its label matchers and adding ``extra``."""
        changed = tuple(
            replace(q, metric=metric, matchers=q.matchers + extra) if q.name == name else q
            for q in self.quantities
        )
        return Profile(self.name, changed)

    # --- what moves a family, which paths are timed (issue 12) --------------------------
    # Minimal versions for the report's "not exercised" hints and the client/server
    # reconciliation; the texts come from the fixture README of the live MetaSheet backend.

    def moved_by(self, quantity_or_column: str) -> str | None:
        """What a load must send to move the family behind a quantity or CSV v3 column
        (None: not known, or nothing the load does matters, e.g. memory).

        >>> PROFILES["metasheet"].moved_by("cache_hit_rate")[:22]
        'POST /api/cache-test/w'
        """
        return MOVED_BY.get(self.name, {}).get(quantity_or_column)

    def timed_path(self, path: str) -> bool:
        """Whether the service's HTTP metrics (request counter, latency histogram) count a
        request to ``path`` that reaches its handler (the query is ignored).

        >>> profile = PROFILES["metasheet"]
        >>> profile.timed_path("/api/plugins?x=1"), profile.timed_path("/api/multitable/sheets")
        (True, False)
        >>> profile.timed_path("/api/attendance/records")
        True
        """
        bare = path.split("?", 1)[0].split("#", 1)[0]
        rule = TIMED_PATHS.get(self.name)
        if rule is None:
            return True
        exact, prefixes = rule
        return bare in exact or any(bare.startswith(prefix) for prefix in prefixes)


# What moves each family of the metasheet profile (fixture README "The profile's families").
_CACHE = ("POST /api/cache-test/warm?count=N (hits) or POST /api/cache-test/simulate (hits and misses), "
          "development routes that exist only with NODE_ENV other than production and "
          "FEATURE_CACHE=true; no production request path touches the cache")
_FALLBACK = ("POST /internal/test/fallback with a JSON body {\"mode\": \"<reason>\"}, a test route "
             "mounted only outside production or with ENABLE_FALLBACK_TEST=true; no production code "
             "path records a fallback")
_RELOAD = ("nothing: the plugin reload routes record only in an in-process collector that is not "
           "exported, so metasheet_plugin_reload_* never moves")
_SNAPSHOT = ("POST /api/snapshots {\"view_id\": \"<uuid>\"} (create) and the restore flow "
             "(restore -> 403 with a token -> POST /api/admin/safety/confirm -> restore with "
             "X-Safety-Token), with a JWT of a user that has an admin row in user_roles")
_HTTP = ("a timed route: /health, /api/plugins, /api/v2/hello, /api/v2/rpc-test, /internal/metrics "
         "or any plugin route (e.g. /api/attendance/*) with a valid JWT")
MOVED_BY: dict[str, dict[str, str]] = {
    "metasheet": {
        **dict.fromkeys(("cache_hits_raw", "cache_misses_raw", "cache_hit_rate", "cache_get_attempts"), _CACHE),
        **dict.fromkeys(("raw_fallback_total", "effective_fallback_total", "effective_fallback_ratio",
                         "effective_fallback_reported", "fallback_http", "fallback_message", "fallback_cache",
                         "http_adapter_ops", "message_bus_rpc_attempts"), _FALLBACK),
        **dict.fromkeys(("plugin_reload_success", "plugin_reload_failure", "plugin_reload_success_rate",
                         "plugin_reload"), _RELOAD),
        **dict.fromkeys(("snapshot_create_success", "snapshot_create_failure", "snapshot_restore_success",
                         "snapshot_restore_failure", "snapshot_success_rate", "snapshot"), _SNAPSHOT),
        **dict.fromkeys(("server_requests", "server_ok", "server_4xx", "server_5xx", "latency",
                         "http_success_rate", "error_rate", "p95_latency", "p99_latency"), _HTTP),
    },
}
# Paths whose handler ends the HTTP timer (fixture README "What the HTTP timer covers"):
# exact paths, and path prefixes of the plugin routes of the bundled plugins.
TIMED_PATHS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "metasheet": (
        frozenset({"/health", "/api/health", "/api/v2/hello", "/api/v2/rpc-test", "/api/plugins",
                   "/internal/metrics", "/api/sim-error"}),
        ("/api/attendance/", "/api/integration/", "/api/after-sales/"),
    ),
}


PROFILES: dict[str, Profile] = {"metasheet": Profile("metasheet", METASHEET_QUANTITIES)}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise MetricsError(
            f"unknown metrics profile {name!r}", hint=f"known profiles: {', '.join(PROFILES)}"
        ) from None


def required_families(profile: Profile | str, flags: object | None = None) -> list[str]:
    """Sample names the service must export for every column to be measurable.

    ``metasheet_fallback_effective_total`` is optional: without it the effective count is
    derived from the raw one (CSV_V3.md), so it is not required. ``flags`` is accepted for
    profiles whose needs depend on them.
    """
    chosen = get_profile(profile) if isinstance(profile, str) else profile
    names = {q.sample_name for q in chosen.quantities if q.name != "effective_fallback_reported"}
    return sorted(names)


# --- PromQL ------------------------------------------------------------------------------


def duration_ms(window_s: float) -> str:
    """A PromQL duration in whole milliseconds (Prometheus durations take integers).

    >>> duration_ms(600.0)
    '600000ms'
    """
    return f"{round(window_s * 1000)}ms"


def window_delta_expr(series: str, window_s: float) -> str:
    """Per-series increase over the window ending at evaluation time (CSV_V3.md):

    * ``D = x - x offset T``, the boundary difference, for series with ``D >= 0`` and no
      reset inside the window;
    * ``x`` itself where ``D < 0``: the counter restarted, everything since counts
      (Prometheus' reset rule, exactly as scrape mode does);
    * ``increase(x[T])`` where ``D >= 0`` but ``resets(x[T]) > 0``: it restarted and
      grew past its old value, which the boundaries alone cannot see.

    ``resets(x[T])`` only sees samples strictly inside the window, while ``offset T``
    reads the last sample at or before its start, hence the explicit ``D < 0`` branch. A
    restart between that sample and the first one inside the window that regrows past the
    old value before the window ends is invisible to both sources.
    * ``x`` itself for a series absent at the window start (``x unless x offset T``): a
      labelled series is created on its first increment, so it counts from 0, as in scrape
      mode.
    """
    window = duration_ms(window_s)
    delta = f"({series} - {series} offset {window})"
    reset = f"(resets({series}[{window}]) > 0)"
    return (
        f"(({delta} >= 0) unless {reset})"
        f" or ((increase({series}[{window}]) and {reset}) and ({delta} >= 0))"
        f" or ({series} and ({delta} < 0))"
        f" or ({series} unless {series} offset {window})"
    )


def quantity_promql(quantity: Quantity, selector: tuple[LabelMatcher, ...], window_s: float) -> str:
    """The PromQL that measures ``quantity`` when evaluated at the window end.

    >>> q = Quantity("server_5xx", "counter", "http_requests_total", parse_selector('{status=~"5.."}'))
    >>> print(quantity_promql(q, (), 60).replace('{status=~"5.."}', ""))  # doctest: +NORMALIZE_WHITESPACE
    sum((((http_requests_total - http_requests_total offset 60000ms) >= 0)
    unless (resets(http_requests_total[60000ms]) > 0))
    or ((increase(http_requests_total[60000ms]) and (resets(http_requests_total[60000ms]) > 0))
    and ((http_requests_total - http_requests_total offset 60000ms) >= 0))
    or (http_requests_total and ((http_requests_total - http_requests_total offset 60000ms) < 0))
    or (http_requests_total unless http_requests_total offset 60000ms))
    """
    series = promql_selector(quantity.sample_name, quantity.matchers + selector)
    if quantity.kind == "gauge":
        return f"sum({series})"
    if quantity.kind == "histogram":
        return f"sum by (le) ({window_delta_expr(series, window_s)})"
    return f"sum({window_delta_expr(series, window_s)})"


def quantile_promql(
    quantity: Quantity, q: float, selector: tuple[LabelMatcher, ...], window_s: float
) -> str:
    """``histogram_quantile(q, sum by (le) (Δ bucket))`` for a histogram quantity."""
    return f"histogram_quantile({q:g}, {quantity_promql(quantity, selector, window_s)})"


