"""What the simulated MetaSheet backend does behind each route (a development instance with
``FEATURE_CACHE=true``, as in ``shared/fixtures/metasheet2-live``).

Every counter is moved by the code path that ran, as in the real service:

* the cache is looked up only by the diagnostics routes ``POST /api/cache-test/warm`` (sets
  10 ``warm:*`` keys, then reads them ``count`` times: all hits) and ``/simulate`` (the
  real route's fixed access pattern of 373 gets with sets and deletes in between: a little
  over half hits), into ``cache_hits_total`` / ``cache_miss_total{impl="memory",key_pattern}``
  where the key pattern is the text before the first ``:``;
* a fallback is recorded only by ``POST /internal/test/fallback {"mode": ...}``, which
  answers the real route's status per mode (``cache_miss`` 200, ``http_error`` 500 ...);
* snapshots are created by ``POST /api/snapshots`` and restored by the confirmed restore;
  both are timed with ``time.perf_counter`` into the duration histogram;
* a plugin reload reloads the plugin but, as in the real service, records nothing that is
  exported (``metasheet_plugin_reload_*`` stay without samples).

Latencies are drawn from seeded log-normal distributions (median ``m``, shape ``sigma``:
``lognormvariate(ln m, sigma)``; the q-quantile is ``m * exp(sigma * z_q)``) and spent with
the injected ``sleep``; the medians are the real routes' mean latencies of the live capture.
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from phase5site.runspec.models import EmbeddedSpec
from phase5site.simulator.metrics import FALLBACK_REASONS, MetasheetMetrics

Sleep = Callable[[float], Awaitable[Any]]

ROUTE_MEDIAN_MS = {
    "/health": 1.4,
    "/api/v2/hello": 2.4,
    "/api/v2/rpc-test": 2.4,
    "/api/plugins": 2.5,
    "/internal/metrics": 3.0,
    "/api/after-sales/health": 9.7,
    "/api/after-sales/app-manifest": 9.7,
    "/api/after-sales/tickets": 8.0,
    "/api/attendance/leave-types": 13.2,
    "/api/attendance/records": 32.2,
    "untimed": 5.0,  # core routers: not timed by the service, still work
}
ROUTE_SIGMA = 0.45
SNAPSHOT_MEDIAN_MS = 15.0  # the capture: create/restore took 10-40 ms
CACHE_IMPL = "memory"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
# The fallback test route: mode -> (HTTP status, effective). Unknown modes count 'unknown'.
FALLBACK_MODES: dict[str, tuple[int, bool]] = {
    "http_error": (500, True), "http_timeout": (504, True), "message_error": (502, True),
    "message_timeout": (504, True), "cache_miss": (200, False), "circuit_breaker": (503, True),
    "upstream_error": (502, True),
}
FALLBACK_TIMEOUT_S = 0.1  # the timeout modes answer after 100 ms
WARM_KEYS = ("warm:user:1", "warm:user:2", "warm:user:3", "warm:dept:1", "warm:dept:2",
             "warm:sheet:1", "warm:sheet:2", "warm:workflow:1", "warm:file:1", "warm:perm:1")
# /api/cache-test/simulate: (key, gets, set every n gets or 0, delete every n gets or 0)
SIMULATE_PATTERN = (
    ("user:123", 100, 10, 20), ("user:456", 80, 10, 20), ("department:dept_1", 60, 10, 20),
    ("spreadsheet:sheet_1", 50, 10, 20), ("workflow:wf_1", 30, 5, 0), ("file:file_1", 25, 5, 0),
    ("permission:perm_1", 20, 5, 0), ("audit:log_1", 5, 0, 0), ("config:app_config", 3, 0, 0),
)
MAX_WARM_COUNT = 1000
PLUGIN_NAMES = ("@test/good-plugin", "@metasheet/plugin-view-kanban", "plugin-attendance",
                "plugin-after-sales")
SAFETY_OPERATIONS = {"restore_snapshot", "reload_plugin"}
MAX_PENDING_CONFIRMATIONS = 1000


def lognormal_s(rng: random.Random, median_ms: float, sigma: float, scale: float) -> float:
    """A log-normal duration in seconds with the given median.

    With median 2 ms, sigma 0 and scale 1 the draw is exactly 0.002 s.
    """
    return rng.lognormvariate(math.log(median_ms / 1000.0), sigma) * scale


def key_pattern(key: str) -> str:
    """The label the service gives a key: the text before the first ``:``.

    >>> key_pattern("warm:user:1"), key_pattern("plain")
    ('warm', 'plain')
    """
    return key.split(":", 1)[0]


@dataclass
class Snapshot:
    snapshot_id: str
    view_id: str
    name: str
    restores: int = 0


@dataclass
class SafetyGuard:
    """The SafetyGuard's two steps: a blocked operation gets a token, confirm marks it,
    the retry with ``X-Safety-Token`` passes once."""

    pending: dict[str, str] = field(default_factory=dict)  # token -> operation
    confirmed: set[str] = field(default_factory=set)

    def challenge(self, operation: str) -> str:
        if len(self.pending) >= MAX_PENDING_CONFIRMATIONS:
            oldest = next(iter(self.pending))
            self.pending.pop(oldest)
            self.confirmed.discard(oldest)
        token = "sfg_" + secrets.token_hex(12)
        self.pending[token] = operation
        return token

    def confirm(self, token: str, typed: object, acknowledged: object) -> bool:
        operation = self.pending.get(token)
        if operation is None or typed != operation or acknowledged is not True:
            return False
        self.confirmed.add(token)
        return True

    def allow(self, token: str | None, operation: str) -> bool:
        if token is None or token not in self.confirmed or self.pending.get(token) != operation:
            return False
        self.confirmed.discard(token)
        self.pending.pop(token, None)
        return True


class Simulator:
    """The MetaSheet-like service state and behaviour; one per app, single event loop."""

    def __init__(
        self, embedded: EmbeddedSpec, metrics: MetasheetMetrics, *, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.metrics = metrics
        self.latency_scale = embedded.latency_scale
        self._sleep = sleep
        # Separate streams so that, e.g., a change in snapshot timing leaves latencies alone.
        self._latency_rng = random.Random(f"{embedded.seed}:latency")
        self._snapshot_rng = random.Random(f"{embedded.seed}:snapshot")
        self._cache: dict[str, str] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.guard = SafetyGuard()
        self.plugins = {name: {"name": name, "version": 1, "status": "active"} for name in PLUGIN_NAMES}

    async def route_work(self, route: str) -> None:
        """The route's own processing time."""
        median_ms = ROUTE_MEDIAN_MS.get(route, ROUTE_MEDIAN_MS["untimed"])
        await self._sleep(lognormal_s(self._latency_rng, median_ms, ROUTE_SIGMA, self.latency_scale))

    # --- the memory cache behind /api/cache-test -------------------------------------------

    def cache_get(self, key: str) -> bool:
        hit = key in self._cache
        family = self.metrics.cache_hits if hit else self.metrics.cache_misses
        family.inc(impl=CACHE_IMPL, key_pattern=key_pattern(key))
        return hit

    def cache_warm(self, count: int) -> dict[str, Any]:
        for key in WARM_KEYS:
            self._cache[key] = f"warmed_value_{time.time()}"
        hits = sum(self.cache_get(key) for _ in range(count) for key in WARM_KEYS)
        return {"success": True, "keysWarmed": len(WARM_KEYS), "hits": hits,
                "reads": count * len(WARM_KEYS)}

    def cache_simulate(self) -> dict[str, Any]:
        gets = 0
        for key, count, set_every, delete_every in SIMULATE_PATTERN:
            for index in range(count):
                self.cache_get(key)
                gets += 1
                if set_every and index % set_every == 0:
                    self._cache[key] = f"value_{index}"
                if delete_every and index % delete_every == 0:
                    self._cache.pop(key, None)
        return {"success": True, "message": "Cache simulation completed", "gets": gets}

    # --- /internal/test/fallback -------------------------------------------------------------

    async def fallback(self, mode: object) -> tuple[int, dict[str, Any]]:
        reason = mode if isinstance(mode, str) and mode in FALLBACK_MODES else "unknown"
        assert reason in FALLBACK_REASONS
        status, effective = FALLBACK_MODES.get(reason, (520, True))
        self.metrics.count_fallback(reason, effective)
        if reason.endswith("_timeout"):
            await self._sleep(FALLBACK_TIMEOUT_S)
        return status, {"ok": status == 200, "mode": reason}

    # --- snapshots ---------------------------------------------------------------------------

    async def _snapshot_work(self) -> None:
        await self._sleep(lognormal_s(self._snapshot_rng, SNAPSHOT_MEDIAN_MS, 0.5, self.latency_scale))

    async def snapshot_create(self, body: Any) -> tuple[int, dict[str, Any]]:
        """A view id that is not a UUID fails in the database: failure counted, 500."""
        started = time.perf_counter()
        view_id = body.get("view_id") if isinstance(body, dict) else None
        await self._snapshot_work()
        ok = isinstance(view_id, str) and bool(UUID.match(view_id))
        self.metrics.snapshot_duration.observe(time.perf_counter() - started, operation="create")
        self.metrics.snapshot_creates.inc(result="success" if ok else "failure")
        if not ok:
            return 500, {"success": False, "error": "invalid input syntax for type uuid"}
        snapshot = Snapshot(secrets.token_hex(8), str(view_id), str(body.get("name", "snapshot")))
        self.snapshots[snapshot.snapshot_id] = snapshot
        return 201, {"success": True, "data": {"id": snapshot.snapshot_id, "view_id": snapshot.view_id}}

    async def snapshot_restore(self, snapshot_id: str) -> tuple[int, dict[str, Any]]:
        snapshot = self.snapshots.get(snapshot_id)
        if snapshot is None:
            return 404, {"success": False, "error": "snapshot not found"}
        started = time.perf_counter()
        await self._snapshot_work()
        snapshot.restores += 1
        self.metrics.snapshot_duration.observe(time.perf_counter() - started, operation="restore")
        self.metrics.snapshot_restores.inc(result="success")
        return 200, {"success": True, "data": {"id": snapshot_id, "itemsRestored": 0}}

    def list_snapshots(self, view_id: str | None) -> list[dict[str, Any]]:
        return [{"id": s.snapshot_id, "view_id": s.view_id, "name": s.name}
                for s in self.snapshots.values() if view_id is None or s.view_id == view_id]

    async def reload_plugin(self, name: str) -> tuple[int, dict[str, Any]]:
        """Reload a plugin: its version moves; no exported metric does (as in the service)."""
        plugin = self.plugins.get(name)
        if plugin is None:
            return 404, {"success": False, "error": f"plugin {name} not found"}
        self.plugins[name] = {**plugin, "version": int(plugin["version"]) + 1}
        return 200, {"success": True, "message": f"Plugin {name} reloaded successfully"}
