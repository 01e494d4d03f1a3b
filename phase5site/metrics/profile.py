"""Metric profiles: which server metric feeds which CSV v3 column (CSV_V3.md is the contract).

A profile is a set of *quantities* — a counter increase, a gauge at the window end or the
per-``le`` bucket increases of a histogram — each named by the column it feeds. Both
sources measure the same quantities (scrape: two scrapes diffed; prometheus: PromQL at the
window end) and ``phase5site.metrics.columns_from`` turns them into the 41 columns, so the
formulas live in one place.

A profile also describes the service's *families* (type, label names, buckets, whether the
service exports it at all, and what moves it), taken from the live captures of the real
MetaSheet backend (``shared/fixtures/metasheet2-live/README.md``). A quantity whose family
the service does not export is not queried: it reads NA "not exported by this service",
which is a fact about the service, not about the window (``absent`` is). ``metasheet``
is the current service; ``metasheet-2025`` the one the 2025 script outputs came from, which
still had ``metasheet_http_adapter_ops_total`` and two more families.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from phase5site.columns import NOT_EXPORTED
from phase5site.errors import MetricsError
from phase5site.metrics.counters import Measured
from phase5site.metrics.selectors import LabelMatcher, parse_selector, promql_selector

QuantityKind = Literal["counter", "gauge", "histogram"]
FamilyType = Literal["counter", "gauge", "histogram", "summary"]

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


@dataclass(frozen=True)
class Family:
    """One metric family of the service as its metrics page shows it (prom-client naming:
    a counter's family name ends in ``_total``; a histogram's is the base name)."""

    name: str
    type: FamilyType
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()  # histogram upper bounds without +Inf
    quantiles: tuple[float, ...] = ()  # summary quantiles
    exported: bool = True
    moved_by: str = ""  # what makes it move, from the fixture README (for "not exercised")


HTTP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
PLUGIN_RELOAD_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0)
SNAPSHOT_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
SUMMARY_QUANTILES = (0.5, 0.9, 0.99)

_HTTP_MOVED = (
    "only requests to the routes the service times: /health, /api/health, /api/v2/hello, "
    "/api/v2/rpc-test, /api/plugins, /internal/metrics and plugin routes (/api/attendance/, "
    "/api/integration/, /api/after-sales/ ...); not the JWT gate's 401s, unmatched 404s or "
    "the core routers (multitable, auth, snapshots, admin)"
)
_FALLBACK_MOVED = (
    "only POST /internal/test/fallback {\"mode\": \"<reason>\"}, mounted when NODE_ENV is not "
    "production or ENABLE_FALLBACK_TEST=true; no production code path records a fallback"
)
_CACHE_MOVED = (
    "cache lookups happen only on the dev diagnostics routes POST /api/cache-test/warm and "
    "/simulate, with FEATURE_CACHE=true (404 in production); no production request path "
    "looks the cache up"
)
_RELOAD_MOVED = (
    "no code path moves it: the reload routes (POST /api/admin/plugins/:id/reload ...) record "
    "only in an in-process collector that is not exported"
)
_SNAPSHOT_MOVED = (
    "POST /api/snapshots (create) and POST /api/snapshots/:id/restore after the SafetyGuard "
    "confirmation (403, POST /api/admin/safety/confirm, then X-Safety-Token); JWT of a user "
    "with an admin row in user_roles"
)
_GONE = "does not exist in the current service (only in the 2025 script outputs); nothing moves it"

METASHEET_FAMILIES: tuple[Family, ...] = (
    Family("http_requests_total", "counter", ("method", "status"), moved_by=_HTTP_MOVED),
    Family("http_server_requests_seconds", "histogram", ("route", "method", "status"),
           buckets=HTTP_BUCKETS, moved_by=_HTTP_MOVED),
    Family("http_server_requests_seconds_summary", "summary", ("route", "method", "status"),
           quantiles=SUMMARY_QUANTILES, moved_by=_HTTP_MOVED),
    Family("process_resident_memory_bytes", "gauge", moved_by="always present (process metrics)"),
    Family("process_cpu_seconds_total", "counter", moved_by="always present; any load raises it"),
    Family("metasheet_fallback_total", "counter", ("reason",), moved_by=_FALLBACK_MOVED),
    Family("metasheet_fallback_effective_total", "counter", ("reason",),
           moved_by=_FALLBACK_MOVED + "; cache_miss counts only with COUNT_CACHE_MISS_AS_FALLBACK=true"),
    Family("cache_hits_total", "counter", ("impl", "key_pattern"), moved_by=_CACHE_MOVED),
    Family("cache_miss_total", "counter", ("impl", "key_pattern"), moved_by=_CACHE_MOVED),
    Family("metasheet_plugin_reload_total", "counter", ("plugin_name", "result"), moved_by=_RELOAD_MOVED),
    Family("metasheet_plugin_reload_duration_seconds", "histogram", ("plugin_name",),
           buckets=PLUGIN_RELOAD_BUCKETS, moved_by=_RELOAD_MOVED),
    Family("metasheet_snapshot_create_total", "counter", ("result",), moved_by=_SNAPSHOT_MOVED),
    Family("metasheet_snapshot_restore_total", "counter", ("result",), moved_by=_SNAPSHOT_MOVED),
    Family("metasheet_snapshot_operation_duration_seconds", "histogram", ("operation",),
           buckets=SNAPSHOT_BUCKETS, moved_by=_SNAPSHOT_MOVED),
    Family("metasheet_http_adapter_ops_total", "counter", exported=False, moved_by=_GONE),
    Family("metasheet_message_bus_rpc_attempts_total", "counter", exported=False, moved_by=_GONE),
    Family("metasheet_cache_get_attempts_total", "counter", exported=False, moved_by=_GONE),
)
# The 2025 service still declared the three families (HELP/TYPE lines without samples in
# every raw-metrics.txt of shared/fixtures/metasheet2), so its outputs read them as 0.
_2025_MOVED = "declared by the 2025 service (HELP/TYPE only in its outputs); no recorded code path moved it"
METASHEET_2025_FAMILIES: tuple[Family, ...] = tuple(
    replace(f, exported=True, moved_by=_2025_MOVED) if not f.exported else f for f in METASHEET_FAMILIES
)

# "What the HTTP timer covers" (fixture README): exact paths, and plugin route prefixes.
TIMED_PATHS = frozenset({
    "/health", "/api/health", "/api/v2/hello", "/api/v2/rpc-test", "/api/plugins", "/internal/metrics",
})
TIMED_PREFIXES = (
    "/api/attendance/", "/api/integration/", "/api/after-sales/", "/api/gantt/", "/api/v2/audit/",
)

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
# Which quantities a derived column (or an SLO category of the same name) is computed from,
# for ``Profile.moved_by``. Count columns are quantities of their own name.
_HTTP = ("server_requests",)
COLUMN_INPUTS: dict[str, tuple[str, ...]] = {
    **{column: (histogram,) for column, (histogram, _) in QUANTILE_COLUMNS.items()},
    **{column: (quantity,) for column, quantity in SINGLE_QUANTITY_COLUMNS.items()},
    "latency_buckets": ("latency",), "plugin_reload_buckets": ("plugin_reload",),
    "snapshot_buckets": ("snapshot",),
    "http_success_rate": _HTTP, "error_rate": _HTTP, "error_rate_4xx": _HTTP,
    "error_rate_5xx": _HTTP, "request_rate": _HTTP, "success_rate": _HTTP,
    "latency_p95": ("latency",), "latency_p99": ("latency",), "memory": ("rss_bytes",),
    "raw_fallback_ratio": ("raw_fallback_total",), "effective_fallback_total": ("raw_fallback_total",),
    "effective_fallback_ratio": ("raw_fallback_total",), "effective_fallback": ("raw_fallback_total",),
    "fb_http_ratio": ("fallback_http", "http_adapter_ops"),
    "fb_message_ratio": ("fallback_message", "message_bus_rpc_attempts"),
    "fb_cache_ratio": ("fallback_cache", "cache_get_attempts"),
    "cache_hit_rate": ("cache_hits_raw", "cache_misses_raw"),
    "plugin_reload_success_rate": ("plugin_reload_success", "plugin_reload_failure"),
    "snapshot_success_rate": ("snapshot_create_success", "snapshot_restore_success"),
    "snapshot_success": ("snapshot_create_success", "snapshot_restore_success"),
}


def family_of(sample_name: str, families: dict[str, Family]) -> Family | None:
    """The family a sample name belongs to (``x_bucket`` → histogram ``x``)."""
    if sample_name in families:
        return families[sample_name]
    for suffix in ("_bucket", "_sum", "_count"):
        if sample_name.endswith(suffix) and sample_name[: -len(suffix)] in families:
            return families[sample_name[: -len(suffix)]]
    return None


@dataclass(frozen=True)
class Profile:
    """The quantities the columns need, and the service's families they read.

    ``all_quantities`` holds every quantity; ``quantities`` only those whose family the
    service exports (what the sources query). A quantity reading a metric the profile does
    not know (an override) is taken as exported.

    ``authenticated_read_path``: a GET behind the service's JWT gate that only reads, where
    ``verify`` sends the load token to learn whether the service accepts it (``/health`` is
    outside the gate: it answers 200 to any token). None: the profile knows no such route.
    """

    name: str
    all_quantities: tuple[Quantity, ...]
    families: dict[str, Family] = field(default_factory=dict)
    timed_paths: frozenset[str] = frozenset()
    timed_prefixes: tuple[str, ...] = ()
    authenticated_read_path: str | None = None

    def exports(self, quantity: Quantity) -> bool:
        family = family_of(quantity.metric, self.families)
        return family is None or family.exported

    @property
    def quantities(self) -> tuple[Quantity, ...]:
        return tuple(q for q in self.all_quantities if self.exports(q))

    def not_exported(self) -> dict[str, Measured]:
        """quantity → NA "not exported by this service: <family>", for every quantity whose
        family the service does not export (``absent``: the family is not there)."""
        return {
            q.name: Measured.na(f"{NOT_EXPORTED}: {q.metric}", absent=True)
            for q in self.all_quantities if not self.exports(q)
        }

    def not_exported_families(self) -> list[str]:
        return sorted(name for name, family in self.families.items() if not family.exported)

    def quantity(self, name: str) -> Quantity:
        for quantity in self.all_quantities:
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
            for q in self.all_quantities
        )
        return replace(self, all_quantities=changed)

    def moved_by(self, quantity_or_column: str) -> str | None:
        """What makes the service move the family behind a quantity, column, SLO category
        or family name (fixture README), e.g. for "not exercised by this load" hints.

        >>> get_profile("metasheet").moved_by("plugin_reload_success_rate").startswith("no code path")
        True
        >>> get_profile("metasheet").moved_by("no_such_thing") is None
        True
        """
        family = self.families.get(quantity_or_column)
        if family is not None:
            return family.moved_by or None
        names = COLUMN_INPUTS.get(quantity_or_column, (quantity_or_column,))
        texts: list[str] = []
        for name in names:
            try:
                quantity = self.quantity(name)
            except KeyError:
                continue
            found = family_of(quantity.metric, self.families)
            if found is not None and found.moved_by and found.moved_by not in texts:
                texts.append(found.moved_by)
        return "; ".join(texts) or None

    def timed_path(self, path: str) -> bool:
        """Whether the service times requests to ``path`` (query string ignored), i.e.
        whether they are counted in ``http_requests_total`` when a handler answers.

        >>> p = get_profile("metasheet")
        >>> p.timed_path("/api/attendance/records?from=2026-01-01"), p.timed_path("/api/multitable/sheets")
        (True, False)
        """
        bare = path.split("?", 1)[0].split("#", 1)[0]
        return bare in self.timed_paths or bare.startswith(self.timed_prefixes)


# "Auth for load" (fixture README): GET /api/auth/me answers 200 to a good JWT (every page
# load calls it) and the gate's 401 to a missing, invalid or expired one, or in production to
# a token of a user not in `users`. It is a core router: not timed, so the probe moves no
# counter a run measures.
METASHEET_AUTH_READ_PATH = "/api/auth/me"


def _profile(name: str, families: tuple[Family, ...]) -> Profile:
    return Profile(name, METASHEET_QUANTITIES, {f.name: f for f in families}, TIMED_PATHS, TIMED_PREFIXES,
                   authenticated_read_path=METASHEET_AUTH_READ_PATH)


PROFILES: dict[str, Profile] = {
    "metasheet": _profile("metasheet", METASHEET_FAMILIES),
    "metasheet-2025": _profile("metasheet-2025", METASHEET_2025_FAMILIES),
}
LEGACY_PROFILE = "metasheet-2025"  # what the 2025 script outputs were measured against


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
    derived from the raw one (CSV_V3.md), so it is not required. Families the service does
    not export at all are not required either: their columns are NA by design
    (``Profile.not_exported``). ``flags`` is accepted for profiles whose needs depend on them.
    """
    chosen = get_profile(profile) if isinstance(profile, str) else profile
    names = {q.sample_name for q in chosen.quantities if q.name != "effective_fallback_reported"}
    return sorted(names)


def not_exported_families(profile: Profile | str) -> list[str]:
    """Sample names of the quantities whose family the service does not export."""
    chosen = get_profile(profile) if isinstance(profile, str) else profile
    return sorted({q.sample_name for q in chosen.all_quantities if not chosen.exports(q)})


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


