"""The MetaSheet metric families of the embedded target, printed the way prom-client does.

Names, types, HELP texts, label names and buckets are those of the real service's
``/metrics/prom`` page (``shared/fixtures/metasheet2-live/exposition-*.txt``); every value is
recorded by the code path that really ran (``simulator.py``, ``app.py``); nothing is
invented. What prom-client does and prometheus_client does not, hence a small registry
of our own instead of prometheus_client's:

* a labelled series exists only from its first event; until then its family shows HELP and
  TYPE lines only (an unlabelled one starts at 0);
* bounds print as JavaScript prints numbers (``le="1"``, not ``le="1.0"``), ``le`` (and
  ``quantile``) first, families separated by a blank line, no ``*_created`` samples;
* ``http_server_requests_seconds_summary`` gives the 0.5/0.9/0.99 quantiles over every
  observation since start (prom-client without ``maxAgeSeconds``).

The three families of the 2025 outputs (``metasheet_http_adapter_ops_total``,
``metasheet_message_bus_rpc_attempts_total``, ``metasheet_cache_get_attempts_total``) do not
exist in the current service, so they are not exported here either.
"""

from __future__ import annotations

import bisect
import math
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from prometheus_client import ProcessCollector

from phase5site.errors import TargetError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HTTP_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
PLUGIN_RELOAD_BUCKETS_S = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0)
SNAPSHOT_BUCKETS_S = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
SUMMARY_QUANTILES = (0.5, 0.9, 0.99)
# Observations a summary series keeps exactly; beyond, a seeded uniform reservoir of this
# size (memory stays bounded on long runs; quantiles become estimates, as prom-client's are).
SUMMARY_RESERVOIR = 20_000

FALLBACK_REASONS = (
    "http_error", "http_timeout", "message_error", "message_timeout", "cache_miss",
    "circuit_breaker", "upstream_error", "unknown",
)

# Exposed family name -> (type, label names, buckets): the real service's, what the metrics
# profile reads (tests compare it with the profile and with a live capture).
PROFILE_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "http_requests_total": ("counter", ("method", "status")),
    "http_server_requests_seconds": ("histogram", ("route", "method", "status")),
    "http_server_requests_seconds_summary": ("summary", ("route", "method", "status")),
    "process_resident_memory_bytes": ("gauge", ()),
    "process_cpu_seconds_total": ("counter", ()),
    "metasheet_fallback_total": ("counter", ("reason",)),
    "metasheet_fallback_effective_total": ("counter", ("reason",)),
    "cache_hits_total": ("counter", ("impl", "key_pattern")),
    "cache_miss_total": ("counter", ("impl", "key_pattern")),
    "metasheet_plugin_reload_total": ("counter", ("plugin_name", "result")),
    "metasheet_plugin_reload_duration_seconds": ("histogram", ("plugin_name",)),
    "metasheet_snapshot_create_total": ("counter", ("result",)),
    "metasheet_snapshot_restore_total": ("counter", ("result",)),
    "metasheet_snapshot_operation_duration_seconds": ("histogram", ("operation",)),
}
FAMILY_BUCKETS: dict[str, tuple[float, ...]] = {
    "http_server_requests_seconds": HTTP_BUCKETS_S,
    "metasheet_plugin_reload_duration_seconds": PLUGIN_RELOAD_BUCKETS_S,
    "metasheet_snapshot_operation_duration_seconds": SNAPSHOT_BUCKETS_S,
}
# Further real families the page carries (process metrics, the JWT gate's counters).
OTHER_FAMILIES = (
    "process_cpu_user_seconds_total", "process_cpu_system_seconds_total",
    "process_start_time_seconds", "process_virtual_memory_bytes", "process_open_fds",
    "process_max_fds", "jwt_auth_fail_total", "metasheet_auth_failures_total",
)
KNOWN_FAMILIES = frozenset(PROFILE_FAMILIES) | frozenset(OTHER_FAMILIES)


def js_number(value: float) -> str:
    """A number as JavaScript's ``String(n)`` prints it (what prom-client writes).

    >>> js_number(1.0), js_number(0.025), js_number(math.inf), js_number(9.215e-05)
    ('1', '0.025', '+Inf', '0.00009215')
    """
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text and 1e-7 <= abs(value) < 1e21:  # JavaScript writes these positionally
        return format(Decimal(text), "f")
    return text


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    text = ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)
    return "{" + text + "}" if text else ""


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


@dataclass
class _Histogram:
    counts: list[float]
    total: float = 0.0
    count: float = 0.0


@dataclass
class _Summary:
    values: list[float] = field(default_factory=list)  # sorted
    seen: int = 0
    total: float = 0.0


class Family:
    """One family: its series keyed by label values, created on their first event."""

    def __init__(self, name: str, kind: str, help_text: str, labels: tuple[str, ...] = (),
                 buckets: tuple[float, ...] = ()) -> None:
        self.name, self.kind, self.help, self.labels, self.buckets = name, kind, help_text, labels, buckets
        self.series: dict[tuple[str, ...], object] = {}
        self._rng = random.Random(f"{name}:reservoir")
        if not labels and kind in ("counter", "gauge"):
            self.series[()] = 0.0

    def _key(self, values: dict[str, str]) -> tuple[str, ...]:
        if set(values) != set(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {sorted(values)}")
        return tuple(str(values[label]) for label in self.labels)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        self.series[key] = float(self.series.get(key, 0.0)) + amount  # type: ignore[arg-type]

    def set(self, value: float, **labels: str) -> None:
        self.series[self._key(labels)] = float(value)

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        if self.kind == "histogram":
            state = self.series.get(key)
            if not isinstance(state, _Histogram):
                state = self.series[key] = _Histogram([0.0] * len(self.buckets))
            for index, bound in enumerate(self.buckets):
                if value <= bound:
                    state.counts[index] += 1
            state.total += value
            state.count += 1
            return
        summary = self.series.get(key)
        if not isinstance(summary, _Summary):
            summary = self.series[key] = _Summary()
        summary.seen += 1
        summary.total += value
        if len(summary.values) < SUMMARY_RESERVOIR:
            bisect.insort(summary.values, value)
        else:
            slot = self._rng.randrange(summary.seen)
            if slot < SUMMARY_RESERVOIR:
                del summary.values[self._rng.randrange(len(summary.values))]
                bisect.insort(summary.values, value)

    def value(self, **labels: str) -> float:
        """A counter's or gauge's value (0 before its first event), for tests and state."""
        state = self.series.get(self._key(labels), 0.0)
        return float(state) if isinstance(state, float) else 0.0

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        for key, state in self.series.items():
            pairs = list(zip(self.labels, key))
            if isinstance(state, _Histogram):
                for bound, count in zip((*self.buckets, math.inf), (*state.counts, state.count)):
                    lines.append(f"{self.name}_bucket{_labels([('le', js_number(bound)), *pairs])} {js_number(count)}")
                lines.append(f"{self.name}_sum{_labels(pairs)} {js_number(state.total)}")
                lines.append(f"{self.name}_count{_labels(pairs)} {js_number(state.count)}")
            elif isinstance(state, _Summary):
                for q in SUMMARY_QUANTILES:
                    value = _quantile(state.values, q)
                    lines.append(f"{self.name}{_labels([('quantile', js_number(q)), *pairs])} {js_number(value)}")
                lines.append(f"{self.name}_sum{_labels(pairs)} {js_number(state.total)}")
                lines.append(f"{self.name}_count{_labels(pairs)} {js_number(float(state.seen))}")
            else:
                lines.append(f"{self.name}{_labels(pairs)} {js_number(float(state))}")  # type: ignore[arg-type]
        return lines


def _quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks of the sorted values."""
    if not values:
        return math.nan
    position = q * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


class MetasheetMetrics:
    """Every family the simulated service exports, in the real page's order."""

    content_type = CONTENT_TYPE

    def __init__(self, disable_families: Iterable[str] = ()) -> None:
        self._disabled = check_disabled_families(disable_families)
        self._process = ProcessCollector(registry=None)
        self.count_cache_miss_as_fallback = False  # the service's COUNT_CACHE_MISS_AS_FALLBACK
        f = Family
        self.cpu_user = f("process_cpu_user_seconds_total", "counter", "Total user CPU time spent in seconds.")
        self.cpu_system = f("process_cpu_system_seconds_total", "counter",
                            "Total system CPU time spent in seconds.")
        self.cpu = f("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.")
        self.start_time = f("process_start_time_seconds", "gauge",
                            "Start time of the process since unix epoch in seconds.")
        self.rss = f("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
        self.vms = f("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.")
        self.open_fds = f("process_open_fds", "gauge", "Number of open file descriptors.")
        self.max_fds = f("process_max_fds", "gauge", "Maximum number of open file descriptors.")
        http_labels = ("route", "method", "status")
        self.http_duration = f("http_server_requests_seconds", "histogram",
                               "HTTP server request duration in seconds", http_labels, HTTP_BUCKETS_S)
        self.http_summary = f("http_server_requests_seconds_summary", "summary",
                              "HTTP request duration summary", http_labels)
        self.http_requests = f("http_requests_total", "counter", "Total HTTP requests by method and status",
                               ("method", "status"))
        self.jwt_auth_fail = f("jwt_auth_fail_total", "counter", "Total JWT auth failures", ("reason",))
        self.auth_failures = f("metasheet_auth_failures_total", "counter",
                               "Total authentication failures (alias)")
        self.plugin_reloads = f("metasheet_plugin_reload_total", "counter", "Total plugin reload operations",
                                ("plugin_name", "result"))
        self.plugin_reload_duration = f("metasheet_plugin_reload_duration_seconds", "histogram",
                                        "Plugin reload duration in seconds", ("plugin_name",),
                                        PLUGIN_RELOAD_BUCKETS_S)
        self.snapshot_creates = f("metasheet_snapshot_create_total", "counter",
                                  "Total snapshot create operations", ("result",))
        self.snapshot_restores = f("metasheet_snapshot_restore_total", "counter",
                                   "Total snapshot restore operations", ("result",))
        self.snapshot_duration = f("metasheet_snapshot_operation_duration_seconds", "histogram",
                                   "Snapshot operation duration in seconds", ("operation",), SNAPSHOT_BUCKETS_S)
        self.cache_hits = f("cache_hits_total", "counter", "Total cache hits", ("impl", "key_pattern"))
        self.cache_misses = f("cache_miss_total", "counter", "Total cache misses", ("impl", "key_pattern"))
        self.fallback = f("metasheet_fallback_total", "counter",
                          "Total degraded fallback responses (raw count)", ("reason",))
        self.fallback_effective = f(
            "metasheet_fallback_effective_total", "counter",
            "Effective degraded fallback responses (excludes benign causes like cache_miss when "
            "COUNT_CACHE_MISS_AS_FALLBACK=false)", ("reason",))
        for gauge in (self.start_time, self.rss, self.vms, self.open_fds, self.max_fds):
            gauge.series.clear()  # read from the OS at each scrape; no reading, no series
        self.families: list[Family] = [
            self.cpu_user, self.cpu_system, self.cpu, self.start_time, self.rss, self.vms,
            self.open_fds, self.max_fds, self.http_duration, self.http_summary, self.http_requests,
            self.jwt_auth_fail, self.auth_failures, self.plugin_reloads, self.plugin_reload_duration,
            self.snapshot_creates, self.snapshot_restores, self.snapshot_duration, self.cache_hits,
            self.cache_misses, self.fallback, self.fallback_effective,
        ]

    def observe_request(self, route: str, method: str, status: int, duration_s: float) -> None:
        """The HTTP timer ended by a handler: one count, one histogram and summary observation."""
        status_text = str(status)
        self.http_requests.inc(method=method, status=status_text)
        self.http_duration.observe(duration_s, route=route, method=method, status=status_text)
        self.http_summary.observe(duration_s, route=route, method=method, status=status_text)

    def count_auth_failure(self, reason: str) -> None:
        self.jwt_auth_fail.inc(reason=reason)
        self.auth_failures.inc()

    def count_fallback(self, reason: str, effective: bool = True) -> None:
        """The service's recordFallback: raw always; effective unless a cache miss (or the
        flag makes cache misses count)."""
        self.fallback.inc(reason=reason)
        if effective and (reason != "cache_miss" or self.count_cache_miss_as_fallback):
            self.fallback_effective.inc(reason=reason)

    def _read_process(self) -> None:
        times = os.times()
        self.cpu_user.set(times.user)
        self.cpu_system.set(times.system)
        self.cpu.set(times.user + times.system)
        targets = {
            "process_start_time_seconds": self.start_time, "process_resident_memory_bytes": self.rss,
            "process_virtual_memory_bytes": self.vms, "process_open_fds": self.open_fds,
            "process_max_fds": self.max_fds,
        }
        for metric in self._process.collect():
            family = targets.get(metric.name)
            if family is not None and metric.samples:
                family.set(metric.samples[0].value)

    def exposition(self) -> bytes:
        """The text exposition (version 0.0.4) of every enabled family."""
        self._read_process()
        blocks = ["\n".join(family.render()) for family in self.families if family.name not in self._disabled]
        return ("\n\n".join(blocks) + "\n").encode()
