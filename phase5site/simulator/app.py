"""The embedded target as a plain ASGI application (served by uvicorn, or tested in-process
with ``httpx.ASGITransport``): a development instance of the MetaSheet backend, with the
real service's routes, JWT gate and HTTP timer split (``shared/fixtures/metasheet2-live``).

Timed routes (counted in ``http_requests_total`` and the ``http_server_requests_seconds``
histogram and summary, with the route pattern as ``route``):

    GET  /health, /api/health          route "/health", 200
    GET  /api/v2/hello, /api/v2/rpc-test, /api/plugins, /internal/metrics   fixed 200
    GET  /api/attendance/leave-types, /api/attendance/records,
         /api/after-sales/health, /api/after-sales/app-manifest     plugin routes, real status
    GET  /api/after-sales/tickets      plugin route answering 401 itself (counted as 401)

Not timed, as in the service (core routers, dev routes, the gate, unmatched paths):

    GET  /api/multitable/sheets, /api/auth/me, /api/snapshots?view_id=, /api/admin/plugins
    POST /api/snapshots {"view_id": "<uuid>", "name": ...}        201; moves snapshot create
    POST /api/snapshots/{id}/restore   403 SAFETY_CHECK_REQUIRED with a confirmation token;
                                       with a confirmed X-Safety-Token 200, moves restore
    POST /api/admin/safety/confirm {"token", "typedConfirmation", "acknowledged": true}
    POST /api/admin/plugins/{id}/reload   403, then 200 with X-Safety-Token; moves no metric
    POST /api/cache-test/warm?count=N, /api/cache-test/simulate   (no JWT) the cache families
    POST /internal/test/fallback {"mode": ...}   (no JWT) the fallback families
    any /api path outside the gate's exceptions without the bearer: 401 from the JWT gate,
        counted only in jwt_auth_fail_total / metasheet_auth_failures_total
    any other path: 404
    GET  /metrics/prom, /metrics       the exposition; with a metrics token configured it
        needs "Authorization: Bearer <t>" or "X-Metrics-Token: <t>" (the API bearer is not
        accepted), else 401 with WWW-Authenticate: Bearer realm="metrics"
    GET  /__phase5/admin/state         requests served and faults (admin token)
    PUT  /__phase5/admin/faults        replace the faults, offsets from now (admin token)
    PUT  /__phase5/admin/flags         {"COUNT_CACHE_MISS_AS_FALLBACK": true} (admin token)

Without a bearer configured the gate lets every request through (an open development
instance). Faults act on every service request; an error burst's 503 is counted only on a
timed route, like any status a timed handler answers.
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
from urllib.parse import parse_qs, unquote

from pydantic import TypeAdapter, ValidationError

from phase5site.runspec.models import FaultSpec
from phase5site.simulator.config import TargetConfig
from phase5site.simulator.faults import FaultBoard, MemoryBallast
from phase5site.simulator.metrics import MetasheetMetrics
from phase5site.simulator.simulator import MAX_WARM_COUNT, Simulator, Sleep

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Clock = Callable[[], float]

ADMIN_PREFIX = "/__phase5/admin/"
ADMIN_TOKEN_HEADER = "x-phase5-admin-token"
METRICS_PATHS = ("/metrics/prom", "/metrics")
MAX_BODY_BYTES = 1 << 20
BALLAST_TICK_S = 0.1
_FAULTS = TypeAdapter(list[FaultSpec])

# (method, path) -> route label; the handler records a fixed 200.
TIMED_FIXED: dict[tuple[str, str], str] = {
    ("GET", "/health"): "/health", ("GET", "/api/health"): "/health",
    ("GET", "/api/v2/hello"): "/api/v2/hello", ("GET", "/api/v2/rpc-test"): "/api/v2/rpc-test",
    ("GET", "/api/plugins"): "/api/plugins", ("GET", "/internal/metrics"): "/internal/metrics",
}
# Plugin routes: recorded with the status the plugin answers.
PLUGIN_ROUTES: dict[tuple[str, str], int] = {
    ("GET", "/api/attendance/leave-types"): 200, ("GET", "/api/attendance/records"): 200,
    ("GET", "/api/after-sales/health"): 200, ("GET", "/api/after-sales/app-manifest"): 200,
    ("GET", "/api/after-sales/tickets"): 401,  # the plugin's own check rejects the load user
}
GATE_EXCEPTIONS = frozenset({
    "/api/health", "/api/plugins", "/api/v2/hello", "/api/v2/rpc-test", "/api/permissions/health",
    "/api/auth/login", "/api/auth/dev-token",
})
GATE_EXCEPTION_PREFIXES = ("/api/cache-test/", "/api/plm-embed/")
_RESTORE = re.compile(r"^/api/snapshots/([^/]+)/restore$")
_RELOAD = re.compile(r"^/api/admin/plugins/(.+)/reload$")  # ids hold %2F: "@test/x"
UNTIMED_GET = frozenset({"/api/multitable/sheets", "/api/auth/me", "/api/snapshots", "/api/admin/plugins"})


def timed_route(method: str, path: str) -> str | None:
    """The route label the service's timer records for a request, or None when untimed.

    >>> timed_route("GET", "/api/health"), timed_route("GET", "/api/multitable/sheets")
    ('/health', None)
    """
    if (method, path) in TIMED_FIXED:
        return TIMED_FIXED[(method, path)]
    if (method, path) in PLUGIN_ROUTES:
        return path
    return None


def gated(path: str) -> bool:
    """Whether the global JWT gate checks ``path``."""
    return path.startswith("/api/") and path not in GATE_EXCEPTIONS and not path.startswith(
        GATE_EXCEPTION_PREFIXES)


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
        token = config.metrics_token
        self._metrics_credentials = (
            (f"Bearer {token}".encode(), token.encode()) if token else None)

    async def startup(self) -> None:
        if self._tasks:
            return
        self._tasks = [asyncio.create_task(self._run_ballast())]

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
        path = scope["path"]
        if path in METRICS_PATHS:
            await self._metrics_page(scope, send)
        elif path.startswith(ADMIN_PREFIX):
            await self._admin(scope, receive, send)
        else:
            await self._service(scope, receive, send)

    def _metrics_authorized(self, scope: Scope) -> bool:
        if self._metrics_credentials is None:
            return True
        bearer, token = self._metrics_credentials
        given = _header(scope, b"authorization")
        if given is not None and hmac.compare_digest(given, bearer):
            return True
        given = _header(scope, b"x-metrics-token")
        return given is not None and hmac.compare_digest(given, token)

    async def _metrics_page(self, scope: Scope, send: Send) -> None:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _respond(send, 404, {"error": "not found"})
            return
        if not self._metrics_authorized(scope):
            await _respond(send, 401, {"error": "metrics token required"},
                           authenticate=b'Bearer realm="metrics"')
            return
        body = self.metrics.exposition()
        await _respond_bytes(send, 200, body, self.metrics.content_type, head=method == "HEAD")

    # --- the service --------------------------------------------------------------------

    async def _service(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        stall_ms = self.faults.stall_ms()
        if stall_ms > 0:
            await self._sleep(stall_ms / 1000.0)
        problem = self._gate(scope) if gated(path) else None
        route = timed_route(method, path)
        if problem is not None:
            # The gate answers before any timed handler runs: never in the HTTP families.
            self.metrics.count_auth_failure(problem)
            status, payload = 401, {"success": False, "error": "Authentication required"}
        else:
            status, payload = await self._answer(scope, receive)
            if route is not None:
                self.metrics.observe_request(route, method, status, time.perf_counter() - started)
        self.requests_served += 1
        await _respond(send, status, payload,
                       authenticate=b'Bearer realm="metasheet"' if status == 401 else None)

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        method, path = scope["method"], scope["path"]
        share = self.faults.error_share()
        if share > 0 and self._fault_rng.random() < share:
            return 503, {"error": "service unavailable"}
        simulator = self.simulator
        route = timed_route(method, path)
        await simulator.route_work(route or "untimed")
        if route is not None:
            if (method, path) in PLUGIN_ROUTES:
                status = PLUGIN_ROUTES[(method, path)]
                return status, {"ok": status == 200, "route": path}
            return 200, {"status": "ok", "route": route}
        if method == "GET" and path in UNTIMED_GET:
            return self._untimed_get(scope)
        if method == "POST":
            return await self._post(scope, receive)
        return 404, {"error": "not found", "path": path}

    def _untimed_get(self, scope: Scope) -> tuple[int, dict[str, Any]]:
        path = scope["path"]
        if path == "/api/snapshots":
            view_id = _query(scope).get("view_id")
            return 200, {"success": True, "data": self.simulator.list_snapshots(view_id)}
        if path == "/api/admin/plugins":
            return 200, {"success": True, "data": list(self.simulator.plugins.values())}
        if path == "/api/auth/me":
            return 200, {"success": True, "data": {"user": {"id": "load-user", "role": "admin"}}}
        return 200, {"success": True, "data": {"sheets": []}}

    async def _post(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        path, simulator = scope["path"], self.simulator
        if path == "/api/cache-test/warm":
            count = _int(_query(scope).get("count"), 100)
            if count is None or not 0 <= count <= MAX_WARM_COUNT:
                return 400, {"success": False, "error": f"count must be 0..{MAX_WARM_COUNT}"}
            return 200, simulator.cache_warm(count)
        if path == "/api/cache-test/simulate":
            return 200, simulator.cache_simulate()
        body = await _read_json(receive)
        if isinstance(body, _BadBody):
            return body.status, {"error": body.message}
        if path == "/internal/test/fallback":
            return await simulator.fallback(body.get("mode") if isinstance(body, dict) else None)
        if path == "/api/snapshots":
            return await simulator.snapshot_create(body)
        if path == "/api/admin/safety/confirm":
            return self._confirm(body)
        for pattern, operation in ((_RESTORE, "restore_snapshot"), (_RELOAD, "reload_plugin")):
            found = pattern.match(path)
            if found is None:
                continue
            token = _header(scope, b"x-safety-token")
            if not simulator.guard.allow(token.decode("latin-1") if token else None, operation):
                return 403, _safety_required(simulator.guard.challenge(operation), operation)
            if operation == "restore_snapshot":
                return await simulator.snapshot_restore(found.group(1))
            return await simulator.reload_plugin(unquote(found.group(1)))
        return 404, {"error": "not found", "path": path}

    def _confirm(self, body: Any) -> tuple[int, dict[str, Any]]:
        fields = body if isinstance(body, dict) else {}
        token = fields.get("token")
        ok = isinstance(token, str) and self.simulator.guard.confirm(
            token, fields.get("typedConfirmation"), fields.get("acknowledged"))
        if not ok:
            return 400, {"success": False, "error": "confirmation rejected"}
        return 200, {"success": True}

    def _gate(self, scope: Scope) -> str | None:
        """None when the request passes the JWT gate, else the failure reason it counts."""
        if self._bearer is None:
            return None
        given = _header(scope, b"authorization")
        if given is None:
            return "missing_token"
        return None if hmac.compare_digest(given, self._bearer) else "invalid_token"

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
    authenticate: bytes | None = None,
) -> None:
    body = json.dumps(payload).encode()
    extra: list[tuple[bytes, bytes]] = []
    if allow:
        extra.append((b"allow", allow.encode()))
    if authenticate:
        extra.append((b"www-authenticate", authenticate))
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


def _safety_required(token: str, operation: str) -> dict[str, Any]:
    return {
        "error": "SafetyCheck", "code": "SAFETY_CHECK_REQUIRED",
        "message": "Operation requires confirmation",
        "confirmation": {"token": token, "instructions": f"type '{operation}' to confirm, then retry "
                         "with the same token in the X-Safety-Token header"},
    }


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    return {key: values[-1] for key, values in parse_qs(raw).items()}


def _int(text: str | None, default: int) -> int | None:
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        return None
