"""Shared builders for the ops tests: JWT-shaped tokens, specs, a mock service and Prometheus."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from phase5site.ops.families import METASHEET_FAMILIES
from phase5site.runspec import LoadedSpec, parse_spec_text

SERVICE_URL = "http://api.test:8900"
PROMETHEUS_URL = "http://prom.test:9090"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def make_jwt(exp_s: float | None = 4_102_444_800) -> str:
    """A JWT-shaped random token (never a real credential); default expiry 2100-01-01."""
    payload: dict[str, Any] = {"sub": "phase5-test", "nonce": secrets.token_urlsafe(8)}
    if exp_s is not None:
        payload["exp"] = exp_s
    return f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(payload)}.{secrets.token_urlsafe(32)}"


def spec_text(
    *,
    base_url: str | None = "${LOAD_BASE_URL}",
    embedded: bool = False,
    bearer: str | None = "${PROD_JWT}",
    allow_hosts: tuple[str, ...] = ("api.test", "prom.test"),
    metrics: str = "{source: prometheus, url: '${METRICS_URL}', selector: '{job=\"metasheet-api\"}'}",
    flags: str = "{COUNT_CACHE_MISS_AS_FALLBACK: false, ENABLE_PHASE5_INTERNAL: false, ENABLE_FALLBACK_TEST: false}",
    phases: str = "  - {name: warmup, rate: 20, concurrency: 5, duration: 10m, observe: false}\n"
    "  - {name: baseline, rate: 80, concurrency: 20, samples: 12, interval: 10m}\n",
) -> str:
    target = "  embedded: {profile: metasheet}\n" if embedded else f"  base_url: {base_url}\n"
    auth = f"  auth: {{bearer: '{bearer}'}}\n" if bearer is not None else ""
    hosts = ", ".join(allow_hosts)
    return (
        "version: 1\nname: verify-test\ntarget:\n"
        f"{target}{auth}  allow_hosts: [{hosts}]\n  timeout: 2s\n"
        f"metrics: {metrics}\nflags: {flags}\nphases:\n{phases}"
    )


def load(text: str, env: Mapping[str, str], path: Path | str = "runspecs/test.yaml") -> LoadedSpec:
    return parse_spec_text(text, path, env)


def exposition(names: list[str]) -> str:
    lines = []
    for name in names:
        lines.append(f"# TYPE {name} counter")
        lines.append(f'{name}{{job="metasheet-api"}} 1')
    return "\n".join(lines) + "\n"


Handler = Callable[[httpx.Request], httpx.Response]


def mock_world(
    *,
    token: str | None,
    prometheus_up: bool = True,
    families: list[str] | None = None,
    service_up: bool = True,
    with_series: list[str] | None = None,
) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A service at SERVICE_URL checking ``token`` and a Prometheus at PROMETHEUS_URL.

    ``families`` are declared (Prometheus metadata); ``with_series`` (default: all of them)
    also have series, as a labelled prom-client family has only after its first event."""
    present = list(METASHEET_FAMILIES) if families is None else families
    sampled = present if with_series is None else with_series
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "api.test":
            if not service_up:
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
            if request.url.path == "/metrics/prom":  # the service's page needs no load token
                return httpx.Response(200, text=exposition(present))
            if token is not None and request.headers.get("authorization") != f"Bearer {token}":
                return httpx.Response(401, json={"error": "unauthorized"})
            if request.url.path in ("/health", "/api/auth/me"):
                return httpx.Response(200, json={"status": "ok"})
            return httpx.Response(404)
        if request.url.host == "prom.test":
            if not prometheus_up:
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
            if request.url.path == "/api/v1/query" and request.url.params.get("query", "").endswith("[300s]"):
                # the raw scrapes of the last 5 minutes: one every 15 s
                values = [[T0 - 300 + 15 * i, "1"] for i in range(21)]
                result = [{"metric": {"__name__": "up", "job": "metasheet-api"}, "values": values}]
                return httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": result}})
            if request.url.path == "/api/v1/query":
                result = [{"metric": {"__name__": "up", "job": "metasheet-api"}, "value": [1.0, "1"]}]
                return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector", "result": result}})
            if request.url.path == "/api/v1/label/__name__/values":
                return httpx.Response(200, json={"status": "success", "data": sorted(sampled + ["up"])})
            if request.url.path == "/api/v1/metadata":  # families declared by the scraped page
                declared = {name.removesuffix("_bucket"): [{"type": "untyped", "help": "", "unit": ""}]
                            for name in present}
                return httpx.Response(200, json={"status": "success", "data": declared})
        return httpx.Response(404)

    return httpx.MockTransport(handle), seen


T0 = 1_764_000_000.0


def make_run_dir(root: Path, *, token: str | None = None, samples: int = 3) -> Path:
    """A real run folder: run.duckdb written by RunWriter, plus the files a run leaves beside it.

    Each sample is stored for two sources, as with ``metrics.source: both``; the archive
    must count it once.
    """
    from phase5site.store import RunWriter

    run_dir = root / "demo-20251124T160000Z"
    environment = {"tool": {"version": "test"}}
    writer = RunWriter.create(
        run_dir, run_id=run_dir.name, name="demo", spec_path="runspecs/demo.yaml", spec_sha256="0" * 64,
        spec_redacted={"name": "demo", "target": {"auth": {"bearer": "***"}}}, environment=environment,
        tool_version="test", started_at=T0,
    )
    with writer:
        writer.begin_phase("baseline", ordinal=1, rate=10.0, concurrency=2, planned_duration_s=60.0 * samples,
                           samples=samples, interval_s=60.0, observe=True, flags={}, started_at=T0)
        for num in range(1, samples + 1):
            for source in ("scrape", "prometheus"):
                writer.add_sample({"phase": "baseline", "sample_num": num, "source": source,
                                   "window_start": T0 + (num - 1) * 60, "window_end": T0 + num * 60,
                                   "window_s": 60.0, "http_success_rate": 0.99})
        writer.end_phase("baseline", ended_at=T0 + 60 * samples, status="completed", requests_sent=0, dropped=0)
        writer.finish("completed", ended_at=T0 + 60 * samples)
    (run_dir / "metadata.json").write_text(json.dumps({"name": "demo", "bearer": "***"}))
    (run_dir / "metrics.csv").write_text("timestamp,sample_num\n2025-11-24 16:01:00,1\n")
    (run_dir / "logs").mkdir()
    # a careless log line holding the token: the archive copies files as they are, but
    # nothing it writes itself may repeat a secret
    (run_dir / "logs" / "load.log").write_text(f"started with {token}\n" if token else "started\n")
    return run_dir
