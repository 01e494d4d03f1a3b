"""Fault matrix of issue 13, items 2, 4 and 5: real sockets on 127.0.0.1, tiny misbehaving
servers, the real embedded target and a real Prometheus stopped mid-run. One test per case.

No assertion depends on how fast this machine is: each checks what the run stored (sample
rows, NA reasons, events, the requests a server saw) and what the verdict made of it.

| case                                        | expected                                                  |
|---------------------------------------------|-----------------------------------------------------------|
| Prometheus answers +Inf / 1e400 / -5        | run completes, columns NA quoting the value, report works |
| metrics page reads +Inf / 1e400 / -5        | the same in scrape mode                                   |
| real Prometheus stopped mid-baseline        | server rows "only k of 10 samples valid", NO-GO           |
| metrics page on a host outside allow_hosts  | spec error; nothing contacted                             |
| spec changed after loading (model_copy)     | the runner refuses before any request                     |
| metrics page on another, allowed host       | it never receives the load JWT; the target does           |
| verify against a metrics page               | the page is read without the load JWT                     |
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from click.testing import CliRunner

from phase5site.cli import EXIT_NO_GO, cli
from phase5site.engine import run_spec
from phase5site.errors import HostNotAllowed, SpecError
from phase5site.metrics.local_prometheus import LocalPrometheus
from phase5site.ops.verify import verify_spec
from phase5site.reporting import evaluate_run
from phase5site.runspec import parse_spec_text
from phase5site.runspec.models import EmbeddedSpec
from phase5site.simulator import start_target
from phase5site.store import RunReader

TOKEN = "eyJ" + secrets.token_urlsafe(24)  # generated per session, never a real credential
Responder = Callable[[str, str, bytes], tuple[int, str, bytes]]


class StubServer:
    """A tiny HTTP server on 127.0.0.1 answering every request with ``respond(method, path,
    body)``; it records each request's path and headers."""

    def __init__(self, respond: Responder) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                owner.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                status, content_type, payload = respond(self.command, self.path, body)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer  # noqa: N815 (http.server API)

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # a Prometheus source asks ~30 queries at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, host: str = "127.0.0.1", path: str = "") -> str:
        return f"http://{host}:{self.port}{path}"

    def __enter__(self) -> StubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def prometheus_stand_in(hostile: str) -> Responder:
    """The Prometheus HTTP API of a service whose 5xx counter, RSS and CPU read ``hostile``
    (a sample value as Prometheus encodes it: "+Inf", "1e400", "-5"); 100 requests, 95 ok."""

    def value_of(query: str) -> str | None:
        if any(name in query for name in ('status=~"5..', "process_resident_memory_bytes", "process_cpu_seconds_total")):
            return hostile
        if "http_requests_total" in query:
            return "95" if 'status=~"2..|3.."' in query else "0" if 'status=~"4.."' in query else "100"
        return None  # every other family: declared, no series moved

    def respond(method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        if path.startswith("/api/v1/metadata"):
            return 200, "application/json", json.dumps({"status": "success", "data": {}}).encode()
        form = parse_qs(body.decode())
        query, at = form.get("query", [""])[0], float(form.get("time", ["0"])[0])
        if query.startswith("count by (__name__)"):  # presence: every profile family exists
            names = re.search(r'__name__=~"([^"]*)"', query).group(1).split("|")  # type: ignore[union-attr]
            result = [{"metric": {"__name__": name}, "value": [at, "1"]} for name in names]
        elif query.startswith("up") and query.endswith("ms]"):  # the window's scrapes: one at each edge
            length = int(re.search(r"\[(\d+)ms\]$", query).group(1)) / 1000  # type: ignore[union-attr]
            values = [[at - length, "1"], [at, "1"]]
            result = [{"metric": {"__name__": "up", "job": "metasheet-api"}, "values": values}]
            answer = {"status": "success", "data": {"resultType": "matrix", "result": result}}
            return 200, "application/json", json.dumps(answer).encode()
        elif query.startswith("up"):
            result = [{"metric": {"__name__": "up", "job": "metasheet-api"}, "value": [at, "1"]}]
        else:
            value = value_of(query)
            result = [] if value is None else [{"metric": {}, "value": [at, value]}]
        answer = {"status": "success", "data": {"resultType": "vector", "result": result}}
        return 200, "application/json", json.dumps(answer).encode()

    return respond


def page(requests_ok: int, requests_5xx: str, rss: str, cpu: str) -> str:
    return (
        "# TYPE http_requests_total counter\n"
        f'http_requests_total{{method="GET",status="200"}} {requests_ok}\n'
        f'http_requests_total{{method="GET",status="503"}} {requests_5xx}\n'
        "# TYPE process_resident_memory_bytes gauge\n"
        f"process_resident_memory_bytes {rss}\n"
        "# TYPE process_cpu_seconds_total counter\n"
        f"process_cpu_seconds_total {cpu}\n"
    )


def page_sequence(pages: list[str]) -> Responder:
    """A metrics page: the first request gets pages[0], the next pages[1], ..., then the last."""
    served = [0]

    def respond(method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        text = pages[min(served[0], len(pages) - 1)]
        served[0] += 1
        return 200, "text/plain; version=0.0.4", text.encode()

    return respond


def spec(metrics: str, *, hosts: str = "[127.0.0.1]", phases: str | None = None, target: str | None = None) -> str:
    return (
        "version: 1\nname: fault\ntarget:\n"
        f"  {target or 'embedded: {seed: 2}'}\n  allow_hosts: {hosts}\n  auth: {{bearer: '${{JWT}}'}}\n"
        f"metrics: {metrics}\n"
        "phases:\n" + (phases or "  - {name: main, rate: 10, concurrency: 2, samples: 2, interval: 1s}\n")
    )


def _stored_na(run_dir: Path) -> list[dict[str, Any]]:
    with RunReader(run_dir) as reader:
        return reader.samples(phase="main")


def _report_works(run_dir: Path) -> str:
    """`report` and `summary --partial` end with an exit code, never a traceback."""
    report = CliRunner().invoke(cli, ["report", str(run_dir)])
    assert report.exception is None or isinstance(report.exception, SystemExit), report.output
    summary = CliRunner().invoke(cli, ["summary", str(run_dir), "--partial"])
    assert summary.exception is None or isinstance(summary.exception, SystemExit), summary.output
    assert report.exit_code == EXIT_NO_GO, report.output  # memory and CPU NA: insufficient data
    return report.stdout


HOSTILE = [("+Inf", "inf"), ("1e400", "inf"), ("-5", "-5.0")]


@pytest.mark.parametrize(("raw", "shown"), HOSTILE)
def test_prometheus_answering_impossible_values(tmp_path: Path, raw: str, shown: str) -> None:
    with StubServer(prometheus_stand_in(raw)) as prometheus:
        text = spec(f"{{source: prometheus, url: '{prometheus.url()}'}}")
        outcome = run_spec(parse_spec_text(text, "f.yaml", {"JWT": TOKEN}), results_dir=tmp_path)
    # Before: -5 read as an error rate of 200 % and tripped the breaker; +Inf crashed the report.
    assert outcome.status == "completed", outcome.exit_reason
    with RunReader(outcome.run_dir) as reader:
        assert reader.events(kind="breaker_trip") == []
    for row in _stored_na(outcome.run_dir):
        for column in ("server_5xx", "error_rate", "error_rate_5xx", "rss_mb", "cpu_percent"):
            assert row[column] is None, (column, row[column])
            assert f"raw value {shown}" in row["na_reasons"][column], (column, row["na_reasons"][column])
        assert row["http_success_rate"] == pytest.approx(0.95)
    csv = (outcome.run_dir / "metrics.csv").read_text()
    assert "inf" not in csv.lower() and "-5" not in csv
    assert "memory: insufficient data" in _report_works(outcome.run_dir)


@pytest.mark.parametrize(("raw", "shown"), HOSTILE)
def test_metrics_page_reading_impossible_values(tmp_path: Path, raw: str, shown: str) -> None:
    pages = [page(100, "10", "104857600", "10.0"), page(150, raw, raw, raw)]
    with StubServer(page_sequence(pages)) as metrics_page:
        text = spec(f"{{source: scrape, scrape_url: '{metrics_page.url(path='/metrics/prom')}'}}")
        outcome = run_spec(parse_spec_text(text, "f.yaml", {"JWT": TOKEN}), results_dir=tmp_path)
    assert outcome.status == "completed", outcome.exit_reason
    first = _stored_na(outcome.run_dir)[0]  # the window whose end reads the hostile page
    for column in ("server_5xx", "error_rate", "rss_mb", "cpu_percent"):
        assert first[column] is None, (column, first[column])
        assert f"raw value {shown}" in first["na_reasons"][column], (column, first["na_reasons"][column])
    assert first["server_ok"] == 50.0
    _report_works(outcome.run_dir)


class StopPrometheusAfterFirstSample:
    """A progress sink (called from the run's own loop every second) that stops Prometheus
    once the run has stored its first sample row: Prometheus dies mid-baseline."""

    def __init__(self, prometheus: LocalPrometheus) -> None:
        self.prometheus = prometheus
        self.stopped_after: int | None = None

    def update(self, status: dict[str, Any]) -> None:
        if self.stopped_after is not None or not status.get("run_dir"):
            return
        csv = Path(status["run_dir"]) / "metrics.csv"
        rows = len(csv.read_text().splitlines()) - 1 if csv.exists() else 0
        if rows >= 1:
            self.prometheus.stop()
            self.stopped_after = rows


@pytest.mark.prometheus
def test_real_prometheus_stopped_mid_baseline_is_insufficient_data_and_no_go(tmp_path: Path) -> None:
    with start_target(EmbeddedSpec(seed=9)) as target:
        host_port = target.base_url.removeprefix("http://")
        with LocalPrometheus([host_port], workdir=tmp_path / "prom", interval_s=0.5) as prometheus:
            prometheus.wait_for_series('up{job="metasheet-api"} == 1', timeout_s=60)
            prometheus.wait_for_series("process_resident_memory_bytes", timeout_s=60)
            text = spec(f"{{source: prometheus, url: '{prometheus.base_url}', selector: '{{job=\"metasheet-api\"}}'}}",
                        target=f"base_url: {target.base_url}",
                        phases="  - {name: main, rate: 10, concurrency: 2, samples: 10, interval: 1s}\n")
            sink = StopPrometheusAfterFirstSample(prometheus)
            outcome = run_spec(parse_spec_text(text, "f.yaml", {"JWT": TOKEN}), results_dir=tmp_path / "r",
                               progress=sink)
    assert outcome.status == "completed", outcome.exit_reason
    assert sink.stopped_after is not None, "Prometheus was never stopped"
    rows = _stored_na(outcome.run_dir)
    valid = [row["sample_num"] for row in rows if row["rss_mb"] is not None]
    lost = [row for row in rows if row["rss_mb"] is None]
    assert valid and lost, (valid, [r["na_reasons"].get("rss_mb") for r in lost])
    assert all("Prometheus unreachable" in row["na_reasons"]["rss_mb"] for row in lost)
    evaluation = evaluate_run(outcome.run_dir)
    memory = evaluation.phases[0].evaluation.category("memory")  # type: ignore[union-attr]
    if len(valid) < 8:  # below 80 % of 10 (Prometheus stopped well before the end)
        # Before: the few valid windows passed for the whole phase and the run was GO.
        assert evaluation.decision == "NO-GO"
        assert memory.verdict == "NA"
        assert memory.reason.startswith(f"insufficient data (server: only {len(valid)} of 10 samples valid")
        assert "Prometheus unreachable" in memory.reason
    else:  # every lost sample is explained: enough evidence by the spec's rule
        assert memory.verdict == "PASS"


def test_metrics_page_on_a_host_outside_allow_hosts_is_refused_and_never_contacted(tmp_path: Path) -> None:
    with StubServer(page_sequence([page(1, "0", "1", "1")])) as metrics_page:
        text = spec(f"{{source: scrape, scrape_url: '{metrics_page.url('localhost', '/metrics/prom')}'}}")
        with pytest.raises(SpecError, match=r"metrics: host 'localhost' of metrics.scrape_url is not in "
                                            r"target.allow_hosts \(allowed: 127.0.0.1\)"):
            parse_spec_text(text, "f.yaml", {"JWT": TOKEN})
        assert metrics_page.seen == []


def test_the_runner_refuses_a_host_outside_allow_hosts_before_any_request(tmp_path: Path) -> None:
    with start_target(EmbeddedSpec(seed=3), bearer=TOKEN) as target, \
            StubServer(page_sequence([page(1, "0", "1", "1")])) as metrics_page:
        text = spec(f"{{source: scrape, scrape_url: '{metrics_page.url(path='/metrics/prom')}'}}",
                    target=f"base_url: {target.base_url}")
        loaded = parse_spec_text(text, "f.yaml", {"JWT": TOKEN})
        elsewhere = loaded.spec.metrics.model_copy(update={"scrape_url": metrics_page.url("localhost", "/m")})
        changed = type(loaded)(**{**vars(loaded), "spec": loaded.spec.model_copy(update={"metrics": elsewhere})})
        with pytest.raises(HostNotAllowed, match="refusing to run: host 'localhost' of metrics.scrape_url"):
            run_spec(changed, results_dir=tmp_path)
        assert metrics_page.seen == [] and target.request_count() == 0
    assert list(tmp_path.iterdir()) == []  # not even a run folder


def test_the_load_jwt_never_reaches_a_metrics_page_on_another_allowed_host(tmp_path: Path) -> None:
    pages = [page(100, "0", "104857600", "10.0"), page(150, "0", "104857600", "10.5")]
    with start_target(EmbeddedSpec(seed=3), bearer=TOKEN) as target, StubServer(page_sequence(pages)) as metrics_page:
        text = spec(f"{{source: scrape, scrape_url: '{metrics_page.url('localhost', '/metrics/prom')}'}}",
                    hosts="[127.0.0.1, localhost]", target=f"base_url: {target.base_url}")
        outcome = run_spec(parse_spec_text(text, "f.yaml", {"JWT": TOKEN}), results_dir=tmp_path)
    assert outcome.status == "completed", outcome.exit_reason
    assert len(metrics_page.seen) == 3  # the baseline scrape and one per window
    assert all("authorization" not in headers for _, headers in metrics_page.seen)
    with RunReader(outcome.run_dir) as reader:
        counts = {outcome: n for outcome, n in reader.outcome_counts().items() if n}
    assert counts == {"ok": 20}  # the target did get the token (else 401)


def test_verify_reads_the_metrics_page_without_the_load_jwt(tmp_path: Path) -> None:
    pages = [page(100, "0", "104857600", "10.0")]
    with start_target(EmbeddedSpec(seed=3), bearer=TOKEN) as target, StubServer(page_sequence(pages)) as metrics_page:
        text = spec(f"{{source: scrape, scrape_url: '{metrics_page.url(path='/metrics/prom')}'}}",
                    target=f"base_url: {target.base_url}")
        env = {"JWT": TOKEN}
        report = verify_spec(parse_spec_text(text, "f.yaml", env), env=env, results_dir=tmp_path / "results")
    assert report.get("health").status == "OK"  # /health got the token
    assert report.get("allow_hosts").status == "OK"
    assert report.get("metrics:scrape").status == "OK", report.get("metrics:scrape").reason
    assert metrics_page.seen and all("authorization" not in headers for _, headers in metrics_page.seen)
