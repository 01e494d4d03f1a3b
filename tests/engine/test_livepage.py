"""The live page's server on real loopback sockets: what it serves, what it refuses, that
it binds 127.0.0.1 only, redacts secrets, keeps a bounded history and stops when closed."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from phase5site.engine.livepage import LivePage, bind_live_socket
from phase5site.errors import UsageError

from .helpers import fake_token


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _status(sent: int, *, status: str = "running", phase: str = "main", **extra: object) -> dict:
    return {"run_id": "r1", "status": status, "phase": phase, "phase_index": 1, "phases": [phase],
            "elapsed_s": sent / 20, "planned_s": 30.0, "target_rate": 20.0, "achieved_rate": 19.5,
            "sent": sent, "completed": sent, "planned_requests": 600, "in_flight": 1, "dropped": 0,
            "errors": {}, "client_p95_ms": 3.5, "send_lag_p99_ms": 0.4, **extra}


async def _get(port: int, path: str, *, method: str = "GET", host: str | None = None) -> tuple[int, dict, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), headers, body


def test_only_127_0_0_1_is_bound_and_a_port_in_use_is_a_clear_error() -> None:
    for host in ("0.0.0.0", "::", "192.168.1.10", "localhost"):
        with pytest.raises(UsageError, match="127.0.0.1 only"):
            bind_live_socket(0, host)
    with pytest.raises(UsageError, match="0 \\(any free one\\) to 65535"):
        bind_live_socket(70000)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(UsageError, match="in use"):
            bind_live_socket(taken.getsockname()[1])
    finally:
        taken.close()
    sock = bind_live_socket(0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1" and sock.getsockname()[1] > 0
    finally:
        sock.close()


def test_serves_the_page_and_the_state_as_it_updates() -> None:
    async def scenario() -> None:
        clock = Clock()
        page = LivePage(bind_live_socket(0), clock=clock)
        assert page.url == f"http://127.0.0.1:{page.port}/"
        async with page:
            code, headers, body = await _get(page.port, "/")
            assert code == 200 and headers["Content-Type"].startswith("text/html")
            assert b"state.json" in body and b"<script>" in body
            assert b"src=" not in body and b"http://" not in body.replace(b"http://www.w3.org/2000/svg", b"")
            assert "connect-src 'self'" in headers["Content-Security-Policy"]
            assert "default-src 'none'" in headers["Content-Security-Policy"]
            code, _, body = await _get(page.port, "/state.json")
            assert code == 200 and json.loads(body)["status"] == {"status": "starting"}
            for second, sent in enumerate((20, 40, 60), start=1):
                clock.now = 1000.0 + second
                page.update(_status(sent, errors={"http_5xx": sent // 20 - 1}))
            code, _, body = await _get(page.port, "/state.json?x=1")
            state = json.loads(body)
            assert state["status"]["sent"] == 60 and state["poll_s"] == 2.0
            assert [p["t"] for p in state["history"]] == [1.0, 2.0, 3.0]
            assert [p["sent"] for p in state["history"]] == [20, 40, 60]
            assert [p["failed_per_s"] for p in state["history"]] == [0.0, 1.0, 1.0]
            assert (await _get(page.port, "/run.duckdb"))[0] == 404
            assert (await _get(page.port, "/state.json", method="POST"))[0] == 405
            assert (await _get(page.port, "/favicon.ico"))[0] == 204
            # A page on another origin reaching 127.0.0.1 through a rebound DNS name is refused.
            assert (await _get(page.port, "/state.json", host=f"evil.example:{page.port}"))[0] == 421
            assert (await _get(page.port, "/", host=f"localhost:{page.port}"))[0] == 200
        with pytest.raises(OSError):  # closed with the run: nothing listens any more
            await asyncio.open_connection("127.0.0.1", page.port)

    asyncio.run(scenario())


def test_history_is_a_bounded_ring_and_a_new_phase_restarts_the_failure_count() -> None:
    clock = Clock()
    page = LivePage(bind_live_socket(0), clock=clock, history_points=5)
    try:
        page.update({"status": "running"})  # before the first phase: no point
        assert not page.history
        for second in range(1, 9):
            clock.now = 1000.0 + second
            page.update(_status(20 * second, dropped=second))
        assert [p["t"] for p in page.history] == [4.0, 5.0, 6.0, 7.0, 8.0]
        clock.now = 1009.0
        page.update(_status(20, phase="next", dropped=3))
        assert page.history[-1]["phase"] == "next" and page.history[-1]["failed_per_s"] == 3.0
    finally:
        page.release()


def test_a_secret_in_the_state_is_never_served() -> None:
    async def scenario() -> None:
        token = fake_token()
        page = LivePage(bind_live_socket(0), secrets=frozenset({token}))
        async with page:
            page.update(_status(20, exit_reason=f"401 with Bearer {token}"))
            _, _, body = await _get(page.port, "/state.json")
            _, _, html = await _get(page.port, "/")
        assert token.encode() not in body and token.encode() not in html
        assert json.loads(body)["status"]["exit_reason"] == "401 with Bearer ***"

    asyncio.run(scenario())


def test_close_after_the_last_status_waits_for_a_polling_page_to_fetch_it() -> None:
    async def scenario() -> None:
        page = LivePage(bind_live_socket(0))
        await page.start()
        await _get(page.port, "/state.json")  # a page is polling
        page.update(_status(600, status="completed"))
        closing = asyncio.create_task(page.close())
        await asyncio.sleep(0)
        assert not closing.done()  # still serving: the page has not seen how the run ended
        _, _, body = await _get(page.port, "/state.json")
        assert json.loads(body)["status"]["status"] == "completed"
        await closing

    asyncio.run(scenario())


def test_close_without_a_polling_page_does_not_wait() -> None:
    async def scenario() -> None:
        page = LivePage(bind_live_socket(0))
        await page.start()
        page.update(_status(600, status="completed"))
        closing = asyncio.create_task(page.close())
        for _ in range(20):  # a few loop turns, no sleep: close must not be waiting on a timer
            await asyncio.sleep(0)
        assert closing.done()

    asyncio.run(scenario())


def test_the_live_page_cannot_read_the_store() -> None:
    """DuckDB stays single-writer: the page's modules import neither the store nor duckdb."""
    import ast
    import inspect

    from phase5site.engine import livepage, livepage_html

    for module in (livepage, livepage_html):
        tree = ast.parse(inspect.getsource(module))
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {n for n in names if n.startswith(("phase5site.store", "duckdb"))}, names


SIGNAL_SPEC = """
version: 1
name: livesig
target:
  embedded: {seed: 5}
  auth: {bearer: "${LIVE_SIG_JWT}"}
phases:
  - {name: main, rate: 20, concurrency: 4, duration: 60, observe: false}
"""


def test_ctrl_c_stops_the_run_and_its_live_page(tmp_path: Path) -> None:
    spec = tmp_path / "livesig.yaml"
    spec.write_text(SIGNAL_SPEC)
    process = subprocess.Popen(
        [sys.executable, "-m", "phase5site", "run", str(spec), "--live", "0", "--no-site",
         "--skip-verify", "--results-dir", str(tmp_path / "results")],
        env={**os.environ, "LIVE_SIG_JWT": fake_token()}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, cwd=tmp_path, text=True)
    try:
        assert process.stdout is not None
        url = None
        for line in process.stdout:
            found = re.search(r"live page: (http://127\.0\.0\.1:\d+/)", line)
            if found:
                url = found.group(1)
                break
        assert url is not None
        end = time.monotonic() + 120  # a bound for a busy machine, not a timing assertion
        sent = 0
        while sent < 10 and time.monotonic() < end:
            try:
                with urllib.request.urlopen(url + "state.json", timeout=30) as response:
                    sent = json.loads(response.read()).get("status", {}).get("sent") or 0
            except OSError:
                pass
            time.sleep(0.5)
        assert sent >= 10, "the live page never showed 10 sends"
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, rest
    assert "interrupted" in rest
    with pytest.raises(OSError):  # the server stopped with the run
        urllib.request.urlopen(url + "state.json", timeout=5)


def test_run_with_a_live_port_in_use_is_refused_before_any_request(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from phase5site.cli import cli

    spec = tmp_path / "livesig.yaml"
    spec.write_text(SIGNAL_SPEC)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["run", str(spec), "--live", str(port), "--results-dir",
                                          str(tmp_path / "results")], env={"LIVE_SIG_JWT": fake_token()})
    finally:
        taken.close()
    assert result.exit_code != 0 and f"--live {port}" in result.output and "in use" in result.output
    assert not (tmp_path / "results").exists()  # no run folder, no pre-flight, no load
