"""The embedded target as a plain ASGI application (served by uvicorn, or tested in-process
with ``httpx.ASGITransport``).

Routes of the simulated MetaSheet backend:

    GET  /health                      200 (bearer checked when configured)
    GET  /api/v2/hello                200, degraded when the message bus fails
    GET  /api/plugins                 200, cached; degraded when the HTTP adapter fails
    GET  /api/sheets/{id}             200 or 404, cached
    POST /api/sheets/{id}/rows        201 or 404; JSON body; event over the message bus
    GET  /metrics/prom, /metrics      Prometheus text exposition, no token, not counted
    GET  /__phase5/admin/state        requests served and faults (admin token)
    PUT  /__phase5/admin/faults       replace the faults, offsets from now (admin token)
    PUT  /__phase5/admin/flags        set the service's feature flags, e.g.
                                      {"COUNT_CACHE_MISS_AS_FALLBACK": true} (admin token)

Service requests (everything but metrics and admin pages) are counted in
``http_requests_total`` and timed into ``http_server_requests_seconds``, 401/404/405/503
included, so a client's count of requests sent matches the server's count.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from phase5site.runspec.models import FaultSpec
from phase5site.simulator.config import TargetConfig
from phase5site.simulator.faults import FaultBoard, MemoryBallast
from phase5site.simulator.metrics import MetasheetMetrics
from phase5site.simulator.simulator import Simulator, Sleep

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Clock = Callable[[], float]

ADMIN_PREFIX = "/__phase5/admin/"
ADMIN_TOKEN_HEADER = "x-phase5-admin-token"
METRICS_PATHS = ("/metrics/prom", "/metrics")
UNMATCHED_ROUTE = "unmatched"
MAX_BODY_BYTES = 1 << 20
BALLAST_TICK_S = 0.1
_SHEET = re.compile(r"^/api/sheets/(\d+)$")
_SHEET_ROWS = re.compile(r"^/api/sheets/(\d+)/rows$")
_FAULTS = TypeAdapter(list[FaultSpec])

# route template -> (method, success status); 503 is answered during error bursts.
ROUTES = {
    "/health": ("GET", 200),
    "/api/v2/hello": ("GET", 200),
    "/api/plugins": ("GET", 200),
    "/api/sheets/:id": ("GET", 200),
    "/api/sheets/:id/rows": ("POST", 201),
}


def match_route(path: str) -> tuple[str, int | None] | None:
    """Route template and sheet id for a path, or None.

    >>> match_route("/api/sheets/7/rows")
    ('/api/sheets/:id/rows', 7)
    """
    if path in ROUTES:
        return path, None
    for pattern, template in ((_SHEET, "/api/sheets/:id"), (_SHEET_ROWS, "/api/sheets/:id/rows")):
        found = pattern.match(path)
        if found:
            return template, int(found.group(1))
    return None


class MetasheetApp:
    """ASGI callable; ``startup``/``shutdown`` run the background loops (ASGI lifespan)."""

    def __init__(
        self, config: TargetConfig, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.config = config
        self.metrics = MetasheetMetrics(config.embedded.disable_families)
        self.simulator = Simulator(config.embedded, self.metrics, sleep=sleep)
        self.faults = FaultBoard(clock)
        self.faults.replace(config.embedded.faults)  # offsets count from target start
        self.ballast = MemoryBallast()
        self.requests_served = 0
        self._sleep = sleep
        self._fault_rng = random.Random(f"{config.embedded.seed}:faults")
        self._tasks: list[asyncio.Task[None]] = []
        self._bearer = f"Bearer {config.bearer}".encode() if config.bearer else None
        for route, (method, status) in ROUTES.items():
            self.metrics.prepare_route(route, method, (status, 503))

    async def startup(self) -> None:
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self.simulator.run_plugin_reloads(self.config.plugin_reload_interval_s)),
            asyncio.create_task(self.simulator.run_snapshots(self.config.snapshot_interval_s)),
            asyncio.create_task(self._run_ballast()),
        ]

    async def shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.ballast.adjust(0)

    async def _run_ballast(self) -> None:
        while True:
            self.ballast.adjust(self.faults.memory_target_mb())
            await asyncio.sleep(BALLAST_TICK_S)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path in METRICS_PATHS:
            await self._metrics_page(method, send)
        elif path.startswith(ADMIN_PREFIX):
            await self._admin(scope, receive, send)
        else:
            await self._service(scope, receive, send)

    async def _metrics_page(self, method: str, send: Send) -> None:
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, {"error": "method not allowed"}, allow="GET")
            return
        body = self.metrics.exposition()
        await _respond_bytes(send, 200, body, self.metrics.content_type, head=method == "HEAD")

    # --- the service --------------------------------------------------------------------

    async def _service(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method = scope["method"]
        matched = match_route(scope["path"])
        route = matched[0] if matched else UNMATCHED_ROUTE
        stall_ms = self.faults.stall_ms()
        if stall_ms > 0:
            await self._sleep(stall_ms / 1000.0)
        status, payload, allow = await self._answer(scope, receive, matched)
        self.metrics.observe_request(route, method, status, time.perf_counter() - started)
        self.requests_served += 1
        await _respond(send, status, payload, allow=allow,
                       authenticate=status == 401)

    async def _answer(
        self, scope: Scope, receive: Receive, matched: tuple[str, int | None] | None
    ) -> tuple[int, dict[str, Any], str | None]:
        if matched is None:
            return 404, {"error": "not found", "path": scope["path"]}, None
        route, sheet_id = matched
        expected_method = ROUTES[route][0]
        if scope["method"] != expected_method:
            return 405, {"error": "method not allowed"}, expected_method
        if not self._authorized(scope):
            return 401, {"error": "unauthorized"}, None
        share = self.faults.error_share()
        if share > 0 and self._fault_rng.random() < share:
            return 503, {"error": "service unavailable"}, None
        status, payload = await self._dispatch(route, sheet_id, receive)
        return status, payload, None

    async def _dispatch(
        self, route: str, sheet_id: int | None, receive: Receive
    ) -> tuple[int, dict[str, Any]]:
        simulator = self.simulator
        await simulator.route_work(route)
        if route == "/health":
            return 200, {"status": "ok"}
        if route == "/api/v2/hello":
            return await simulator.hello()
        if route == "/api/plugins":
            return await simulator.list_plugins()
        assert sheet_id is not None
        if route == "/api/sheets/:id":
            return await simulator.get_sheet(sheet_id)
        body = await _read_json(receive)
        if isinstance(body, _BadBody):
            return body.status, {"error": body.message}
        return await simulator.add_row(sheet_id, body)

    def _authorized(self, scope: Scope) -> bool:
        if self._bearer is None:
            return True
        given = _header(scope, b"authorization")
        return given is not None and hmac.compare_digest(given, self._bearer)

    # --- admin ----------------------------------------------------------------------------

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = self.config.admin_token
        given = _header(scope, ADMIN_TOKEN_HEADER.encode())
        if token is None:
            await _respond(send, 404, {"error": "not found"})
            return
        if given is None or not hmac.compare_digest(given, token.encode()):
            await _respond(send, 401, {"error": "admin token missing or wrong"})
            return
        action = (scope["method"], scope["path"][len(ADMIN_PREFIX):])
        if action == ("GET", "state"):
            await _respond(send, 200, self.state())
        elif action == ("PUT", "faults"):
            await self._put_faults(receive, send)
        elif action == ("PUT", "flags"):
            await self._put_flags(receive, send)
        else:
            await _respond(send, 404, {"error": "not found"})

    async def _put_faults(self, receive: Receive, send: Send) -> None:
        body = await _read_json(receive)
        if isinstance(body, _BadBody):
            await _respond(send, body.status, {"error": body.message})
            return
        try:
            faults = _FAULTS.validate_python(body.get("faults") if isinstance(body, dict) else None)
        except ValidationError as error:
            await _respond(send, 422, {"error": str(error)})
            return
        self.faults.replace(faults)
        await _respond(send, 200, self.state())

    async def _put_flags(self, receive: Receive, send: Send) -> None:
        # Like the real service's deployment flag: with it, cache misses count as effective
        # fallback (metasheet_fallback_effective_total{reason="cache_miss"}).
        body = await _read_json(receive)
        if isinstance(body, _BadBody):
            await _respond(send, body.status, {"error": body.message})
            return
        value = body.get("COUNT_CACHE_MISS_AS_FALLBACK") if isinstance(body, dict) else None
        if not isinstance(value, bool):
            await _respond(send, 422, {"error": "expected {\"COUNT_CACHE_MISS_AS_FALLBACK\": true|false}"})
            return
        self.metrics.count_cache_miss_as_fallback = value
        await _respond(send, 200, self.state())

    def state(self) -> dict[str, Any]:
        return {
            "requests_served": self.requests_served,
            "flags": {"COUNT_CACHE_MISS_AS_FALLBACK": self.metrics.count_cache_miss_as_fallback},
            "faults": self.faults.describe(),
            "memory_ballast_mb": self.ballast.held_mb,
        }


def create_app(
    config: TargetConfig, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
) -> MetasheetApp:
    """The in-process ASGI app; faults in ``config.embedded`` count from this moment."""
    return MetasheetApp(config, clock=clock, sleep=sleep)


class _BadBody:
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


async def _read_json(receive: Receive) -> Any:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _BadBody(400, "client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return _BadBody(413, f"body larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    try:
        return json.loads(b"".join(chunks) or b"null")
    except ValueError:
        return _BadBody(400, "body is not JSON")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def _respond(
    send: Send,
    status: int,
    payload: dict[str, Any],
    *,
    allow: str | None = None,
    authenticate: bool = False,
) -> None:
    body = json.dumps(payload).encode()
    extra: list[tuple[bytes, bytes]] = []
    if allow:
        extra.append((b"allow", allow.encode()))
    if authenticate:
        extra.append((b"www-authenticate", b'Bearer realm="metasheet"'))
    await _respond_bytes(send, status, body, "application/json", extra=extra)


async def _respond_bytes(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    *,
    extra: list[tuple[bytes, bytes]] | None = None,
    head: bool = False,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})
