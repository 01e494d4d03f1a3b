"""The once-a-second heartbeat: status.json, the load.log line, the progress display.

``snapshot`` turns the run's live state into the status.json content; it reads counters
only (never the store), so it is cheap enough to run every second on the parent's loop.
"""

from __future__ import annotations

import functools
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phase5site.engine.clock import utc_timestamp
from phase5site.engine.progress import PhaseProgress
from phase5site.runspec.models import PhaseSpec

# The live achieved rate is taken over this many seconds: the workers report every 100 ms,
# so a one-second rate counts 9 to 11 batches and jittered 76-85 req/s at a steady 80.
RATE_WINDOW_S = 5.0


@dataclass
class LivePhase:
    """What the heartbeat reports about the phase now running."""

    progress: PhaseProgress | None = None
    phase: PhaseSpec | None = None
    ordinal: int = 0
    # the phase's start (monotonic); None while it is being set up (flags, sources, the
    # store's phase row), when a heartbeat must show 0 s elapsed, not the whole phase
    start_mono: float | None = None
    last_at: float = 0.0  # the phase's start, then the last heartbeat (monotonic)
    # (monotonic, sent) at each heartbeat of the last RATE_WINDOW_S seconds
    sent_history: deque[tuple[float, int]] = field(default_factory=deque)
    reported_drops: int = 0
    finished: bool = False  # the phase ended; the heartbeat stops repeating its last line
    seen_errors: set[str] | None = None
    phase_tasks: list[Any] | None = None

    def __post_init__(self) -> None:
        self.seen_errors = self.seen_errors if self.seen_errors is not None else set()
        self.phase_tasks = self.phase_tasks if self.phase_tasks is not None else []


def process_start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat`` field
    22); None when it does not exist or /proc cannot say. A pid is reused once its process
    is gone, so pid and start together name one process.

    >>> process_start_ticks(os.getpid()) == process_start_ticks(os.getpid()) is not None
    True
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count after it.
    fields = stat.rpartition(")")[2].split()
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


@functools.cache
def _own_start_ticks() -> int | None:
    return process_start_ticks(os.getpid())


def snapshot(base: dict[str, Any], live: LivePhase, now: float, *, final: bool) -> dict[str, Any]:
    """status.json: ``base`` (run identity) plus the running phase's counters at ``now``.

    ``pid`` and ``pid_start_ticks`` name the runner, so ``phase5site status`` can tell a
    runner that died (or whose pid another process took since) from one still running."""
    status = dict(base)
    status["pid"] = os.getpid()
    status["pid_start_ticks"] = _own_start_ticks()
    progress, phase = live.progress, live.phase
    if progress is None or phase is None:
        return status
    totals = progress.totals()
    started = live.start_mono is not None
    ran = min(max(now - live.start_mono, 0.0), phase.planned_duration_s) if started else 0.0  # type: ignore[operator]
    achieved = live_rate(live, now, totals["sent"]) if started else None
    if started and (live.finished or final):
        # After the phase: the mean over the phase, not the (empty) last second.
        achieved = totals["sent"] / max(ran, 1e-9)
    p95 = progress.latency.quantile(0.95)
    lag_p99 = progress.send_lag_ms.quantile(0.99)
    outcomes = totals["outcomes"]
    status.update({
        "phase": phase.name, "phase_index": live.ordinal + 1,
        "elapsed_s": round(ran, 1),
        "planned_s": phase.planned_duration_s, "target_rate": phase.rate,
        "achieved_rate": None if achieved is None else round(achieved, 1),
        "workers": progress.workers,
        "in_flight": totals["in_flight"], "sent": totals["sent"], "completed": totals["completed"],
        "planned_requests": totals["planned"], "dropped": totals["dropped"],
        "errors": {k: v for k, v in outcomes.items() if k not in ("ok", "dropped")},
        "outcomes": outcomes,
        "client_p95_ms": None if p95 is None else round(p95, 1),
        "send_lag_p99_ms": None if lag_p99 is None else round(lag_p99, 1),
    })
    planned = status.get("phases_planned_s")
    if isinstance(planned, list) and live.ordinal < len(planned):
        # Whole run: the phases before this one ran their planned time (or were cut short,
        # and then no phase follows), this one has run elapsed_s.
        left = sum(planned[live.ordinal:]) - status["elapsed_s"]
        status["run_planned_s"] = sum(planned)
        status["run_left_s"] = round(max(0.0, left), 1)
    return status


def live_rate(live: LivePhase, now: float, sent: int) -> float | None:
    """Sends per second over the last ``RATE_WINDOW_S`` (the phase's start counts as a
    reading of 0 sent), None until 50 ms have passed. Records this reading.

    >>> live = LivePhase(last_at=100.0)
    >>> [live_rate(live, 100.0 + t, 80 * t + (8 if t % 2 else 0)) for t in range(1, 8)]
    [88.0, 80.0, 82.7, 80.0, 81.6, 78.4, 81.6]
    """
    history = live.sent_history
    if not history:
        history.append((live.last_at, 0))
    while len(history) > 1 and history[1][0] <= now - RATE_WINDOW_S:
        history.popleft()  # keep one reading at or before the window's start
    then, sent_then = history[0]
    rate = (sent - sent_then) / (now - then) if now - then > 0.05 else None
    if now - history[-1][0] > 0.05:
        history.append((now, sent))
        live.last_at = now
    return None if rate is None else round(rate, 1)


def status_line(status: dict[str, Any]) -> str:
    """One line per second for load.log and for a terminal that is not a TTY.

    >>> status_line({"run_id": "r", "status": "running"})
    'run r running'
    >>> status_line({"phase": "b", "elapsed_s": 3, "planned_s": 60, "achieved_rate": 80.0,
    ...              "target_rate": 80, "sent": 240, "in_flight": 1, "dropped": 0,
    ...              "errors": {"http_5xx": 2}, "client_p95_ms": 9.5})
    'phase=b t=3/60s rate=80.0/80 sent=240 in_flight=1 dropped=0 errors=2 (http_5xx 2) p95_ms=9.5'
    >>> status_line({"phase": "b", "elapsed_s": 3, "planned_s": 60, "achieved_rate": None,
    ...              "target_rate": 80, "sent": 0, "in_flight": 0, "dropped": 0, "errors": {},
    ...              "client_p95_ms": None, "samples_done": 5, "samples_planned": 12, "run_left_s": 97.0})
    'phase=b t=3/60s rate=NA/80 sent=0 in_flight=0 dropped=0 errors=0 p95_ms=NA samples=5/12 run_left=97s'
    """
    if not status.get("phase"):
        return f"run {status.get('run_id')} {status.get('status')}"
    errors = status.get("errors") or {}
    error_text = "0" if not errors else (
        f"{sum(errors.values())} (" + ", ".join(f"{k} {v}" for k, v in errors.items()) + ")")
    achieved = status.get("achieved_rate")
    p95 = status.get("client_p95_ms")
    line = (f"phase={status['phase']} t={status['elapsed_s']:.0f}/{status['planned_s']:g}s "
            f"rate={'NA' if achieved is None else f'{achieved:.1f}'}/{status['target_rate']:g} "
            f"sent={status['sent']} in_flight={status['in_flight']} dropped={status['dropped']} "
            f"errors={error_text} p95_ms={'NA' if p95 is None else p95}")
    if status.get("samples_planned"):
        line += f" samples={status.get('samples_done', 0)}/{status['samples_planned']}"
    if status.get("run_left_s") is not None:
        line += f" run_left={status['run_left_s']:.0f}s"
    return line


def utc_now_text(wall: float) -> str:
    return utc_timestamp(wall) + " UTC"
