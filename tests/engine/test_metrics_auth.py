"""metrics.auth: the metrics page's own token (MetaSheet's METRICS_SCRAPE_TOKEN).

A hardened MetaSheet accepts only that value on /metrics/prom (as ``Authorization: Bearer``
or ``X-Metrics-Token``) and refuses the API JWT there with a 401. ``TokenPage`` is a small
real HTTP server on 127.0.0.1 behaving like that and recording the headers of every request,
so the tests see exactly what phase5site sent to the metrics URL.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from phase5site.engine import run_spec
from phase5site.errors import SpecError
from phase5site.ops.verify import verify_spec
from phase5site.runspec import parse_spec_text
from phase5site.runspec.models import EmbeddedSpec
from phase5site.simulator import start_target
from phase5site.store import RunReader

from .helpers import fake_token

JWT = fake_token()  # generated per session: JWT-shaped, never a real credential
METRICS_TOKEN = "m3trics-scrape-t0ken-generated-for-tests"


def page(requests_ok: int) -> str:
    return (
        "# TYPE http_requests_total counter\n"
        f'http_requests_total{{method="GET",status="200"}} {requests_ok}\n'
        "# TYPE process_resident_memory_bytes gauge\n"
        "process_resident_memory_bytes 104857600\n"
        "# TYPE process_cpu_seconds_total counter\n"
        f"process_cpu_seconds_total {requests_ok / 100}\n"
    )


class TokenPage:
    """/metrics/prom that answers 200 only to the metrics token (or to anyone when ``token``
    is None, like a service without METRICS_SCRAPE_TOKEN); every answer moves the counter."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.seen: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                headers = {k.lower(): v for k, v in self.headers.items()}
                owner.seen.append(headers)
                if not owner.accepts(headers):
                    body = b'{"error":"metrics token required"}'
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Bearer realm="metrics"')
                else:
                    body = page(100 * len(owner.seen)).encode()
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics/prom"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def accepts(self, headers: dict[str, str]) -> bool:
        if self.token is None:
            return True
        return (headers.get("authorization") == f"Bearer {self.token}"
                or headers.get("x-metrics-token") == self.token)

    def __enter__(self) -> TokenPage:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def spec_text(target: str, scrape_url: str, auth: str | None) -> str:
    auth_line = f"\n  auth: {auth}" if auth else ""
    return (
        "version: 1\nname: metrics-auth\ntarget:\n"
        f"  base_url: {target}\n  allow_hosts: [127.0.0.1]\n  auth: {{bearer: '${{PROD_JWT}}'}}\n"
        f"metrics:\n  source: scrape\n  scrape_url: '{scrape_url}'{auth_line}\n"
        "phases:\n  - {name: main, rate: 10, concurrency: 2, samples: 2, interval: 1s}\n"
    )


ENV = {"PROD_JWT": JWT, "METRICS_SCRAPE_TOKEN": METRICS_TOKEN}


def jwt_in(headers: dict[str, str]) -> bool:
    return any(JWT in value for value in headers.values())


@pytest.mark.parametrize("auth, header, expected", [
    ("{x_metrics_token: '${METRICS_SCRAPE_TOKEN}'}", "x-metrics-token", METRICS_TOKEN),
    ("{bearer: '${METRICS_SCRAPE_TOKEN}'}", "authorization", f"Bearer {METRICS_TOKEN}"),
])
def test_scrape_mode_sends_the_metrics_token_and_never_the_load_jwt(
        tmp_path: Path, auth: str, header: str, expected: str) -> None:
    with start_target(EmbeddedSpec(seed=3), bearer=JWT) as target, TokenPage(METRICS_TOKEN) as metrics_page:
        loaded = parse_spec_text(spec_text(target.base_url, metrics_page.url, auth), "a.yaml", ENV)
        outcome = run_spec(loaded, results_dir=tmp_path)
    assert outcome.status == "completed", outcome.exit_reason
    assert len(metrics_page.seen) == 3  # the baseline scrape and one per window
    assert [h.get(header) for h in metrics_page.seen] == [expected] * 3
    assert not any(jwt_in(h) for h in metrics_page.seen)
    with RunReader(outcome.run_dir) as reader:
        rows = reader.samples(phase="main", source="scrape")
        counts = {o: n for o, n in reader.outcome_counts().items() if n}
        stored_spec = json.dumps(reader.run()["spec_redacted"])
    assert [row["server_requests"] for row in rows] == [100.0, 100.0]  # each scrape moved it by 100
    assert counts == {"ok": 20}  # the target got the JWT (else 401)
    for text in (stored_spec, *(p.read_text() for p in outcome.run_dir.iterdir() if p.suffix in (".json", ".txt", ".log"))):
        assert METRICS_TOKEN not in text and JWT not in text


def test_without_metrics_auth_the_protected_page_is_na_and_gets_no_jwt(tmp_path: Path) -> None:
    with start_target(EmbeddedSpec(seed=3), bearer=JWT) as target, TokenPage(METRICS_TOKEN) as metrics_page:
        loaded = parse_spec_text(spec_text(target.base_url, metrics_page.url, None), "a.yaml", ENV)
        outcome = run_spec(loaded, results_dir=tmp_path)
    assert outcome.status == "completed", outcome.exit_reason
    assert metrics_page.seen and not any(jwt_in(h) or "x-metrics-token" in h for h in metrics_page.seen)
    with RunReader(outcome.run_dir) as reader:
        rows = reader.samples(phase="main", source="scrape")
    assert all(row["server_requests"] is None for row in rows)
    assert all("answered HTTP 401" in row["na_reasons"]["server_requests"] for row in rows)


def _verify(tmp_path: Path, token_on_page: str | None, auth: str | None, env: dict[str, str]):
    with start_target(EmbeddedSpec(seed=3), bearer=JWT) as target, TokenPage(token_on_page) as metrics_page:
        loaded = parse_spec_text(spec_text(target.base_url, metrics_page.url, auth), "a.yaml", env)
        report = verify_spec(loaded, env=env, results_dir=tmp_path / "results")
    assert not any(jwt_in(h) for h in metrics_page.seen)
    return report.get("metrics:scrape"), metrics_page


def test_verify_says_the_metrics_token_is_accepted(tmp_path: Path) -> None:
    check, metrics_page = _verify(tmp_path, METRICS_TOKEN, "{x_metrics_token: '${METRICS_SCRAPE_TOKEN}'}", ENV)
    assert check.status == "OK", check.reason
    assert check.reason.startswith("metrics token (metrics.auth.x_metrics_token) accepted: ")
    assert check.reason.endswith("without it 401")
    assert METRICS_TOKEN not in check.reason


def test_verify_says_the_metrics_token_is_rejected(tmp_path: Path) -> None:
    env = {**ENV, "METRICS_SCRAPE_TOKEN": "not-the-value-the-service-has"}
    check, _ = _verify(tmp_path, METRICS_TOKEN, "{bearer: '${METRICS_SCRAPE_TOKEN}'}", env)
    assert check.status == "FAIL"
    assert check.reason == (
        f"metrics token rejected: {check.details['url']} answered 401 (WWW-Authenticate: Bearer "
        'realm="metrics") to metrics.auth.bearer; check METRICS_SCRAPE_TOKEN against the service\'s value')


def test_verify_warns_that_the_page_is_open_when_the_token_is_not_checked(tmp_path: Path) -> None:
    check, metrics_page = _verify(tmp_path, None, "{x_metrics_token: '${METRICS_SCRAPE_TOKEN}'}", ENV)
    assert check.status == "WARN"
    assert "the page is open: it answers 200 without the token too" in check.reason
    first, second = metrics_page.seen  # with the token, then without it
    assert first["x-metrics-token"] == METRICS_TOKEN and "x-metrics-token" not in second


def test_verify_without_metrics_auth_names_the_missing_credential(tmp_path: Path) -> None:
    check, _ = _verify(tmp_path, METRICS_TOKEN, None, ENV)
    assert check.status == "FAIL"
    assert "the metrics page wants a credential" in check.reason
    assert "set metrics.auth.x_metrics_token (or .bearer) to ${METRICS_SCRAPE_TOKEN}" in check.reason


def test_verify_of_an_open_page_without_metrics_auth_is_ok(tmp_path: Path) -> None:
    check, _ = _verify(tmp_path, None, None, ENV)
    assert check.status == "OK" and "the page is open" in check.reason


BASE = ("version: 1\nname: x\ntarget:\n  base_url: http://127.0.0.1:9\n  allow_hosts: [127.0.0.1]\n"
        "metrics:\n  source: {source}\n  url: http://127.0.0.1:9090\n  auth: {auth}\n"
        "phases:\n  - {{name: main, rate: 1, concurrency: 1, duration: 1s}}\n")


def test_metrics_auth_is_a_secret_redacted_everywhere() -> None:
    loaded = parse_spec_text(BASE.format(source="scrape", auth="{x_metrics_token: '${METRICS_SCRAPE_TOKEN}'}"),
                             "s.yaml", ENV)
    assert METRICS_TOKEN in loaded.secrets
    assert loaded.redacted()["metrics"]["auth"] == {"bearer": None, "x_metrics_token": "***"}
    assert "metrics.auth.x_metrics_token (from METRICS_SCRAPE_TOKEN)" in loaded.secret_paths
    assert METRICS_TOKEN not in repr(loaded.spec)
    literal = parse_spec_text(BASE.format(source="scrape", auth=f"{{bearer: {METRICS_TOKEN}}}"), "s.yaml", {})
    assert METRICS_TOKEN in literal.secrets and "metrics.auth.bearer" in literal.secret_paths
    assert METRICS_TOKEN not in json.dumps(literal.redacted())


def test_metrics_auth_defaults_to_none_never_to_the_load_jwt() -> None:
    text = BASE.format(source="scrape", auth="{}").replace(
        "allow_hosts: [127.0.0.1]", "allow_hosts: [127.0.0.1]\n  auth: {bearer: '${PROD_JWT}'}")
    loaded = parse_spec_text(text, "s.yaml", ENV)
    assert loaded.spec.metrics.auth.headers() == {}


@pytest.mark.parametrize("source, auth, message", [
    ("scrape", "{bearer: '${METRICS_SCRAPE_TOKEN}', x_metrics_token: '${METRICS_SCRAPE_TOKEN}'}",
     "give one of bearer or x_metrics_token, not both"),
    ("prometheus", "{bearer: '${METRICS_SCRAPE_TOKEN}'}",
     "metrics.auth is sent to the metrics page only, and source 'prometheus' reads no page"),
    ("scrape", "{x_metrics_token: '${METRICS_SCRAPE_TOKEN}'}",
     "a secret must be at least 8 characters long (got 5 character(s) from METRICS_SCRAPE_TOKEN)"),
])
def test_metrics_auth_spec_errors(source: str, auth: str, message: str) -> None:
    env = {**ENV, "METRICS_SCRAPE_TOKEN": "short"} if "at least 8" in message else ENV
    with pytest.raises(SpecError) as caught:
        parse_spec_text(BASE.format(source=source, auth=auth), "s.yaml", env)
    assert message in str(caught.value)
    assert "s.yaml:" in str(caught.value)
