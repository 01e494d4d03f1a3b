"""A real Prometheus (/usr/bin/prometheus) on a free loopback port, for the live verify tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx

PROMETHEUS_BIN = "/usr/bin/prometheus"


def free_port() -> int:
    """A port nothing listens on (bound, read, closed): also serves as a 'Prometheus down' URL."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(predicate, what: str, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until true; a bounded wait, not a timing assertion."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what} after {timeout_s:g} s")


@contextmanager
def running_prometheus(workdir: Path, *, scrape_url: str, job: str = "metasheet-api") -> Iterator[str]:
    """Start Prometheus scraping ``scrape_url`` every second; yield its base URL; stop it."""
    binary = shutil.which(PROMETHEUS_BIN)
    assert binary is not None, f"{PROMETHEUS_BIN} is missing: install Debian's prometheus package"
    parts = urlsplit(scrape_url)
    config = workdir / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: {job}\n"
        f"    metrics_path: {parts.path}\n"
        f"    static_configs: [{{targets: ['{parts.netloc}']}}]\n"
    )
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _ready(url), "Prometheus to be ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for_names(url: str, names: set[str], timeout_s: float = 30.0) -> None:
    """Wait until Prometheus holds series for every name in ``names``."""

    def has_all() -> bool:
        try:
            answer = httpx.get(f"{url}/api/v1/label/__name__/values", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return False
        return names <= set(answer.get("data") or [])

    _wait(has_all, f"series {sorted(names)} in Prometheus", timeout_s)


def wait_for_scrapes(url: str, count: int, timeout_s: float = 30.0) -> None:
    """Wait until Prometheus holds ``count`` scrapes of some target (raw ``up`` samples)."""

    def scraped() -> bool:
        try:
            answer = httpx.get(f"{url}/api/v1/query", params={"query": "count_over_time(up[5m])"}, timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return False
        return any(float(row["value"][1]) >= count for row in answer.get("data", {}).get("result", []))

    _wait(scraped, f"{count} scrapes in Prometheus", timeout_s)
