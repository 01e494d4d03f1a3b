"""What the parent and its load worker processes say to each other, over one pipe each.

Parent -> worker (pickled, small):

- ``PhaseOrder``: pace and send one segment of a phase (everything a worker needs; it never
  reads the spec, the store or the metrics);
- ``STOP``: stop the phase now (breaker, signal, a failed run): cancel pacing and sends,
  flush the rows recorded so far, answer ``phase_done``;
- ``EXIT``: leave (after the last phase, or at the end of the run).

Worker -> parent, as tuples ``(kind, worker_index, ...)``:

- ``("ready", index, pid)`` once started;
- ``("batch", index, arrow_ipc_bytes | None, stats)`` at least every ``BATCH_EVERY_S``: the
  request rows recorded since the last batch (Arrow IPC stream, ``REQUEST_ARROW_SCHEMA``)
  and the worker's live counters (``WorkerStats``, a dict);
- ``("phase_done", index, stats)`` after the last batch of a phase;
- ``("failed", index, text)`` when the worker hits an error it cannot go on from; it exits
  after sending it. A worker whose pipe closes without ``EXIT`` having been sent has died.
"""

from __future__ import annotations

from dataclasses import dataclass

from phase5site.engine.mix import PreparedRequest

BATCH_EVERY_S = 0.1  # a worker hands its rows over at least this often
LOOP_PROBE_S = 0.01  # the worker's event-loop lag probe period

STOP = "stop"
EXIT = "exit"


@dataclass(frozen=True)
class ClientChoice:
    """Which HTTP client the worker builds its transports with (``target.client``)."""

    kind: str  # raw | httpx
    timeout_s: float
    max_body_bytes: int = 16 * 1024 * 1024  # target.max_body_bytes


@dataclass(frozen=True)
class PhaseOrder:
    """One worker's segment of a phase: request ``k`` with ``k % stride == offset``."""

    phase: str
    rate: float  # the whole phase's rate: the schedule is the single-process one
    concurrency: int  # this worker's slots
    duration_s: float
    start_mono: float  # first intended send (CLOCK_MONOTONIC is shared by the processes)
    end_mono: float  # the phase's time is up: what still waits is dropped
    offset: int
    stride: int
    entries: tuple[PreparedRequest, ...]
    weights: tuple[float, ...]
    seed: int
    wall_offset_s: float  # the parent's monotonic -> UTC offset, so rows share its time axis
    max_backlog: int  # this worker's share of target.max_backlog
    client: ClientChoice
    # The run's secret values: redacted from stored error messages (they are in the
    # entries' headers already, so the worker learns nothing new).
    secrets: frozenset[str] = frozenset()


@dataclass(frozen=True)
class WorkerStats:
    """A worker's counters as sent with every batch (``LoadStats`` plus health)."""

    load: dict  # LoadStats.as_dict()
    oldest_outstanding: float | None  # monotonic intended time of its oldest unfinished request
    cpu_s: float  # process CPU seconds so far (user + system)
    loop_lag_max_ms: float  # worst lateness of the loop probe since the previous batch
    stop_seen_at: float | None = None  # monotonic time the worker read STOP (stop latency)
