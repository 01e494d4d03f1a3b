"""The MetaSheet metric families of the embedded target, in their own registry.

Names, types, labels and buckets follow DESIGN.md's "MetaSheet profile" and the real
``/metrics/prom`` scrapes in ``../shared/fixtures/metasheet2/*/raw-metrics.txt``. Every value
is recorded by the code path that really ran (see ``simulator.py``); nothing is invented.

Two deliberate differences from prometheus_client's defaults, to look like prom-client:
``*_created`` samples are dropped from the exposition, and label sets that the service
knows in advance (fallback reasons, reload results, the statuses of each route) start at 0
so a series exists before its first event (Prometheus docs, "Avoid missing metrics").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric

from phase5site.errors import TargetError

HTTP_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
PLUGIN_RELOAD_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
SNAPSHOT_BUCKETS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

FALLBACK_REASONS = (
    "http_error",
    "http_timeout",
    "message_error",
    "message_timeout",
    "cache_miss",
    "circuit_breaker",
    "upstream_error",
    "unknown",
)
# Effective fallback leaves cache misses out (a miss is served correctly, only slower).
EFFECTIVE_FALLBACK_REASONS = tuple(reason for reason in FALLBACK_REASONS if reason != "cache_miss")
RESULTS = ("success", "failure")
CACHE_KEY_PATTERNS = ("plugins", "sheet")
UPSTREAM_RESULTS = ("success", "error", "timeout")

# Exposed family name -> (type, label names); the contract the metrics profile relies on.
PROFILE_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "http_requests_total": ("counter", ("method", "status")),
    "http_server_requests_seconds": ("histogram", ("route", "method", "status")),
    "process_resident_memory_bytes": ("gauge", ()),
    "process_cpu_seconds_total": ("counter", ()),
    "metasheet_fallback_total": ("counter", ("reason",)),
    "metasheet_fallback_effective_total": ("counter", ("reason",)),
    "metasheet_http_adapter_ops_total": ("counter", ("result",)),
    "metasheet_message_bus_rpc_attempts_total": ("counter", ("result",)),
    "metasheet_cache_get_attempts_total": ("counter", ("key_pattern",)),
    "cache_hits_total": ("counter", ("key_pattern",)),
    "cache_miss_total": ("counter", ("key_pattern",)),
    "metasheet_plugin_reload_total": ("counter", ("plugin_name", "result")),
    "metasheet_plugin_reload_duration_seconds": ("histogram", ("plugin_name",)),
    "metasheet_snapshot_create_total": ("counter", ("result",)),
    "metasheet_snapshot_restore_total": ("counter", ("result",)),
    "metasheet_snapshot_operation_duration_seconds": ("histogram", ("operation",)),
}
# Further real families ProcessCollector exports on Linux; they may be disabled too.
OTHER_FAMILIES = (
    "process_virtual_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds",
)
KNOWN_FAMILIES = frozenset(PROFILE_FAMILIES) | frozenset(OTHER_FAMILIES)


def exposed_name(family: Metric) -> str:
    """Name of a family as it appears in the text exposition.

    prometheus_client strips ``_total`` from counter family names, so a Counter created
    as ``http_requests`` is the family ``http_requests`` exposed as ``http_requests_total``.
    """
    if family.type == "counter":
        return f"{family.name}_total"
    return family.name


def check_disabled_families(names: Iterable[str]) -> frozenset[str]:
    """Return the names as a set, or raise TargetError naming each unknown family."""
    disabled = frozenset(names)
    unknown = sorted(disabled - KNOWN_FAMILIES)
    if unknown:
        raise TargetError(
            f"disable_families names unknown metric families: {', '.join(unknown)}",
            hint=f"known families: {', '.join(sorted(KNOWN_FAMILIES))}",
        )
    return disabled


class _Exposition:
    """A view of a registry without disabled families and without ``*_created`` samples."""

    def __init__(self, registry: CollectorRegistry, disabled: frozenset[str]) -> None:
        self._registry = registry
        self._disabled = disabled

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            if exposed_name(family) in self._disabled:
                continue
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family


class MetasheetMetrics:
    """Every MetaSheet profile family, registered in a private CollectorRegistry."""

    # What prom-client (MetaSheet) sends; every name here is a legacy-valid one.
    content_type = CONTENT_TYPE_PLAIN_0_0_4

    def __init__(self, disable_families: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._exposition = _Exposition(self.registry, check_disabled_families(disable_families))
        ProcessCollector(registry=self.registry)
        self._create_http_families()
        self._create_dependency_families()
        self._create_background_families()

    def _create_http_families(self) -> None:
        registry = self.registry
        self.http_requests = Counter(
            "http_requests", "Total HTTP requests by method and status",
            ["method", "status"], registry=registry,
        )
        self.http_duration = Histogram(
            "http_server_requests_seconds", "HTTP server request duration in seconds",
            ["route", "method", "status"], buckets=HTTP_BUCKETS_S, registry=registry,
        )

    def _create_dependency_families(self) -> None:
        registry = self.registry
        self.fallback = Counter(
            "metasheet_fallback", "Total degraded fallback responses served",
            ["reason"], registry=registry,
        )
        self.fallback_effective = Counter(
            "metasheet_fallback_effective",
            "Degraded fallback responses that count against the SLO (cache misses excluded)",
            ["reason"], registry=registry,
        )
        self.http_adapter_ops = Counter(
            "metasheet_http_adapter_ops", "HTTP adapter operations by result",
            ["result"], registry=registry,
        )
        self.rpc_attempts = Counter(
            "metasheet_message_bus_rpc_attempts", "Message bus RPC attempts by result",
            ["result"], registry=registry,
        )
        self.cache_get_attempts = Counter(
            "metasheet_cache_get_attempts", "Cache get attempts total",
            ["key_pattern"], registry=registry,
        )
        self.cache_hits = Counter(
            "cache_hits", "Total cache hits", ["key_pattern"], registry=registry
        )
        self.cache_misses = Counter(
            "cache_miss", "Total cache misses", ["key_pattern"], registry=registry
        )
        for reason in FALLBACK_REASONS:
            self.fallback.labels(reason=reason)
        for reason in EFFECTIVE_FALLBACK_REASONS:
            self.fallback_effective.labels(reason=reason)
        for result in UPSTREAM_RESULTS:
            self.http_adapter_ops.labels(result=result)
            self.rpc_attempts.labels(result=result)
        for key_pattern in CACHE_KEY_PATTERNS:
            self.cache_get_attempts.labels(key_pattern=key_pattern)
            self.cache_hits.labels(key_pattern=key_pattern)
            self.cache_misses.labels(key_pattern=key_pattern)

    def _create_background_families(self) -> None:
        registry = self.registry
        self.plugin_reloads = Counter(
            "metasheet_plugin_reload", "Total plugin reload operations",
            ["plugin_name", "result"], registry=registry,
        )
        self.plugin_reload_duration = Histogram(
            "metasheet_plugin_reload_duration_seconds", "Plugin reload duration in seconds",
            ["plugin_name"], buckets=PLUGIN_RELOAD_BUCKETS_S, registry=registry,
        )
        self.snapshot_creates = Counter(
            "metasheet_snapshot_create", "Total snapshot create operations",
            ["result"], registry=registry,
        )
        self.snapshot_restores = Counter(
            "metasheet_snapshot_restore", "Total snapshot restore operations",
            ["result"], registry=registry,
        )
        self.snapshot_duration = Histogram(
            "metasheet_snapshot_operation_duration_seconds",
            "Snapshot operation duration in seconds",
            ["operation"], buckets=SNAPSHOT_BUCKETS_S, registry=registry,
        )
        for result in RESULTS:
            self.snapshot_creates.labels(result=result)
            self.snapshot_restores.labels(result=result)

    def prepare_route(self, route: str, method: str, statuses: Iterable[int]) -> None:
        """Start the series of a route at 0 for the statuses it is known to answer."""
        for status in statuses:
            self.http_requests.labels(method=method, status=str(status))
            self.http_duration.labels(route=route, method=method, status=str(status))

    def prepare_plugin(self, plugin_name: str) -> None:
        for result in RESULTS:
            self.plugin_reloads.labels(plugin_name=plugin_name, result=result)
        self.plugin_reload_duration.labels(plugin_name=plugin_name)

    def observe_request(self, route: str, method: str, status: int, duration_s: float) -> None:
        status_text = str(status)
        self.http_requests.labels(method=method, status=status_text).inc()
        self.http_duration.labels(route=route, method=method, status=status_text).observe(
            duration_s
        )

    count_cache_miss_as_fallback = False  # the service's COUNT_CACHE_MISS_AS_FALLBACK flag

    def count_fallback(self, reason: str) -> None:
        self.fallback.labels(reason=reason).inc()
        if reason in EFFECTIVE_FALLBACK_REASONS or (
            reason == "cache_miss" and self.count_cache_miss_as_fallback
        ):
            self.fallback_effective.labels(reason=reason).inc()

    def exposition(self) -> bytes:
        """The Prometheus text exposition (version 0.0.4) of every enabled family."""
        return generate_latest(self._exposition)  # type: ignore[arg-type]
