"""Run Debian's ``/usr/bin/prometheus`` on a free loopback port, scraping given targets.

Used by the integration tests (real Prometheus, never a mock) and handy for a local demo.
``PageServer`` serves one metrics page (that a caller may change) for it to scrape.
The process is started with a generated config and its own TSDB directory and is stopped
by its pid only.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from phase5site.errors import MetricsError

PROMETHEUS_BINARY = "/usr/bin/prometheus"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def scrape_config(targets: list[str], *, job: str, metrics_path: str, interval_s: float) -> str:
    """A minimal prometheus.yml scraping ``targets`` (``host:port``) every ``interval_s``."""
    interval = f"{round(interval_s * 1000)}ms"
    listed = ", ".join(f"'{target}'" for target in targets)
    return (
        "global:\n"
        f"  scrape_interval: {interval}\n"
        f"  scrape_timeout: {interval}\n"
        "scrape_configs:\n"
        f"  - job_name: '{job}'\n"
        f"    metrics_path: '{metrics_path}'\n"
        f"    static_configs:\n"
        f"      - targets: [{listed}]\n"
    )


class LocalPrometheus:
    """``with LocalPrometheus([...], workdir=tmp) as prom: prom.base_url``."""

    def __init__(
        self,
        targets: list[str],
        *,
        workdir: Path,
        job: str = "metasheet-api",
        metrics_path: str = "/metrics/prom",
        interval_s: float = 1.0,
        binary: str = PROMETHEUS_BINARY,
    ) -> None:
        self.targets = targets
        self.workdir = workdir
        self.job = job
        self.metrics_path = metrics_path
        self.interval_s = interval_s
        self.binary = binary
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout_s: float = 60.0) -> LocalPrometheus:
        if not os.access(self.binary, os.X_OK):
            raise MetricsError(f"Prometheus binary {self.binary} is missing or not executable",
                               hint="apt-get install prometheus")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(scrape_config(self.targets, job=self.job, metrics_path=self.metrics_path,
                                        interval_s=self.interval_s))
        log = (self.workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready(ready_timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise MetricsError(f"Prometheus exited with {self.process.returncode}; "
                                   f"see {self.workdir / 'prometheus.log'}")
            try:
                if httpx.get(f"{self.base_url}/-/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise MetricsError(f"Prometheus did not become ready within {timeout_s:g}s")

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        """Synchronous instant query (for test set-up); raises MetricsError on failure."""
        data = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        response = httpx.post(f"{self.base_url}/api/v1/query", data=data, timeout=5.0)
        body = response.json()
        if body.get("status") != "success":
            raise MetricsError(f"query {expr!r} failed: {body.get('error')}")
        return list(body["data"]["result"])

    def wait_for_series(self, expr: str, *, count: int = 1, timeout_s: float = 60.0) -> list[dict]:
        """Poll until ``expr`` returns at least ``count`` series (bounded wait)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = self.query(expr)
            if len(result) >= count:
                return result
            time.sleep(0.25)
        raise MetricsError(f"{expr!r} had fewer than {count} series after {timeout_s:g}s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> LocalPrometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()



class PageServer:
    """A loopback HTTP server serving ``text`` at ``path``:
    ``with PageServer(text) as page: page.url; page.text = new_text``."""

    def __init__(self, text: str, path: str = "/metrics/prom") -> None:
        self.text = text
        self.path = path
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                owner.requests += 1
                body = owner.text.encode()
                status = 200 if self.path == owner.path else 404
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self.target = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
