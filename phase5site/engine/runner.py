"""The runner: one run of a spec, phase after phase, into ``results/<name>-<UTC>/``.

The parent process owns the clock (one monotonic-to-UTC offset per run, shared with the
workers), the metrics sources, the single DuckDB writer (on its own thread), the circuit
breaker, the display and the signal handlers (installed for the duration of ``run_spec``
only). The load itself runs in ``target.workers`` worker processes (``pool``, ``worker``),
which send their rows back in batches. A ticker checks the client-side breaker every
0.25 s, writes the workers' rows every 0.5 s and the status.json heartbeat every second;
a breaker trip, a signal or a dead worker stops every worker at once (``stopping``).

Where things are: ``phases`` (one phase), ``sampleloop`` (its samples), ``stopping``
(early ends), ``heartbeat`` (status.json and the progress line), ``pool``/``worker``/
``protocol`` (the worker processes).
"""

from __future__ import annotations

import asyncio
import gc
import platform
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from phase5site import __version__
from phase5site.columns import SampleLimits
from phase5site.engine.breaker import RollingErrorWindow, Trip, check_client
from phase5site.engine.clock import SystemClock, WallAxis, utc_compact, utc_timestamp
from phase5site.engine.heartbeat import LivePhase, snapshot, status_line
from phase5site.engine.live_slo import SampleScreen
from phase5site.engine.mix import mix_seed
from phase5site.engine.phases import run_phase
from phase5site.engine.pool import WorkerPool, auto_workers
from phase5site.engine.progress import PhaseProgress
from phase5site.engine.runfiles import RunFiles, describe_write_error
from phase5site.engine.sampler import SamplePlan
from phase5site.engine.stopping import StopControl, install_signals
from phase5site.engine.writer import WriterThread
from phase5site.errors import HostNotAllowed, Phase5Error, RunError, UsageError
from phase5site.runspec import LoadedSpec, hosts
from phase5site.runspec.models import PhaseSpec, RunSpec, TargetSpec

TICK_S = 0.25
FLUSH_EVERY_S = 0.5
STATUS_EVERY_S = 1.0
WORKER_DRAIN_S = 10.0  # after a stop, how long the workers' last rows may take to arrive


class ProgressSink(Protocol):
    """Receives the status snapshot (the content of status.json) every second."""

    def update(self, status: dict[str, Any]) -> None: ...


class LivePageSink(ProgressSink, Protocol):
    """A progress sink that serves on the run's event loop (``engine.livepage.LivePage``)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    status: str  # completed | interrupted | aborted | failed
    exit_reason: str | None = None
    signal: int | None = None


def check_allowed_host(target: TargetSpec) -> None:
    """Refuse a base_url whose host is not in allow_hosts, before any byte is sent.

    The embedded target runs on 127.0.0.1 and is always allowed.
    """
    if target.base_url is None:
        return
    host = target.host
    if host not in target.allow_hosts:
        allowed = ", ".join(target.allow_hosts) or "none"
        raise HostNotAllowed(
            f"refusing to send load to {host!r}: it is not in target.allow_hosts (allowed: {allowed})",
            hint=f"add {host!r} to target.allow_hosts if this host may receive load",
        )


def check_contacted_hosts(spec: RunSpec) -> None:
    """Refuse the run before any request if a URL it would contact (target, Prometheus,
    metrics page) is outside target.allow_hosts. Spec validation refuses this already; a
    spec changed after loading (``model_copy``) is caught here."""
    check_allowed_host(spec.target)
    refused = hosts.refusal(hosts.metrics_urls(spec.metrics), spec.target.allow_hosts)
    if refused:
        raise HostNotAllowed(f"refusing to run: {refused}",
                             hint="add the host to target.allow_hosts if this run may contact it")


def select_phases(loaded: LoadedSpec, only_phases: list[str] | None) -> list[PhaseSpec]:
    names = [phase.name for phase in loaded.spec.phases]
    unknown = [name for name in (only_phases or []) if name not in names]
    if unknown:
        raise UsageError(
            f"unknown phase {', '.join(repr(n) for n in unknown)} in --phase",
            hint=f"phases of {loaded.spec.name}: {', '.join(names)}",
        )
    phases = loaded.spec.enabled_phases(only_phases)
    if not phases:
        raise UsageError("no phase to run: every phase is disabled", hint="enable a phase or pick one with --phase")
    return phases


def worker_count(target: TargetSpec, phases: list[PhaseSpec]) -> int:
    """``target.workers``, with ``auto`` sized for the busiest phase."""
    if target.workers != "auto":
        return int(target.workers)
    return max(auto_workers(p.rate, p.concurrency) for p in phases)


def run_spec(
    loaded: LoadedSpec,
    *,
    results_dir: Path,
    only_phases: list[str] | None = None,
    breaker: bool = True,
    progress: ProgressSink | None = None,
    live_page: LivePageSink | None = None,
) -> RunOutcome:
    """Run the spec's phases; return where the results are and how the run ended.

    ``live_page`` (``engine.livepage.LivePage``, ``run --live``) is served on the run's own
    loop from its start to its end and gets the same snapshot as ``progress``."""
    check_contacted_hosts(loaded.spec)
    phases = select_phases(loaded, only_phases)
    too_few = [p.name for p in phases if p.concurrency < worker_count(loaded.spec.target, phases)]
    if too_few:
        raise UsageError(f"target.workers is {loaded.spec.target.workers} but phase(s) "
                         f"{', '.join(too_few)} have fewer slots (concurrency) than workers",
                         hint="every worker needs at least one slot: lower target.workers")
    run = Run(loaded, Path(results_dir), phases, breaker=breaker, progress=progress, live_page=live_page)
    return asyncio.run(run.execute())


def make_run_dir(results_dir: Path, name: str, started_at: float) -> Path:
    """``results/<name>-<UTC YYYYmmddTHHMMSSZ>/``; a suffix keeps two runs in one second apart."""
    base = f"{name}-{utc_compact(started_at)}"
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(100):
            candidate = results_dir / (base if attempt == 0 else f"{base}-{attempt + 1}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return candidate
    except OSError as error:
        raise RunError(
            f"cannot create the run folder under {results_dir}: {error.strerror or error}",
            hint="choose a writable folder with --results-dir",
        ) from error
    raise Phase5Error(f"cannot create a run folder under {results_dir}", hint="remove old run folders")


class Run:
    """One run's state on the parent's side; ``phases`` and ``sampleloop`` work on it."""

    def __init__(self, loaded: LoadedSpec, results_dir: Path, phases: list[PhaseSpec], *,
                 breaker: bool, progress: ProgressSink | None,
                 live_page: LivePageSink | None = None) -> None:
        self.loaded = loaded
        self.spec = loaded.spec
        self.results_dir = results_dir
        self.phases = phases
        self.breaker_on = breaker and self.spec.circuit_breaker.enabled
        self.breaker_flag = breaker
        self.progress = progress
        self.live_page = live_page
        self.clock = SystemClock()
        self.axis = WallAxis()
        self.window = RollingErrorWindow(window_s=self.spec.circuit_breaker.window)
        self.live = LivePhase()
        self.screen = SampleScreen()  # samples done and thresholds broken so far (display)
        self.stop = StopControl(on_stop=self._on_stop)
        self.forced = False  # a second signal ended the wait for the workers
        self.stop_sent_at: float | None = None
        self.sources: list[Any] = []
        self.target: Any = None
        self.target_count_cache_miss = False  # the simulator starts with the flag off
        self.base_url: str = ""
        bearer = self.spec.target.auth.bearer
        self.bearer = bearer.get_secret_value() if bearer is not None else None
        self.pool: WorkerPool | None = None
        self.worker_errors: dict[int, str] = {}
        self.pending_tables: list[pa.Table] = []
        self._flush_lock = asyncio.Lock()
        self.files: RunFiles | None = None

    # --- time -----------------------------------------------------------------------------

    def now_wall(self) -> float:
        return self.axis.wall(self.clock.monotonic())

    # --- lifecycle ------------------------------------------------------------------------

    async def execute(self) -> RunOutcome:
        # Installed before anything else: a Ctrl-C while the run folder and its database are
        # being created must end the run 'interrupted' like any other, instead of reaching
        # asyncio.run's own SIGINT handler (task cancelled, KeyboardInterrupt, run 'failed').
        restore_signals = install_signals(self._on_signal)
        try:
            if self.live_page is not None:
                await self.live_page.start()
            return await self._execute()
        finally:
            try:
                if self.live_page is not None:
                    await self.live_page.close()
            finally:
                restore_signals()

    async def _execute(self) -> RunOutcome:
        from phase5site.store import RunWriter

        started_at = self.now_wall()
        self.run_dir = make_run_dir(self.results_dir, self.spec.name, started_at)
        self.files = RunFiles(self.run_dir, self.loaded.secrets)
        self.writer_thread = WriterThread()
        self.pool = WorkerPool(worker_count(self.spec.target, self.phases), self._on_worker_message)
        environment = self._environment(started_at)
        self.files.write_json("metadata.json", self._metadata(started_at, environment))
        self.writer = self.writer_thread.call_sync(
            RunWriter.create, self.run_dir, run_id=self.run_dir.name, name=self.spec.name,
            spec_path=str(self.loaded.path), spec_sha256=self.loaded.sha256,
            spec_redacted=self.loaded.redacted(), environment=environment,
            tool_version=__version__, source="run", started_at=started_at,
        )
        ticker: asyncio.Task | None = None
        status = "failed"
        try:
            await self._start_workers()
            await self._start_target()
            await self.event("run_start", f"run {self.run_dir.name} started against {self.base_url}",
                             data={"phases": [p.name for p in self.phases], "breaker": self.breaker_on,
                                   "base_url": self.base_url, "embedded": self.target is not None,
                                   "target_pid": self.target.pid if self.target is not None else None,
                                   "workers": self.pool.count, "worker_pids": self.pool.pids})
            await self._record_scheduled_faults()
            if not self.breaker_on:
                await self._warn_breaker_off()
            self.sources = self._make_sources()
            # Everything allocated so far (imports, spec, DuckDB, pyarrow) lives for the whole
            # run; freezing it keeps full garbage collections from scanning it.
            gc.freeze()
            ticker = asyncio.create_task(self._tick())
            for ordinal, phase in enumerate(self.phases):
                if self.stop.requested:
                    break
                await run_phase(self, phase, ordinal)
            status = self.stop.status or "completed"
        except Phase5Error as error:
            status, self.exit_reason = "failed", self.files.clean(str(error))
            await self._record_failure(error)
            raise
        except Exception as error:  # noqa: BLE001 - a run must end with a status, not a crash
            if self.stop.status != "failed":  # a failure already stopping the run says it first
                self.exit_reason = self.files.clean(describe_write_error(error, self.run_dir)
                                                    or f"{type(error).__name__}: {error}")
            status = "failed"
            await self._record_failure(error)
        finally:
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
            gc.unfreeze()
            status = await self._finish(status)
        return RunOutcome(self.run_dir, status, self.exit_reason, self.stop.signal)

    @property
    def exit_reason(self) -> str | None:
        return self.stop.reason

    @exit_reason.setter
    def exit_reason(self, reason: str | None) -> None:
        self.stop.reason = reason

    async def _record_failure(self, error: BaseException) -> None:
        assert self.files is not None
        self.files.load(self.now_wall(), f"run failed: {self.exit_reason}")
        self.files.load(self.now_wall(), "".join(traceback.format_exception(error)).rstrip())
        try:
            await self.event("error", self.exit_reason or "failed")
        except Exception as failure:  # noqa: BLE001 - e.g. the disk is full: the log has it
            self.files.load(self.now_wall(), f"the error event could not be stored: {failure}")

    async def _finish(self, status: str) -> str:
        """End the run whatever failed before: the rows received are written, the run gets
        its status, status.json its last state. Returns the status the run ended with: a
        failure while ending (a full disk) makes it 'failed'."""
        assert self.files is not None
        self.files.release_reserve()  # room for the last rows, the run's end and status.json
        ended_at = self.now_wall()
        try:
            await self._close_workers()
            await self.flush_rows()
            await self.write_pending_events()
            await self.event("run_end", f"run ended: {status}", data={"exit_reason": self.exit_reason})
        except Exception as error:  # noqa: BLE001 - the run must still be ended
            status = self._failed_while_ending(status, error)
        finally:
            for source in self.sources:
                try:
                    await source.aclose()
                except Exception:  # noqa: BLE001 - closing must not hide the run's status
                    pass
            if self.target is not None:
                await asyncio.to_thread(self.target.stop)
            status = self._end_store(status, ended_at)
            self.files.load(ended_at, f"run {status}" + (f": {self.exit_reason}" if self.exit_reason else ""))
            self.files.close()
        return status

    def _failed_while_ending(self, status: str, error: BaseException) -> str:
        assert self.files is not None
        if status != "failed" or not self.exit_reason:
            self.exit_reason = self.files.clean(describe_write_error(error, self.run_dir)
                                                or f"{type(error).__name__}: {error}")
        self.files.load(self.now_wall(), "".join(traceback.format_exception(error)).rstrip())
        return "failed"

    def _end_store(self, status: str, ended_at: float) -> str:
        """The run's status into the store, then status.json; if even status.json cannot be
        written the run is 'failed' with that reason, in the store too."""
        assert self.files is not None
        if self.files.write_error and status != "failed":  # a file of the run lost what it was told
            status, self.exit_reason = "failed", self.files.write_error
        for attempt in (1, 2):
            try:
                self.writer_thread.call_sync(self.writer.finish, status, ended_at=ended_at,
                                             exit_reason=self.exit_reason)
            except Exception as error:  # noqa: BLE001 - status.json and the log still say it
                self.files.load(ended_at, f"the run's end could not be stored: {error}")
            if self.heartbeat(final_status=status) or attempt == 2:
                break
            status, self.exit_reason = "failed", self.files.write_error
        self.writer_thread.call_sync(self.writer.close)
        self.writer_thread.shutdown()
        return status

    # --- the load workers -----------------------------------------------------------------

    async def _start_workers(self) -> None:
        assert self.pool is not None and self.files is not None
        await self.pool.start()
        self.files.load(self.now_wall(), f"{self.pool.count} load worker process(es) started "
                        f"(pids {', '.join(map(str, self.pool.pids))})")

    def _on_worker_message(self, index: int, message: tuple) -> None:
        kind = message[0]
        progress = self.live.progress
        if kind == "batch":
            table, stats = message[2], message[3]
            if table is not None:
                self.pending_tables.append(table)
            if progress is not None:
                progress.on_batch(index, table, stats, self._on_completion)
        elif kind == "phase_done" and progress is not None:
            progress.on_done(index, message[2])
        elif kind == "failed":
            self.worker_errors[index] = str(message[2])
        elif kind == "gone":
            self._worker_gone(index, message[2])

    def _worker_gone(self, index: int, exitcode: int | None) -> None:
        assert self.pool is not None
        error = self.worker_errors.get(index, "")
        last_line = error.strip().splitlines()[-1] if error.strip() else "no error message"
        reason = (f"load worker {index} (pid {self.pool.pids[index]}) died: exit code {exitcode}; "
                  f"{last_line}")
        if self.files is not None and error:
            self.files.load(self.now_wall(), f"load worker {index} error:\n{error}")
        self.request_stop("failed", reason, "error", {"worker": index, "exitcode": exitcode})
        if self.live.progress is not None:  # nothing more will come from it
            self.live.progress.on_done(index, self.live.progress.stats.get(index) or _empty_stats())

    def _on_completion(self, done_wall: float, error: bool) -> None:
        self.window.record(self.axis.monotonic(done_wall), error=error)

    async def wait_for_workers(self, progress: PhaseProgress) -> None:
        """After a stop: until every worker sent its last rows (bounded)."""
        try:
            await asyncio.wait_for(progress.finished.wait(), WORKER_DRAIN_S)
        except TimeoutError:
            assert self.files is not None
            missing = sorted(set(range(progress.workers)) - set(progress.done))
            self.files.load(self.now_wall(), f"load worker(s) {missing} sent no last batch within "
                            f"{WORKER_DRAIN_S:g}s of the stop; their last rows are missing")

    async def _close_workers(self) -> None:
        if self.pool is None:
            return
        progress = self.live.progress
        if progress is not None and not progress.finished.is_set() and not self.live.finished:
            self.pool.stop()
            await self.wait_for_workers(progress)
        await self.pool.close()

    def live_phase(self, progress: PhaseProgress, phase: PhaseSpec, ordinal: int) -> None:
        self.live = LivePhase(progress=progress, phase=phase, ordinal=ordinal)

    # --- stopping -------------------------------------------------------------------------

    def _on_signal(self, signum: int) -> None:
        import signal as signals

        name = signals.Signals(signum).name
        if self.stop.requested:
            self._force_stop(name)
            return
        self.stop.signal = signum
        self.request_stop("interrupted", f"{name} received", "signal", {"signal": signum})

    def _force_stop(self, name: str) -> None:
        """A signal while the run is already stopping: the user will not wait for the load
        workers' last rows (a stuck worker held the stop for its drain time): kill them
        and go on to the end of the run, whose rows, status and summary are still written."""
        if self.forced:
            return
        self.forced = True
        if self.files is not None:
            self.files.load(self.now_wall(), f"{name} again while stopping: forcing the stop; load "
                            "workers killed, rows they had not handed over are lost")
        if self.pool is not None:
            self.pool.kill()
        if self.live.progress is not None:
            self.live.progress.finished.set()

    def request_stop(self, status: str, reason: str, kind: str, data: dict | None) -> None:
        """Stop the load now: tell the workers, cancel the phase's tasks."""
        phase = self.live.phase.name if self.live.phase else None
        self.stop.request(status, reason, kind, data, at=self.now_wall(), phase=phase)

    def _on_stop(self, reason: str) -> None:
        if self.files is not None:
            self.files.release_reserve()  # the run's end needs room, whatever stopped it
        if self.pool is not None:
            self.stop_sent_at = self.clock.monotonic()
            self.pool.stop()
        if self.files is not None:
            self.files.load(self.now_wall(), f"stopping: {reason}")
        for task in self.live.phase_tasks or []:
            task.cancel()

    def trip(self, trip: Trip, *, side: str) -> None:
        self.request_stop("aborted", f"circuit breaker ({side}): {trip.reason}", "breaker_trip",
                          {"side": side, **trip.values})

    async def _warn_breaker_off(self) -> None:
        assert self.files is not None
        why = "--no-breaker given" if not self.breaker_flag else "circuit_breaker.enabled is false"
        message = f"circuit breaker DISABLED ({why}): nothing stops the load if the service suffers"
        self.files.load(self.now_wall(), f"WARNING {message}")
        await self.event("warning", message)

    # --- target and sources ---------------------------------------------------------------

    async def _start_target(self) -> None:
        assert self.files is not None
        target_spec = self.spec.target
        if target_spec.embedded is None:
            assert target_spec.base_url is not None
            self.base_url = target_spec.base_url
            return
        # Imported here: the engine talks to the embedded target over HTTP only; the runner
        # merely starts and stops its process.
        from phase5site.simulator import start_target

        self.target = await asyncio.to_thread(start_target, target_spec.embedded, bearer=self.bearer)
        self.base_url = self.target.base_url
        self.files.load(self.now_wall(), f"embedded target started at {self.base_url} (pid {self.target.pid})")

    async def _record_scheduled_faults(self) -> None:
        """One 'fault' event per fault the embedded target was told to inject (offsets from
        the target's start), so reports can explain what the numbers show."""
        embedded = self.spec.target.embedded
        if embedded is None or self.target is None:
            return
        for fault in embedded.faults:
            await self.event("fault", f"{fault.kind} scheduled at +{fault.at:g}s for {fault.duration:g}s",
                             data=fault.model_dump())

    def _scrape_url(self) -> str:
        metrics = self.spec.metrics
        if metrics.scrape_url:
            return metrics.scrape_url
        if self.target is not None:
            return str(self.target.metrics_url)
        return self.base_url.rstrip("/") + "/metrics/prom"

    def _make_sources(self) -> list[Any]:
        if self.spec.metrics.source == "none":
            return []
        from phase5site.metrics import machine_limits, make_sources

        # A credential goes only to the URL it was configured for (issue 13 item 5): the load
        # JWT (target.auth.bearer) is target.base_url's and never goes to a metrics page, even
        # one on the target's host; only a credential configured for the metrics page may
        # (metrics.auth: the service's METRICS_SCRAPE_TOKEN, refused there as the JWT is).
        headers = self.spec.metrics.auth.headers()
        # The embedded target runs on this machine: CPU above its cores or RSS above its
        # memory cannot be the service's (the sample gate, columns.COLUMN_RANGES).
        limits = machine_limits() if self.target is not None else SampleLimits()
        sources = list(make_sources(self.spec.metrics, scrape_url=self._scrape_url(), headers=headers,
                                    limits=limits))
        # The primary source (the one metrics.csv carries) is Prometheus when both are used.
        sources.sort(key=lambda s: 0 if s.name == "prometheus" else 1)
        return sources

    # --- ticker: breaker checks, row flushes, heartbeat ------------------------------------

    async def _tick(self) -> None:
        try:
            await self._tick_forever()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - without the ticker nothing guards the load
            assert self.files is not None
            reason = self.files.clean(describe_write_error(error, self.run_dir)
                                      or f"the run's ticker failed: {type(error).__name__}: {error}")
            self.files.load(self.now_wall(), "".join(traceback.format_exception(error)).rstrip())
            self.request_stop("failed", reason, "error", None)

    async def _tick_forever(self) -> None:
        next_flush = next_status = self.clock.monotonic()
        while True:
            now = self.clock.monotonic()
            if self.breaker_on and not self.stop.requested and self.live.progress is not None:
                trip = check_client(self.window, now, self.spec.circuit_breaker)
                if trip is not None:
                    self.trip(trip, side="client")
            if now >= next_flush:
                next_flush = now + FLUSH_EVERY_S
                await self.flush_rows()
            if now >= next_status:
                next_status = now + STATUS_EVERY_S
                self.heartbeat()
                await self.write_pending_events()
            if self.files is not None and self.files.write_error and not self.stop.requested:
                self.request_stop("failed", self.files.write_error, "error", None)  # e.g. disk full
            await asyncio.sleep(TICK_S)

    async def flush_rows(self) -> None:
        """Write every batch received so far. The write is shielded: a stop that cancels
        the caller never throws a batch away (the writer thread finishes it, in order)."""
        async with self._flush_lock:
            if not self.pending_tables:
                return
            tables, self.pending_tables = self.pending_tables, []
            await asyncio.shield(self.writer_thread.call(_append_tables, self.writer, tables))

    async def report_drops(self, progress: PhaseProgress, at: float) -> None:
        assert self.files is not None
        dropped = progress.total("dropped")
        new = dropped - self.live.reported_drops
        if new <= 0:
            return
        self.live.reported_drops = dropped
        message = (f"{new} requests dropped in phase {progress.phase} (total {dropped}): the backlog "
                   "was full, or they were still waiting for a slot when the phase's time was up; "
                   "each counts as a failed request")
        self.files.load(at, message)
        await self.event("drops", message, phase=progress.phase, at=at, data={"new": new, "total": dropped})

    def status_base(self, final_status: str | None) -> dict[str, Any]:
        from phase5site.engine.sampler import SamplePlan

        current = self.live.phase
        return {
            "run_id": self.run_dir.name, "run_dir": str(self.run_dir), "name": self.spec.name,
            "status": final_status or "running",
            "updated_at": utc_timestamp(self.now_wall()) + " UTC",
            "breaker": "on" if self.breaker_on else "off",
            "phases": [p.name for p in self.phases], "exit_reason": self.exit_reason,
            "phases_planned_s": [p.planned_duration_s for p in self.phases],
            "samples_done": self.screen.done.get(current.name, 0) if current else 0,
            "samples_planned": SamplePlan.of(current).count if current else 0,
            "slo_so_far": self.screen.status(current.name if current else None),
        }

    def heartbeat(self, final_status: str | None = None) -> bool:
        """status.json, the load.log line and the display; False when status.json could not
        be written."""
        assert self.files is not None
        status = snapshot(self.status_base(final_status), self.live, self.clock.monotonic(),
                          final=final_status is not None)
        written = self.files.write_status(status)
        self._update_live_page(status)
        if self.live.finished and final_status is None:
            return written  # between phases: status.json is fresh, nothing new to print
        if status.get("phase") and final_status is None:
            self.files.load(self.now_wall(), status_line(status))
        if self.progress is not None:
            try:
                self.progress.update(status)
            except Exception as error:  # noqa: BLE001 - a display must never stop the load
                # e.g. `phase5site run spec | head`: stdout closed. status.json and load.log
                # keep the progress; the measurement goes on.
                self.progress = None
                self.files.load(self.now_wall(), f"progress display failed ({type(error).__name__}: "
                                f"{error}); see status.json and this log")
        return written

    def _update_live_page(self, status: dict[str, Any]) -> None:
        if self.live_page is None:
            return
        try:
            self.live_page.update(status)
        except Exception as error:  # noqa: BLE001 - like the display: never stops the load
            assert self.files is not None
            self.files.load(self.now_wall(), f"live page update failed ({type(error).__name__}: {error})")

    # --- events and metadata --------------------------------------------------------------

    async def event(self, kind: str, message: str, *, phase: str | None = None,
                    at: float | None = None, data: dict | None = None) -> None:
        assert self.files is not None
        await self.writer_thread.call(self.writer.add_event, kind, self.files.clean(message),
                                      at=self.now_wall() if at is None else at, phase=phase,
                                      data=_clean_data(data, self.files.clean))

    async def write_pending_events(self) -> None:
        for kind, message, at, phase, data in self.stop.take_events():
            await self.event(kind, message, phase=phase, at=at, data=data)
        progress = self.live.progress
        if progress is not None and progress.total("dropped") > self.live.reported_drops:
            await self.report_drops(progress, self.now_wall())
        await self._report_first_errors()

    async def _report_first_errors(self) -> None:
        """An 'error' event the first time each failure outcome shows up in a phase (the
        totals are in the phase_end event): bounded, yet no failure kind goes unmentioned."""
        progress = self.live.progress
        if progress is None:
            return
        assert self.files is not None and self.live.seen_errors is not None
        for outcome, count in progress.totals()["outcomes"].items():
            if outcome in ("ok", "dropped") or count == 0 or outcome in self.live.seen_errors:
                continue
            self.live.seen_errors.add(outcome)
            message = f"first {outcome} responses in phase {progress.phase} ({count} so far)"
            self.files.load(self.now_wall(), message)
            await self.event("error", message, phase=progress.phase, data={"outcome": outcome, "count": count})

    def _environment(self, started_at: float) -> dict[str, Any]:
        try:
            from phase5site.ops.environment import capture_environment

            return capture_environment(self.loaded, spec_path=self.loaded.path, now_s=started_at)
        except Exception:  # noqa: BLE001 - environment capture is informative, never fatal
            return {"tool": {"name": "phase5site", "version": __version__},
                    "python": {"version": platform.python_version(), "executable": sys.executable},
                    "os": {"platform": platform.platform()}}

    def _metadata(self, started_at: float, environment: dict[str, Any]) -> dict[str, Any]:
        target = self.spec.target
        return {
            "run_id": self.run_dir.name, "name": self.spec.name,
            "started_at": started_at, "started_at_utc": utc_timestamp(started_at),
            "spec_path": str(self.loaded.path), "spec_sha256": self.loaded.sha256,
            "spec": self.loaded.redacted(),
            "parameters": {
                "target": "embedded" if target.embedded else target.base_url,
                "timeout_s": target.timeout,
                "bearer_provided": self.bearer is not None,
                "metrics_source": self.spec.metrics.source,
                "circuit_breaker": {"active": self.breaker_on, **self.spec.circuit_breaker.model_dump()},
                "phases": [
                    {"name": p.name, "rate": p.rate, "concurrency": p.concurrency,
                     "planned_duration_s": p.planned_duration_s,
                     "samples": SamplePlan.of(p).count, "interval_s": SamplePlan.of(p).interval_s,
                     "observe": p.observe, "flags": self.spec.effective_flags(p).model_dump(),
                     "mix_seed": mix_seed(self.spec.name, p.name)}
                    for p in self.phases
                ],
                "pacing": ("open model, absolute schedule t0 + i/rate, split by execution segment over "
                            f"{self.pool.count if self.pool else 0} load worker process(es); a backlog "
                            "bounded by target.max_backlog, then counted drops"),
            },
            "tool_version": __version__,
            "python": platform.python_version(),
            "environment": environment,
        }




def _append_tables(writer: Any, tables: list[pa.Table]) -> int:
    return sum(writer.append_request_table(table) for table in tables)


def _empty_stats() -> Any:
    from phase5site.engine.protocol import WorkerStats

    return WorkerStats(load={}, oldest_outstanding=None, cpu_s=0.0, loop_lag_max_ms=0.0)


def _clean_data(data: dict | None, clean: Callable[[str], str]) -> dict | None:
    if data is None:
        return None
    return {key: clean(value) if isinstance(value, str) else value for key, value in data.items()}


__all__ = ["ProgressSink", "RunOutcome", "check_allowed_host", "check_contacted_hosts", "run_spec", "status_line"]
