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
        assert client.get("/health").status_code == 401
        statuses = [client.get(path, headers=auth).status_code
                    for path in ["/health", "/api/v2/hello", "/api/plugins", "/api/sheets/2"] * 10]
        assert client.post("/api/sheets/2/rows", headers=auth, json=[1]).status_code == 201
        assert client.get("/unknown", headers=auth).status_code == 404
    assert set(statuses) == {200}
    sent = 1 + 40 + 1 + 1
    after = scrape(target)
    assert total(after, "http_requests_total") - total(before, "http_requests_total") == sent
    assert target.request_count() == sent


def test_secrets_are_not_on_the_command_line_or_in_the_environment(target: EmbeddedTarget, token: str) -> None:
    with open(f"/proc/{target.pid}/cmdline", "rb") as cmdline:
        assert token.encode() not in cmdline.read()
    with open(f"/proc/{target.pid}/environ", "rb") as environ:
        assert token.encode() not in environ.read()


def test_error_burst_switched_at_run_time(target: EmbeddedTarget, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    target.set_faults([FaultSpec(kind="error_burst", at=0, duration=30, share=0.5)])
    with httpx.Client(base_url=target.base_url, headers=auth, timeout=5) as client:
        during = [client.get("/health").status_code for _ in range(300)]
        target.set_faults([])
        after = [client.get("/health").status_code for _ in range(50)]
    share_503 = during.count(503) / len(during)
    assert set(during) == {200, 503}
    assert 0.35 < share_503 < 0.65  # sd of 300 Bernoulli(0.5) draws is 0.029
    assert set(after) == {200}
    assert total(scrape(target), "http_requests_total", status="503") == during.count(503)


def test_fault_in_the_spec_counts_from_target_start(token: str) -> None:
    embedded = EmbeddedSpec(faults=[FaultSpec(kind="error_burst", at=0, duration=60, share=1.0)])
    with start_target(embedded, bearer=token) as target:
        response = httpx.get(target.base_url + "/health", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 503
        [fault] = target.state()["faults"]
        assert fault["active"] is True


def test_latency_stall_adds_the_delay_to_every_request(target: EmbeddedTarget, token: str) -> None:
    target.set_faults([FaultSpec(kind="latency_stall", at=0, duration=30, delay_ms=300)])
    with httpx.Client(base_url=target.base_url, timeout=5) as client:
        responses = [client.get("/health", headers={"Authorization": f"Bearer {token}"}) for _ in range(3)]
    target.set_faults([])
    assert all(r.elapsed.total_seconds() >= 0.3 for r in responses)
    parsed = scrape(target)
    # None of the three stalled requests can be in a bucket at or under 250 ms.
    fast = total(parsed, "http_server_requests_seconds", "_bucket", route="/health", status="200", le="0.25")
    assert total(parsed, "http_server_requests_seconds", "_count", route="/health", status="200") - fast == 3


def test_outage_refuses_connections_then_recovers_on_the_same_port(target: EmbeddedTarget, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    url = target.base_url + "/health"
    assert httpx.get(url, headers=auth).status_code == 200
    # The admin page is down during an outage too, so it must end by itself: 2 s leaves
    # room to observe the refusal on a busy machine.
    target.set_faults([FaultSpec(kind="outage", at=0, duration=2.0)])

    def refused() -> bool:
        try:
            httpx.get(url, headers=auth, timeout=2)
        except httpx.ConnectError:
            return True
        return False

    wait_for(refused, "connections to be refused")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((target.host, target.port), timeout=2).close()

    def answers() -> bool:
        try:
            return httpx.get(url, headers=auth, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(answers, "the target to come back after the outage")
    assert target.request_count() >= 2  # counters live on through the outage


def test_memory_growth_really_raises_rss(target: EmbeddedTarget) -> None:
    before = rss_bytes(target.pid)
    # Long enough never to end by itself mid-test; cleared below (growth stops within ~1 s).
    target.set_faults([FaultSpec(kind="memory_growth", at=0, duration=60, mb_per_s=80)])
    wait_for(lambda: rss_bytes(target.pid) > before + 60 * 2**20, "RSS to grow by 60 MiB")
    exported = total(scrape(target), "process_resident_memory_bytes")
    target.set_faults([])
    assert exported > before + 60 * 2**20
    wait_for(lambda: target.state()["memory_ballast_mb"] == 0, "the ballast to be released")


def test_stop_leaves_no_process_and_is_idempotent(token: str) -> None:
    target = start_target(EmbeddedSpec(), bearer=token)
    pid = target.pid
    assert target.running
    target.stop()
    target.stop()
    assert not target.running
    assert process_gone(pid)
    with pytest.raises(TargetError, match="did not answer"):
        target.request_count()


def test_target_stops_when_its_parent_dies(tmp_path) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from phase5site.runspec.models import EmbeddedSpec
        from phase5site.simulator import start_target
        target = start_target(EmbeddedSpec())
        print(target.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert not process_gone(child_pid)
    finally:
        parent.kill()
        parent.wait()
    wait_for(lambda: process_gone(child_pid), "the orphaned target to exit")


def test_startup_failure_raises_with_the_childs_stderr() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(TargetError) as caught:
            start_target(EmbeddedSpec(), port=port)
    message = str(caught.value)
    assert "did not start" in message
    assert f"cannot listen on 127.0.0.1:{port}" in message


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com"])
def test_non_loopback_hosts_are_refused(host: str) -> None:
    with pytest.raises(TargetError, match="loopback only"):
        start_target(EmbeddedSpec(), host=host)


def test_unknown_disabled_family_fails_before_spawning() -> None:
    with pytest.raises(TargetError, match="cache_hit_total"):
        start_target(EmbeddedSpec(disable_families=["cache_hit_total"]))


def test_ipv6_loopback(token: str) -> None:
    if not socket.has_ipv6:
        pytest.fail("this machine has no IPv6; the ::1 path cannot be checked")
    with start_target(EmbeddedSpec(), host="::1") as target:
        assert target.base_url.startswith("http://[::1]:")
        assert httpx.get(target.base_url + "/health").status_code == 200


def test_background_operations_run_on_their_own(token: str) -> None:
    with start_target(EmbeddedSpec(latency_scale=0.1), plugin_reload_interval_s=0.05,
                      snapshot_interval_s=0.05) as target:
        wait_for(lambda: total(scrape(target), "metasheet_plugin_reload_total") >= 4, "plugin reloads")
        wait_for(lambda: total(scrape(target), "metasheet_snapshot_restore_total") >= 1, "a snapshot restore")
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


def test_count_cache_miss_as_fallback_flag_switches_effective_fallback(
    target: EmbeddedTarget, token: str
) -> None:
    auth = {"Authorization": f"Bearer {token}"}

    def misses_and_effective() -> tuple[float, float]:
        page = scrape(target)
        return (total(page, "metasheet_fallback_total", reason="cache_miss"),
                total(page, "metasheet_fallback_effective_total", reason="cache_miss"))

    with httpx.Client(base_url=target.base_url, headers=auth, timeout=5) as client:
        for sheet in range(40):  # distinct sheets: the first read of each misses the cache
            client.get(f"/api/sheets/{sheet}")
        misses_off, effective_off = misses_and_effective()
        target.set_flags(count_cache_miss_as_fallback=True)
        for sheet in range(100, 140):
            client.get(f"/api/sheets/{sheet}")
        misses_on, effective_on = misses_and_effective()
    assert misses_off > 0 and effective_off == 0
    assert misses_on > misses_off
    assert effective_on == misses_on - misses_off
    assert target.state()["flags"] == {"COUNT_CACHE_MISS_AS_FALLBACK": True}
