"""The target in its own process, on real loopback sockets: start, serve, faults, stop."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from phase5site.errors import TargetError
from phase5site.runspec.models import EmbeddedSpec, FaultSpec
from phase5site.simulator import EmbeddedTarget, start_target

from .helpers import fake_token, families, total

DEADLINE_S = 10.0


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    """Poll until ``condition()`` holds; fail naming ``what`` after the deadline."""
    give_up = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > give_up:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return any(line.startswith("State:") and "Z" in line for line in status)
    except FileNotFoundError:
        return True


@pytest.fixture
def token() -> str:
    return fake_token()


@pytest.fixture
def target(token: str) -> Iterator[EmbeddedTarget]:
    with start_target(EmbeddedSpec(seed=9), bearer=token) as started:
        yield started


def scrape(target: EmbeddedTarget) -> dict:
    return families(httpx.get(target.metrics_url, timeout=5).text)


def test_serves_routes_with_bearer_and_counts_what_it_served(target: EmbeddedTarget, token: str) -> None:
    assert target.metrics_url == target.base_url + "/metrics/prom"
    auth = {"Authorization": f"Bearer {token}"}
    before = scrape(target)
    with httpx.Client(base_url=target.base_url, timeout=5) as client:
        assert client.get("/api/attendance/records").status_code == 401  # the gate: not timed
        statuses = [client.get(path, headers=auth).status_code
                    for path in ["/health", "/api/v2/hello", "/api/plugins", "/api/attendance/records"] * 10]
        assert client.post("/api/cache-test/warm?count=1").status_code == 200  # not timed
        assert client.get("/unknown", headers=auth).status_code == 404  # not timed
    assert set(statuses) == {200}
    after = scrape(target)
    assert total(after, "http_requests_total") - total(before, "http_requests_total") == 40
    assert total(after, "jwt_auth_fail_total") - total(before, "jwt_auth_fail_total") == 1
    assert target.request_count() == 1 + 40 + 1 + 1


def test_ipv6_loopback(token: str) -> None:
    if not socket.has_ipv6:
        pytest.fail("this machine has no IPv6; the ::1 path cannot be checked")
    with start_target(EmbeddedSpec(), host="::1") as target:
        assert target.base_url.startswith("http://[::1]:")
        assert httpx.get(target.base_url + "/health").status_code == 200


def test_metrics_token_guards_the_page_over_real_sockets(token: str) -> None:
    metrics_token = fake_token()
    with start_target(EmbeddedSpec(), bearer=token, metrics_token=metrics_token) as target:
        assert httpx.get(target.metrics_url, timeout=5).status_code == 401
        api = httpx.get(target.metrics_url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert api.status_code == 401 and api.headers["www-authenticate"] == 'Bearer realm="metrics"'
        page = httpx.get(target.metrics_url, headers={"X-Metrics-Token": metrics_token}, timeout=5)
        assert page.status_code == 200 and "# TYPE http_requests_total counter" in page.text
    assert os.path.exists("/proc") and process_gone(target.pid)


def test_serve_target_runs_in_a_thread_and_stops_on_its_event() -> None:
    import asyncio
    import threading

    from phase5site.simulator import TargetConfig
    from phase5site.simulator.server import serve_target

    ready: list[int] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def serve() -> None:
        loop.run_until_complete(serve_target(TargetConfig(), on_ready=lambda _h, port: ready.append(port),
                                             stop=stop))

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        wait_for(lambda: bool(ready), "the in-thread target to listen")
        assert httpx.get(f"http://127.0.0.1:{ready[0]}/health").status_code == 200
    finally:
        wait_for(lambda: loop.is_running(), "the loop to run")
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
    assert not thread.is_alive()
    loop.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{ready[0]}/health")


def test_count_cache_miss_as_fallback_flag_leaves_the_routes_raw_only_misses_alone(
    target: EmbeddedTarget, token: str
) -> None:
    auth = {"Authorization": f"Bearer {token}"}

    def misses_and_effective() -> tuple[float, float]:
        page = scrape(target)
        return (total(page, "metasheet_fallback_total", reason="cache_miss"),
                total(page, "metasheet_fallback_effective_total", reason="cache_miss"))

    miss = {"mode": "cache_miss"}
    with httpx.Client(base_url=target.base_url, headers=auth, timeout=5) as client:
        for _ in range(5):
            assert client.post("/internal/test/fallback", json=miss).status_code == 200
        misses_off, effective_off = misses_and_effective()
        target.set_flags(count_cache_miss_as_fallback=True)
        for _ in range(7):
            client.post("/internal/test/fallback", json=miss)
        misses_on, effective_on = misses_and_effective()
    # The service's fallback route records a cache miss with effective=false, so even with
    # the flag it never counts as effective (recordFallback: effective AND the flag rule).
    assert (misses_off, misses_on) == (5, 12)
    assert effective_off == effective_on == 0
    assert target.state()["flags"] == {"COUNT_CACHE_MISS_AS_FALLBACK": True}
