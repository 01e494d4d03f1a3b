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


def test_live_progress_shows_samples_run_time_left_and_the_slo_screen() -> None:
    from rich.console import Console

    from phase5site.engine.live_slo import SampleScreen
    from phase5site.runspec.models import SloSpec

    screen = SampleScreen()
    for num, p95 in ((1, 20.0), (2, 212.0), (3, 30.0), (4, 25.0), (5, 22.0)):
        screen.record("baseline", num, {"client_p95_ms": p95, "client_error_rate": 0.0}, SloSpec())
    status = {**STATUS, "samples_done": 5, "samples_planned": 12, "run_left_s": 24.0, "run_planned_s": 46.0,
              "slo_so_far": screen.status("baseline")}
    assert status["slo_so_far"] == "4 of 5 samples within thresholds; #2: p95 212.0 ms > 150 ms"
    console = Console(file=io.StringIO(), width=160)
    console.print(LiveProgress()._render(status))
    text = console.file.getvalue()
    for expected in ("5/12", "24 s of 46 s", "4 of 5 samples within thresholds", "per-sample screen"):
        assert expected in text, expected
    stream = io.StringIO()
    PlainProgress(stream).update(status)
    assert stream.getvalue().endswith(" samples=5/12 run_left=24s\n")


def test_the_heartbeat_counts_the_whole_run_time_left() -> None:
    from phase5site.engine.heartbeat import LivePhase, snapshot
    from phase5site.engine.progress import PhaseProgress
    from phase5site.runspec.models import PhaseSpec

    phase = PhaseSpec(name="baseline", rate=10, concurrency=2, samples=3, interval=10)
    live = LivePhase(progress=PhaseProgress(phase="baseline", rate=10, workers=1), phase=phase, ordinal=1,
                     start_mono=100.0, last_at=100.0)
    status = snapshot({"phases_planned_s": [5.0, 30.0, 16.0]}, live, 112.0, final=False)
    assert status["elapsed_s"] == 12.0
    assert status["run_planned_s"] == 51.0 and status["run_left_s"] == 34.0  # 30 - 12 + 16


def test_a_heartbeat_while_a_phase_is_set_up_shows_it_not_started() -> None:
    """The runner names the phase before its start is known (flags, metric sources and the
    store's phase row come first): a heartbeat then printed "t=5/5s rate=0.0/20", the whole
    phase as elapsed with nothing sent."""
    from phase5site.engine.heartbeat import LivePhase, snapshot, status_line
    from phase5site.engine.progress import PhaseProgress
    from phase5site.runspec.models import PhaseSpec

    phase = PhaseSpec(name="warmup", rate=20, concurrency=5, duration=5, observe=False)
    live = LivePhase(progress=PhaseProgress(phase="warmup", rate=20, workers=1), phase=phase, ordinal=0)
    status = snapshot({"phases_planned_s": [5.0, 36.0]}, live, 5_000.0, final=False)
    assert status["elapsed_s"] == 0.0 and status["achieved_rate"] is None
    assert status["run_left_s"] == 41.0
    assert status_line(status).startswith("phase=warmup t=0/5s rate=NA/20 ")


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
