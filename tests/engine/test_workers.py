"""Load worker processes: the split schedule, a worker that dies, a stop that reaches them,
and the counts that must agree after it. Real processes, real sockets on 127.0.0.1.

No assertion depends on how fast this machine is: stop latency is checked as "recorded and
far below the phase's planned length", never against a millisecond budget (bench/ prints
the figures).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

from phase5site.engine import run_spec
from phase5site.engine.pool import auto_workers, share
from phase5site.runspec import parse_spec_text
from phase5site.store import RunReader

from .loopback import LoopbackServer


def _spec(base_url: str, *, workers: int, phases: str, breaker: str = "circuit_breaker: {enabled: false}",
          name: str = "workers") -> object:
    text = f"""
version: 1
name: {name}
target:
  base_url: {base_url}
  allow_hosts: [127.0.0.1]
  workers: {workers}
  timeout: 2s
  requests:
    - {{name: ok, path: /ok, weight: 3}}
    - {{name: missing, path: /missing, weight: 1}}
{breaker}
phases:
{phases}
"""
    return parse_spec_text(text, f"{name}.yaml", {})


def _rows(run_dir: Path) -> list[tuple]:
    with RunReader(run_dir) as reader:
        return reader.con.execute(
            "SELECT phase, seq, request_name, intended_at - (SELECT min(intended_at) FROM requests r2 "
            "WHERE r2.phase = requests.phase), worker FROM requests ORDER BY phase, seq").fetchall()


def test_three_workers_send_exactly_the_single_process_schedule(tmp_path: Path) -> None:
    phases = "  - {name: main, rate: 60, concurrency: 6, duration: 1.5s, observe: false}"
    with LoopbackServer() as server:
        one = run_spec(_spec(server.base_url, workers=1, phases=phases), results_dir=tmp_path / "one")
        three = run_spec(_spec(server.base_url, workers=3, phases=phases), results_dir=tmp_path / "three")
    assert one.status == three.status == "completed"
    single, split = _rows(one.run_dir), _rows(three.run_dir)
    assert len(single) == len(split) == 90
    # Same requests (seq, name) at the same offsets from the phase's first intended send.
    assert [(p, s, n) for p, s, n, _, _ in single] == [(p, s, n) for p, s, n, _, _ in split]
    assert all(abs(a[3] - b[3]) < 1e-6 for a, b in zip(single, split))
    assert {w for *_, w in single} == {0}
    assert all(worker == seq % 3 for _, seq, _, _, worker in split)
    with RunReader(three.run_dir) as reader:
        (phase,) = reader.phases()
    # Every intended request has its row; one still waiting at the phase end (a busy machine)
    # is dropped, not sent, and counted as such.
    assert phase["workers"] == 3
    assert phase["requests_sent"] + phase["dropped"] == 90


def _run_in_thread(loaded, results_dir: Path) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def go() -> None:
        result["outcome"] = run_spec(loaded, results_dir=results_dir)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread, result


def _wait_for(predicate, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def _status(results_dir: Path) -> dict:
    try:
        (path,) = results_dir.glob("*/status.json")
        return json.loads(path.read_text())
    except (ValueError, OSError):
        return {}


def test_a_worker_that_dies_fails_the_run_at_once_and_keeps_its_rows(tmp_path: Path) -> None:
    phases = "  - {name: main, rate: 40, concurrency: 4, duration: 300s, observe: false}"
    with LoopbackServer() as server:
        thread, result = _run_in_thread(_spec(server.base_url, workers=2, phases=phases), tmp_path)
        _wait_for(lambda: (_status(tmp_path).get("sent") or 0) >= 40)
        (load_log,) = tmp_path.glob("*/load.log")
        line = next(line for line in load_log.read_text().splitlines() if "load worker process(es) started" in line)
        victim = int(line.rsplit("pids ", 1)[1].split(",")[0].rstrip(")"))
        os.kill(victim, signal.SIGKILL)
        thread.join(120)
    assert not thread.is_alive()
    outcome = result["outcome"]
    assert outcome.status == "failed"
    assert f"load worker 0 (pid {victim}) died: exit code -9" in outcome.exit_reason
    with RunReader(outcome.run_dir) as reader:
        counts = reader.outcome_counts("main")
        workers = {w for (w,) in reader.con.execute("SELECT DISTINCT worker FROM requests").fetchall()}
        assert reader.run()["status"] == "failed"
    assert sum(counts.values()) >= 40 and workers == {0, 1}  # the dead worker's earlier rows stay


def test_a_breaker_stop_reaches_every_worker_and_every_count_agrees(tmp_path: Path) -> None:
    phases = "  - {name: main, rate: 100, concurrency: 8, duration: 600s, observe: false}"
    breaker = "circuit_breaker: {error_rate: 0.02, window: 2s, min_requests: 20}"
    text_requests = "    - {name: fail, path: /fail}"
    with LoopbackServer() as server:
        loaded = parse_spec_text(f"""
version: 1
name: stop
target:
  base_url: {server.base_url}
  allow_hosts: [127.0.0.1]
  workers: 2
  requests:
{text_requests}
{breaker}
phases:
{phases}
""", "stop.yaml", {})
        outcome = run_spec(loaded, results_dir=tmp_path)
        served = server.request_count
    assert outcome.status == "aborted" and "circuit breaker (client)" in outcome.exit_reason
    with RunReader(outcome.run_dir) as reader:
        (end,) = reader.events("phase_end")
        (phase,) = reader.phases()
        stored = Counter(reader.outcome_counts("main"))
    data = end["data"] if isinstance(end["data"], dict) else json.loads(end["data"])
    assert data["stop_latency_ms"] is not None and data["workers"] == 2
    # Stopped, not run to its planned 600 s: told by what was sent, not by a wall-clock bound.
    assert phase["status"] == "aborted" and phase["requests_sent"] < 100 * 600 // 2
    # Every request sent has its row; the phase's counts and the table agree exactly.
    sent_rows = sum(n for outcome_, n in stored.items() if outcome_ != "dropped")
    assert data["sent"] == phase["requests_sent"] == sent_rows + data["cancelled_in_flight"]
    assert sent_rows <= served


def test_auto_workers_and_shares() -> None:
    assert auto_workers(80, 20, cpu_count=2) == 1
    assert auto_workers(6_000, 200, cpu_count=4) == 3
    assert auto_workers(6_000, 2, cpu_count=8) == 2  # never more workers than slots
    assert [share(10, 4, i) for i in range(4)] == [3, 3, 2, 2]
    assert sum(share(10_001, 7, i) for i in range(7)) == 10_001


def test_a_paused_worker_makes_client_latency_invalid_not_no_go(tmp_path: Path) -> None:
    """The machine stalls the load generator (SIGSTOP for 0.4 s, as a busy host would) while
    its slots are free: the service is fine, so the verdict must be INVALID with a reason
    (exit 5), never a NO-GO caused by the tool."""
    from click.testing import CliRunner

    from phase5site.cli import cli

    # Thresholds no measurement can break, so that only the generator-health rule decides
    # (a slow machine must not turn this into a NO-GO of its own).
    loaded = parse_spec_text("""
version: 1
name: paused
target:
  embedded: {profile: metasheet, seed: 3}
  workers: 1
  requests:  # the service looks its cache up only on the cache-test routes, and records a
    # fallback only on the fallback test route (else the mandatory effective_fallback is
    # NOT-EXERCISED, a NO-GO that is not the generator-health rule this test is about)
    - {name: health, path: /health, weight: 2}
    - {name: cache-warm, method: POST, path: "/api/cache-test/warm?count=2", weight: 1}
    - {name: fallback, method: POST, path: /internal/test/fallback, weight: 1, json: {mode: cache_miss}}
metrics: {source: scrape}
slo: {success_rate_min: 0, error_rate_max: 1, latency_p95_ms: 600000, latency_p99_ms: 600000,
      effective_fallback_max: 1, rss_mean_mb_max: 1000000, cache_hit_rate_min: 0,
      plugin_reload_success_min: 0, snapshot_success_min: 0}
circuit_breaker: {enabled: false}
phases:
  - {name: main, rate: 50, concurrency: 10, samples: 2, interval: 3s}
""", "paused.yaml", {})
    thread, result = _run_in_thread(loaded, tmp_path)
    _wait_for(lambda: (_status(tmp_path).get("sent") or 0) >= 20)
    (load_log,) = tmp_path.glob("*/load.log")
    line = next(line for line in load_log.read_text().splitlines() if "load worker process(es) started" in line)
    worker = int(line.rsplit("pids ", 1)[1].rstrip(")"))
    os.kill(worker, signal.SIGSTOP)
    time.sleep(0.4)
    os.kill(worker, signal.SIGCONT)
    thread.join(120)
    outcome = result["outcome"]
    assert outcome.status == "completed", outcome.exit_reason
    with RunReader(outcome.run_dir) as reader:
        limited = [s for s in reader.samples(phase="main") if s["generator_limited"]]
        (own_max,) = reader.con.execute(
            "SELECT max((sent_at - intended_at) * 1000) FILTER (WHERE slot_free) FROM requests").fetchone()
    assert own_max >= 300  # the pause shows as the generator's own send lag
    assert any(s["generator_lag_max_ms"] >= 300 for s in limited)  # that window is generator-limited
    report = CliRunner().invoke(cli, ["report", str(outcome.run_dir)])
    assert report.exit_code == 5, report.output
    assert "INVALID" in report.output and "NO-GO" not in report.output.split("\n")[0]


def _loops():
    import asyncio

    import uvloop

    return [("asyncio", asyncio.new_event_loop), ("uvloop", uvloop.new_event_loop)]


def test_a_batch_bigger_than_the_pipe_goes_whole_while_the_worker_watches_its_pipe() -> None:
    # uvloop's add_reader makes the descriptor non-blocking; a batch bigger than the pipe's
    # free buffer then raised BlockingIOError half-way through send, the cut message killed
    # the parent's reader and the run hung at 16,000 req/s. The pipe must stay blocking.
    import multiprocessing

    from phase5site.engine.worker import watch_pipe

    batch = os.urandom(4 * 2**20)  # far above a socket pair's buffer
    for name, new_loop in _loops():
        parent_end, worker_end = multiprocessing.Pipe(duplex=True)
        loop = new_loop()
        try:
            watch_pipe(loop, worker_end, lambda: None)
            received: list[bytes] = []
            reader = threading.Thread(target=lambda: received.append(parent_end.recv_bytes()))
            reader.start()
            worker_end.send_bytes(batch)  # the parent reads only as the bytes arrive
            reader.join(120)
            assert received == [batch], name
        finally:
            loop.remove_reader(worker_end.fileno())
            loop.close()
            parent_end.close()
            worker_end.close()


def test_an_unreadable_message_fails_the_worker_instead_of_silencing_it() -> None:
    # A reader thread that died on a bad message used to leave the run waiting for that
    # worker for ever; now the runner hears 'failed' and 'gone' and stops the run.
    import asyncio
    import multiprocessing

    from phase5site.engine.pool import WorkerPool

    heard: list[tuple] = []
    context = multiprocessing.get_context("spawn")
    parent_end, worker_end = context.Pipe(duplex=True)
    stand_in = context.Process(target=time.sleep, args=(120,), daemon=True)  # a real child
    stand_in.start()

    async def go() -> None:
        pool = WorkerPool(1, lambda index, message: heard.append(message))
        pool._loop = asyncio.get_running_loop()
        worker_end.send_bytes(b"m" * 64)  # not a pickle
        reader = threading.Thread(target=pool._read, args=(0, parent_end, stand_in))
        reader.start()
        while len(heard) < 2:
            await asyncio.sleep(0.01)
        reader.join(30)

    try:
        asyncio.run(go())
    finally:
        if stand_in.is_alive():
            stand_in.kill()
        stand_in.join(10)
        parent_end.close()
        worker_end.close()
    assert heard[0][0] == "failed" and "unreadable message from load worker 0" in heard[0][2]
    assert heard[1][0] == "gone" and not stand_in.is_alive()
