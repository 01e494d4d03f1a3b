"""What the simulated MetaSheet backend does behind each route, and in the background.

Every counter is incremented by the code path that ran: a cache lookup counts an attempt
and then a hit or a miss; a miss calls the upstream through the HTTP adapter; an upstream
that fails (about 1 %) makes the route serve a degraded answer and counts a fallback with
its reason. A cached entry survives key churn with probability ``cache_hit_ratio``.
Plugin reloads (1 % fail) and snapshot create/restore (0.1 % fail) run periodically, really
change the in-memory state, and are timed with ``time.perf_counter`` into their histograms.

Latencies are drawn from seeded log-normal distributions (median ``m``, shape ``sigma``:
``lognormvariate(ln m, sigma)``; the q-quantile is ``m * exp(sigma * z_q)``, so with
sigma 0.45 the P99 is 2.85 x the median) and spent with the injected ``sleep``.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from phase5site.runspec.models import EmbeddedSpec
from phase5site.simulator.metrics import MetasheetMetrics

Sleep = Callable[[float], Awaitable[Any]]

ROUTE_MEDIAN_MS = {
    "/health": 0.8,
    "/api/v2/hello": 2.0,
    "/api/plugins": 2.5,
    "/api/sheets/:id": 3.0,
    "/api/sheets/:id/rows": 4.0,
}
ROUTE_SIGMA = 0.45
UPSTREAM_MEDIAN_MS = 2.0
UPSTREAM_SIGMA = 0.5
UPSTREAM_FAILURE_RATIO = 0.01  # half errors, half timeouts
HTTP_ADAPTER_TIMEOUT_MS = 50.0
MESSAGE_BUS_TIMEOUT_MS = 40.0
PLUGIN_NAMES = ("example-plugin", "audit-log", "kanban-view", "formula-engine")
PLUGIN_RELOAD_MEDIAN_S = 0.12
# Rare enough that a healthy run passes the optional criteria (reload >= 95 %, snapshot
# >= 99 %) even in short phases; faults, not background noise, are what make a run NO-GO.
PLUGIN_RELOAD_FAILURE_RATIO = 0.01
SNAPSHOT_MEDIAN_S = 0.25
SNAPSHOT_FAILURE_RATIO = 0.001
SHEET_COUNT = 100
ROWS_KEPT_PER_SHEET = 200  # bounded, so RSS reflects faults and not the write load


def lognormal_s(rng: random.Random, median_ms: float, sigma: float, scale: float) -> float:
    """A log-normal duration in seconds with the given median.

    With median 2 ms, sigma 0 and scale 1 the draw is exactly 0.002 s.
    """
    return rng.lognormvariate(math.log(median_ms / 1000.0), sigma) * scale


@dataclass
class Sheet:
    sheet_id: int
    name: str
    rows: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=ROWS_KEPT_PER_SHEET))
    next_row_id: int = 1


def _initial_sheets() -> dict[int, Sheet]:
    sheets = {}
    for sheet_id in range(1, SHEET_COUNT + 1):
        sheet = Sheet(sheet_id=sheet_id, name=f"Sheet {sheet_id}")
        for _ in range(5):
            sheet.rows.append({"id": sheet.next_row_id, "values": [sheet_id, sheet.next_row_id]})
            sheet.next_row_id += 1
        sheets[sheet_id] = sheet
    return sheets


def _copy_sheets(sheets: dict[int, Sheet]) -> dict[int, Sheet]:
    return {
        sheet_id: Sheet(sheet.sheet_id, sheet.name, deque(sheet.rows, maxlen=ROWS_KEPT_PER_SHEET),
                        sheet.next_row_id)
        for sheet_id, sheet in sheets.items()
    }


class Simulator:
    """The MetaSheet-like service state and behaviour; one per app, single event loop."""

    def __init__(
        self, embedded: EmbeddedSpec, metrics: MetasheetMetrics, *, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.metrics = metrics
        self.cache_hit_ratio = embedded.cache_hit_ratio
        self.latency_scale = embedded.latency_scale
        self._sleep = sleep
        # Separate streams so that, e.g., a change in the cache path leaves latencies alone.
        self._latency_rng = random.Random(f"{embedded.seed}:latency")
        self._cache_rng = random.Random(f"{embedded.seed}:cache")
        self._upstream_rng = random.Random(f"{embedded.seed}:upstream")
        # One stream per operation kind: the k-th reload or snapshot has the same outcome
        # for a given seed, however requests and timers interleave.
        self._plugin_rng = random.Random(f"{embedded.seed}:plugin-reload")
        self._snapshot_rng = random.Random(f"{embedded.seed}:snapshot")
        self._cache: dict[str, Any] = {}
        self.sheets = _initial_sheets()
        self.plugins = {name: {"name": name, "version": 1, "status": "active"} for name in PLUGIN_NAMES}
        self._snapshot: dict[int, Sheet] | None = None
        self._next_plugin = 0
        for name in PLUGIN_NAMES:
            metrics.prepare_plugin(name)

    async def route_work(self, route: str) -> None:
        """The route's own processing time, before any dependency is called."""
        median_ms = ROUTE_MEDIAN_MS[route]
        await self._sleep(lognormal_s(self._latency_rng, median_ms, ROUTE_SIGMA, self.latency_scale))

    # --- dependencies ------------------------------------------------------------------

    def cache_get(self, key_pattern: str, key: str) -> tuple[bool, Any]:
        """Look ``key`` up; a present entry survives key churn with probability cache_hit_ratio."""
        self.metrics.cache_get_attempts.labels(key_pattern=key_pattern).inc()
        hit = key in self._cache and self._cache_rng.random() < self.cache_hit_ratio
        if hit:
            self.metrics.cache_hits.labels(key_pattern=key_pattern).inc()
            return True, self._cache[key]
        self.metrics.cache_misses.labels(key_pattern=key_pattern).inc()
        self.metrics.count_fallback("cache_miss")
        return False, None

    async def _upstream(self, timeout_ms: float) -> str:
        """One upstream call: 'success', 'error' (fast) or 'timeout' (waits the timeout)."""
        draw = self._upstream_rng.random()
        if draw < UPSTREAM_FAILURE_RATIO / 2:
            await self._sleep(lognormal_s(self._upstream_rng, 1.0, UPSTREAM_SIGMA, self.latency_scale))
            return "error"
        if draw < UPSTREAM_FAILURE_RATIO:
            await self._sleep(timeout_ms / 1000.0 * self.latency_scale)
            return "timeout"
        median_ms = UPSTREAM_MEDIAN_MS
        await self._sleep(lognormal_s(self._upstream_rng, median_ms, UPSTREAM_SIGMA, self.latency_scale))
        return "success"

    async def http_adapter_call(self) -> bool:
        result = await self._upstream(HTTP_ADAPTER_TIMEOUT_MS)
        self.metrics.http_adapter_ops.labels(result=result).inc()
        if result != "success":
            self.metrics.count_fallback(f"http_{result}")
        return result == "success"

    async def message_bus_rpc(self) -> bool:
        result = await self._upstream(MESSAGE_BUS_TIMEOUT_MS)
        self.metrics.rpc_attempts.labels(result=result).inc()
        if result != "success":
            self.metrics.count_fallback(f"message_{result}")
        return result == "success"

    # --- routes (status, JSON payload) -------------------------------------------------

    async def hello(self) -> tuple[int, dict[str, Any]]:
        ok = await self.message_bus_rpc()
        message = "Hello from MetaSheet v2" if ok else "Hello (degraded)"
        return 200, {"message": message, "degraded": not ok}

    async def list_plugins(self) -> tuple[int, dict[str, Any]]:
        hit, cached = self.cache_get("plugins", "plugins")
        if hit:
            return 200, {"plugins": cached, "cached": True, "degraded": False}
        ok = await self.http_adapter_call()
        listing = [dict(plugin) for plugin in self.plugins.values()]
        if ok:
            self._cache["plugins"] = listing
        return 200, {"plugins": listing, "cached": False, "degraded": not ok}

    async def get_sheet(self, sheet_id: int) -> tuple[int, dict[str, Any]]:
        sheet = self.sheets.get(sheet_id)
        if sheet is None:
            return 404, {"error": "sheet not found", "id": sheet_id}
        key = f"sheet:{sheet_id}"
        hit, cached = self.cache_get("sheet", key)
        if hit:
            return 200, {**cached, "cached": True, "degraded": False}
        ok = await self.http_adapter_call()
        view = {
            "id": sheet.sheet_id,
            "name": sheet.name,
            "row_count": sheet.next_row_id - 1,
            "rows": list(sheet.rows)[-20:],
        }
        if ok:
            self._cache[key] = view
        return 200, {**view, "cached": False, "degraded": not ok}

    async def add_row(self, sheet_id: int, body: Any) -> tuple[int, dict[str, Any]]:
        sheet = self.sheets.get(sheet_id)
        if sheet is None:
            return 404, {"error": "sheet not found", "id": sheet_id}
        row = {"id": sheet.next_row_id, "values": body}
        sheet.rows.append(row)
        sheet.next_row_id += 1
        self._cache.pop(f"sheet:{sheet_id}", None)
        # The change event goes over the message bus; when that fails it is queued locally.
        published = await self.message_bus_rpc()
        return 201, {"sheet_id": sheet_id, "row_id": row["id"], "event_published": published}

    # --- background operations ---------------------------------------------------------

    async def reload_plugin(self) -> bool:
        """Reload the next plugin in turn; time it, count it, return whether it succeeded."""
        name = PLUGIN_NAMES[self._next_plugin % len(PLUGIN_NAMES)]
        self._next_plugin += 1
        started = time.perf_counter()
        await self._sleep(lognormal_s(self._plugin_rng, PLUGIN_RELOAD_MEDIAN_S * 1000, 0.5,
                                      self.latency_scale))
        ok = self._plugin_rng.random() >= PLUGIN_RELOAD_FAILURE_RATIO
        if ok:
            plugin = self.plugins[name]
            self.plugins[name] = {**plugin, "version": int(plugin["version"]) + 1}
            # The plugin manager refreshes the cached listing itself, so a reload does not
            # turn the next lookups into misses (the hit ratio stays the configured one).
            if "plugins" in self._cache:
                self._cache["plugins"] = [dict(p) for p in self.plugins.values()]
        self.metrics.plugin_reload_duration.labels(plugin_name=name).observe(
            time.perf_counter() - started
        )
        result = "success" if ok else "failure"
        self.metrics.plugin_reloads.labels(plugin_name=name, result=result).inc()
        return ok

    async def snapshot_create(self) -> bool:
        started = time.perf_counter()
        copy = _copy_sheets(self.sheets)
        await self._sleep(lognormal_s(self._snapshot_rng, SNAPSHOT_MEDIAN_S * 1000, 0.5,
                                      self.latency_scale))
        ok = self._snapshot_rng.random() >= SNAPSHOT_FAILURE_RATIO
        if ok:
            self._snapshot = copy
        self.metrics.snapshot_duration.labels(operation="create").observe(time.perf_counter() - started)
        self.metrics.snapshot_creates.labels(result="success" if ok else "failure").inc()
        return ok

    async def snapshot_restore(self) -> bool | None:
        """Restore the last snapshot into a sandbox copy (live data stays); None if none yet."""
        if self._snapshot is None:
            return None
        started = time.perf_counter()
        restored = _copy_sheets(self._snapshot)
        await self._sleep(lognormal_s(self._snapshot_rng, SNAPSHOT_MEDIAN_S * 1000, 0.5,
                                      self.latency_scale))
        ok = len(restored) == SHEET_COUNT and self._snapshot_rng.random() >= SNAPSHOT_FAILURE_RATIO
        self.metrics.snapshot_duration.labels(operation="restore").observe(time.perf_counter() - started)
        self.metrics.snapshot_restores.labels(result="success" if ok else "failure").inc()
        return ok

    async def run_plugin_reloads(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self.reload_plugin()

    async def run_snapshots(self, interval_s: float) -> None:
        """Alternate create and restore, one operation per interval."""
        create_next = True
        while True:
            await asyncio.sleep(interval_s)
            if create_next or self._snapshot is None:
                await self.snapshot_create()
            else:
                await self.snapshot_restore()
            create_next = not create_next
