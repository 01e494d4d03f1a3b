"""Progress sinks render the status snapshot; a disabled breaker is loud."""

from __future__ import annotations

import io
from pathlib import Path

from phase5site.engine import run_spec
from phase5site.engine.display import LiveProgress, PlainProgress
from phase5site.runspec import parse_spec_text
from phase5site.store import RunReader

from .loopback import LoopbackServer

STATUS = {
    "run_id": "demo-20261127T000000Z", "status": "running", "phase": "baseline", "phase_index": 2,
    "phases": ["warmup", "baseline"], "elapsed_s": 12.0, "planned_s": 36.0, "target_rate": 80.0,
    "achieved_rate": 79.5, "in_flight": 3, "sent": 960, "planned_requests": 2880, "dropped": 4,
    "errors": {"http_5xx": 2, "timeout": 1}, "client_p95_ms": 21.3, "breaker": "on",
}


def test_plain_progress_prints_one_line_with_every_figure() -> None:
    stream = io.StringIO()
    PlainProgress(stream).update(STATUS)
    assert stream.getvalue() == (
        "phase=baseline t=12/36s rate=79.5/80 sent=960 in_flight=3 dropped=4 "
        "errors=3 (http_5xx 2, timeout 1) p95_ms=21.3\n")


def test_live_progress_renders_the_same_figures() -> None:
    from rich.console import Console

    live = LiveProgress()
    console = Console(file=io.StringIO(), width=100)
    console.print(live._render(STATUS))
    text = console.file.getvalue()
    for expected in ("baseline (2/2)", "12 s of 36 s", "79.5 of 80 req/s", "960 of 2880",
                     "http_5xx 2, timeout 1", "21.3 ms"):
        assert expected in text, expected


def test_no_breaker_is_recorded_loudly(tmp_path: Path) -> None:
    with LoopbackServer() as server:
        text = f"""
version: 1
name: nobreaker
target:
  base_url: {server.base_url}
  allow_hosts: [127.0.0.1]
  requests: [{{name: ok, path: /ok}}]
phases:
  - {{name: main, rate: 10, concurrency: 1, duration: 0.3, observe: false}}
"""
        outcome = run_spec(parse_spec_text(text, "x.yaml", {}), results_dir=tmp_path, breaker=False)
    with RunReader(outcome.run_dir) as reader:
        (warning,) = reader.events(kind="warning")
    assert "circuit breaker DISABLED (--no-breaker given)" in warning["message"]
    assert "WARNING circuit breaker DISABLED" in (outcome.run_dir / "load.log").read_text()


def test_live_rate_does_not_jitter_with_the_workers_100_ms_batches() -> None:
    # At a steady 80 req/s the parent learns of sends in batches of 8 every 100 ms, and the
    # heartbeat fires about once a second (here 1.00-1.06 s apart): a one-second rate then
    # read 72-88 req/s. Over RATE_WINDOW_S it stays within 2 % of 80 once the window is full.
    import math
    import random

    from phase5site.engine.heartbeat import RATE_WINDOW_S, LivePhase, live_rate

    live = LivePhase(last_at=1000.0)
    beats, now = [], 1000.0
    noise = random.Random(11)
    for _ in range(60):
        now += 1.0 + noise.uniform(0.0, 0.06)
        sent = 8 * math.floor((now - 1000.0) * 10)  # whole batches delivered by now
        beats.append((now - 1000.0, live_rate(live, now, sent)))
    steady = [rate for at, rate in beats if at > RATE_WINDOW_S + 1]
    assert steady and all(78.4 <= rate <= 81.6 for rate in steady), steady
    assert len(live.sent_history) <= RATE_WINDOW_S + 2  # bounded: old readings leave
