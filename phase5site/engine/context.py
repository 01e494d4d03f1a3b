"""What a phase and its sample loop may use of the run (``runner.Run`` provides it).

A Protocol, so that ``phases`` and ``sampleloop`` depend on this narrow surface rather than
on the runner module that calls them (no import cycle, and a test can hand in a fake).
"""

from __future__ import annotations

from typing import Any, Protocol

from phase5site.engine.breaker import Trip
from phase5site.engine.clock import SystemClock, WallAxis
from phase5site.engine.heartbeat import LivePhase
from phase5site.engine.pool import WorkerPool
from phase5site.engine.progress import PhaseProgress
from phase5site.engine.runfiles import RunFiles
from phase5site.engine.stopping import StopControl
from phase5site.engine.writer import WriterThread
from phase5site.runspec.models import PhaseSpec, RunSpec


class RunContext(Protocol):
    spec: RunSpec
    pool: WorkerPool
    clock: SystemClock
    axis: WallAxis
    files: RunFiles
    writer: Any  # store.RunWriter, used on writer_thread only
    writer_thread: WriterThread
    sources: list[Any]
    target: Any  # the embedded target's handle, or None
    target_count_cache_miss: bool
    base_url: str
    bearer: str | None
    stop: StopControl
    stop_sent_at: float | None
    breaker_on: bool
    live: LivePhase

    def now_wall(self) -> float: ...

    def live_phase(self, progress: PhaseProgress, phase: PhaseSpec, ordinal: int) -> None: ...

    async def event(self, kind: str, message: str, *, phase: str | None = None,
                    at: float | None = None, data: dict | None = None) -> None: ...

    async def flush_rows(self) -> None: ...

    async def write_pending_events(self) -> None: ...

    async def report_drops(self, progress: PhaseProgress, at: float) -> None: ...

    async def wait_for_workers(self, progress: PhaseProgress) -> None: ...

    def heartbeat(self, final_status: str | None = None) -> bool: ...

    def trip(self, trip: Trip, *, side: str) -> None: ...
