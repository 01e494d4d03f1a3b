"""The runner: one run of a spec, phase after phase, into ``results/<name>-<UTC>/``.

It owns the clock (one monotonic-to-UTC offset per run), the network (the phase load and
the metrics sources), the single DuckDB writer (on its own thread) and the signal handlers
(installed for the duration of ``run_spec`` only). A ticker checks the client-side circuit
breaker every 0.25 s, flushes request rows every 0.5 s and writes the status.json
heartbeat every second; a breaker trip or SIGINT/SIGTERM cancels the phase's tasks, which
stops pacing and in-flight sends at once.
"""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from phase5site import __version__
from phase5site.engine.breaker import RollingErrorWindow, Trip, check_client, check_server
from phase5site.engine.clock import SystemClock, WallAxis, utc_compact, utc_timestamp
from phase5site.engine.load import PhaseLoad
from phase5site.engine.mix import RequestMix, mix_seed, prepare
from phase5site.engine.outcome import is_error
from phase5site.engine.runfiles import RunFiles
from phase5site.engine.sampler import (
    NO_SOURCE_REASON,
    SamplePlan,
    completion_deadline,
    describe_na,
    sample_row,
    server_columns,
    wait_for_window_completion,
)
from phase5site.engine.httpclient import httptools_factory
from phase5site.engine.transport import TransportFactory, httpx_factory
from phase5site.engine.writer import WriterThread
from phase5site.errors import HostNotAllowed, Phase5Error, RunError, TargetError, UsageError
from phase5site.runspec import LoadedSpec
from phase5site.runspec.models import PhaseSpec, TargetSpec

TICK_S = 0.25
FLUSH_EVERY_S = 0.5
STATUS_EVERY_S = 1.0
FLAG_SWITCH_WAIT_S = 30.0  # longest wait for the embedded target to answer its admin page


class ProgressSink(Protocol):
    """Receives the status snapshot (the content of status.json) every second."""

    def update(self, status: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    status: str  # completed | interrupted | aborted | failed
    exit_reason: str | None = None
    signal: int | None = None


def _client_factory(target: TargetSpec) -> TransportFactory:
    """The spec's choice of HTTP client for the load workers (``target.client``)."""
    if target.client == "httpx":
        return httpx_factory(target.timeout)
    return httptools_factory(target.timeout)  # "httptools", or "raw", its older name


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


def run_spec(
    loaded: LoadedSpec,
    *,
    results_dir: Path,
    only_phases: list[str] | None = None,
    breaker: bool = True,
    progress: ProgressSink | None = None,
    transport_factory: TransportFactory | None = None,
) -> RunOutcome:
    """Run the spec's phases; return where the results are and how the run ended."""
    check_allowed_host(loaded.spec.target)
    phases = select_phases(loaded, only_phases)
    run = _Run(loaded, Path(results_dir), phases, breaker=breaker, progress=progress,
               transport_factory=transport_factory)
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


@dataclass
class _Live:
    """What the heartbeat reports about the phase now running."""

    load: PhaseLoad | None = None
    phase: PhaseSpec | None = None
    ordinal: int = 0
    start_mono: float = 0.0
    last_sent: int = 0
    last_at: float = 0.0
    reported_drops: int = 0
    finished: bool = False  # the phase ended; the heartbeat stops repeating its last line
    seen_errors: set[str] = field(default_factory=set)
    phase_tasks: list[asyncio.Task] = field(default_factory=list)


class _Run:
    def __init__(
        self,
        loaded: LoadedSpec,
        results_dir: Path,
        phases: list[PhaseSpec],
        *,
        breaker: bool,
        progress: ProgressSink | None,
        transport_factory: TransportFactory | None,
    ) -> None:
        self.loaded = loaded
        self.spec = loaded.spec
        self.results_dir = results_dir
        self.phases = phases
        self.breaker_on = breaker and self.spec.circuit_breaker.enabled
        self.breaker_flag = breaker
        self.progress = progress
        # The lean asyncio transport is the default: httpx costs ~1 ms of CPU per request
        # (bench/load_fidelity.py); httpx_factory stays available through transport_factory.
        self.transport_factory = transport_factory or _client_factory(self.spec.target)
        self.clock = SystemClock()
        self.axis = WallAxis()
        self.window = RollingErrorWindow(window_s=self.spec.circuit_breaker.window)
        self.live = _Live()
        self.stop_status: str | None = None
        self.exit_reason: str | None = None
        self.signal: int | None = None
        self.pending_events: list[tuple[str, str, float, str | None, dict | None]] = []
        self.sources: list[Any] = []
        self.target: Any = None
        self.target_count_cache_miss = False  # the simulator starts with the flag off
        self.base_url: str = ""
        bearer = self.spec.target.auth.bearer
        self.bearer = bearer.get_secret_value() if bearer is not None else None
        self._flush_lock = asyncio.Lock()

    # --- time -----------------------------------------------------------------------------

    def now_wall(self) -> float:
        return self.axis.wall(self.clock.monotonic())

    # --- lifecycle ------------------------------------------------------------------------

    async def execute(self) -> RunOutcome:
        # Installed before anything else: a Ctrl-C while the run folder and its database are
        # being created must end the run 'interrupted' like any other, instead of reaching
        # asyncio.run's own SIGINT handler (task cancelled, KeyboardInterrupt, run 'failed').
        restore_signals = self._install_signals()
        try:
            return await self._execute()
        finally:
            restore_signals()

    async def _execute(self) -> RunOutcome:
        from phase5site.store import RequestRows, RunWriter

        self.rows = RequestRows()
        started_at = self.now_wall()
        self.run_dir = make_run_dir(self.results_dir, self.spec.name, started_at)
        self.files = RunFiles(self.run_dir, self.loaded.secrets)
        self.writer_thread = WriterThread()
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
            await self._start_target()
            await self._event("run_start", f"run {self.run_dir.name} started against {self.base_url}",
                              data={"phases": [p.name for p in self.phases], "breaker": self.breaker_on,
                                    "base_url": self.base_url, "embedded": self.target is not None,
                                    "target_pid": self.target.pid if self.target is not None else None})
            await self._record_scheduled_faults()
            if not self.breaker_on:
                await self._warn_breaker_off()
            self.sources = self._make_sources()
            # Everything allocated so far (imports, spec, DuckDB, pyarrow) lives for the whole
            # run; freezing it keeps full garbage collections from scanning it, which otherwise
            # pause the event loop for milliseconds and show up as send lag.
            gc.freeze()
            ticker = asyncio.create_task(self._tick())
            for ordinal, phase in enumerate(self.phases):
                if self.stop_status is not None:
                    break
                await self._run_phase(phase, ordinal)
            status = self.stop_status or "completed"
        except Phase5Error as error:
            status, self.exit_reason = "failed", self.files.clean(str(error))
            await self._record_failure(error)
            raise
        except Exception as error:  # noqa: BLE001 - a run must end with a status, not a crash
            status, self.exit_reason = "failed", self.files.clean(f"{type(error).__name__}: {error}")
            await self._record_failure(error)
        finally:
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
            gc.unfreeze()
            await self._finish(status)
        return RunOutcome(self.run_dir, status, self.exit_reason, self.signal)

    async def _record_failure(self, error: BaseException) -> None:
        self.files.load(self.now_wall(), f"run failed: {self.exit_reason}")
        self.files.load(self.now_wall(), "".join(traceback.format_exception(error)).rstrip())
        await self._event("error", self.exit_reason or "failed")

    async def _finish(self, status: str) -> None:
        ended_at = self.now_wall()
        try:
            await self._flush_rows()
            await self._write_pending_events()
            await self._event("run_end", f"run ended: {status}", data={"exit_reason": self.exit_reason})
        finally:
            for source in self.sources:
                try:
                    await source.aclose()
                except Exception:  # noqa: BLE001 - closing must not hide the run's status
                    pass
            if self.target is not None:
                await asyncio.to_thread(self.target.stop)
            self.writer_thread.call_sync(self.writer.finish, status, ended_at=ended_at,
                                         exit_reason=self.exit_reason)
            self.writer_thread.call_sync(self.writer.close)
            self.writer_thread.shutdown()
            self.files.load(ended_at, f"run {status}" + (f": {self.exit_reason}" if self.exit_reason else ""))
            self._heartbeat(final_status=status)
            self.files.close()

    def _install_signals(self) -> Callable[[], None]:
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
                installed.append(signum)
            except (ValueError, RuntimeError, NotImplementedError):
                pass  # not the main thread: the caller handles signals

        def restore() -> None:
            for signum in installed:
                loop.remove_signal_handler(signum)

        return restore

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        self.signal = signum
        self.request_stop("interrupted", f"{name} received", "signal", {"signal": signum})

    def request_stop(self, status: str, reason: str, kind: str, data: dict | None) -> None:
        """Stop the load now: cancel pacing and in-flight sends; the phase records the end."""
        if self.stop_status is not None:
            return
        self.stop_status, self.exit_reason = status, reason
        phase = self.live.phase.name if self.live.phase else None
        self.pending_events.append((kind, reason, self.now_wall(), phase, data))
        files: RunFiles | None = getattr(self, "files", None)  # None while the run is set up
        if files is not None:
            files.load(self.now_wall(), f"stopping: {reason}")
        for task in self.live.phase_tasks:
            task.cancel()

    # --- target and sources ---------------------------------------------------------------

    async def _start_target(self) -> None:
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
            await self._event("fault", f"{fault.kind} scheduled at +{fault.at:g}s for {fault.duration:g}s",
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
        from phase5site.metrics import make_sources

        headers = {"Authorization": f"Bearer {self.bearer}"} if self.bearer else {}
        sources = list(make_sources(self.spec.metrics, scrape_url=self._scrape_url(), headers=headers))
        # The primary source (the one metrics.csv carries) is Prometheus when both are used.
        sources.sort(key=lambda s: 0 if s.name == "prometheus" else 1)
        return sources

    # --- one phase ------------------------------------------------------------------------

    async def _run_phase(self, phase: PhaseSpec, ordinal: int) -> None:
        plan = SamplePlan.of(phase)
        flags = self.spec.effective_flags(phase)
        seed = mix_seed(self.spec.name, phase.name)
        entries = prepare(self.spec.target.requests, base_url=self.base_url, bearer=self.bearer)
        mix = RequestMix(entries, [r.weight for r in self.spec.target.requests], seed=seed)
        load = PhaseLoad(
            phase=phase.name, rate=phase.rate, concurrency=phase.concurrency,
            duration_s=phase.planned_duration_s, mix=mix, transport_factory=self.transport_factory,
            sink_provider=lambda: self.rows, axis=self.axis, clock=self.clock,
            on_result=self._on_result,
        )
        load.prepare()
        await self._set_target_flags(phase, flags)
        if plan.count:
            await self._open_sources(phase, plan)
        start = self.clock.monotonic()
        await self.writer_thread.call(
            self.writer.begin_phase, phase.name, ordinal=ordinal, rate=phase.rate,
            concurrency=phase.concurrency, planned_duration_s=phase.planned_duration_s,
            samples=plan.count, interval_s=plan.interval_s, observe=phase.observe,
            flags=flags.model_dump(), started_at=self.axis.wall(start),
        )
        message = (f"phase {phase.name} started: {phase.rate:g} req/s, {phase.concurrency} in flight, "
                   f"{phase.planned_duration_s:g}s, {plan.count} samples")
        self.files.load(self.axis.wall(start), message)
        await self._event("phase_start", message, phase=phase.name, at=self.axis.wall(start))
        self.live = _Live(load=load, phase=phase, ordinal=ordinal, start_mono=start, last_at=start)
        # Sends start half a period after the phase start, so no request is intended exactly
        # on a sample boundary: each window (t_{k-1}, t_k] holds exactly rate x interval requests.
        tasks = [asyncio.create_task(load.run(start + 0.5 / phase.rate))]
        if plan.count:
            tasks.append(asyncio.create_task(self._sample_phase(phase, plan, flags, load, start)))
        self.live.phase_tasks = tasks
        if self.stop_status is not None:  # a signal arrived while the phase was being set up
            for task in tasks:
                task.cancel()
        await self._await_phase(tasks)
        await self._end_phase(phase, load)

    async def _set_target_flags(self, phase: PhaseSpec, flags: Any) -> None:
        """Run the simulator with the phase's service flags. Its admin page shares the
        service's listener, so during a scheduled outage the switch waits (bounded) for the
        outage to end; an unchanged flag needs no call at all."""
        wanted = flags.COUNT_CACHE_MISS_AS_FALLBACK
        if self.target is None or wanted == self.target_count_cache_miss:
            return
        deadline = self.clock.monotonic() + FLAG_SWITCH_WAIT_S
        waiting_told = False
        while True:
            try:
                await asyncio.to_thread(self.target.set_flags, count_cache_miss_as_fallback=wanted)
            except TargetError:
                if self.stop_status is not None:
                    return  # the phase is cancelled as soon as it starts
                if self.clock.monotonic() >= deadline:
                    raise
                if not waiting_told:
                    waiting_told = True
                    self.files.load(self.now_wall(), f"phase {phase.name}: the embedded target does not "
                                    "answer (outage?); waiting to switch COUNT_CACHE_MISS_AS_FALLBACK")
                await asyncio.sleep(0.25)
                continue
            self.target_count_cache_miss = wanted
            return

    async def _open_sources(self, phase: PhaseSpec, plan: SamplePlan) -> None:
        """Take each source's baseline at the phase start; say how the phase is observed."""
        opened_at = self.now_wall()
        if not self.sources:
            self.files.observe(opened_at, f"phase={phase.name} {plan.count} samples x "
                               f"{plan.interval_s:g}s, client side only (metrics source none)")
        for source in self.sources:
            answers = await source.open(opened_at)
            self.files.raw(opened_at, f"phase={phase.name} baseline source={source.name}", answers)
            self.files.observe(opened_at, f"phase={phase.name} {plan.count} samples x "
                               f"{plan.interval_s:g}s, source {source.name} opened "
                               f"({len(answers)} raw answers)")
            opened_at = self.now_wall()

    async def _await_phase(self, tasks: list[asyncio.Task]) -> None:
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            if self.stop_status is None:
                raise
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result

    async def _end_phase(self, phase: PhaseSpec, load: PhaseLoad) -> None:
        ended_at = self.now_wall()
        status = self.stop_status or "completed"
        stats = load.stats
        await self._flush_rows()
        await self._write_pending_events()
        await self._report_drops(load, ended_at)
        await self.writer_thread.call(
            self.writer.end_phase, phase.name, ended_at=ended_at, status=status,
            requests_sent=stats.sent, dropped=stats.dropped,
        )
        summary = (f"phase {phase.name} {status}: planned {stats.planned}, sent {stats.sent}, "
                   f"dropped {stats.dropped}, cancelled in flight {stats.cancelled}, "
                   f"cancelled while queued {stats.cancelled_queued}, "
                   f"outcomes {dict(sorted(stats.outcomes.items()))}")
        if stats.unexpected_errors:
            summary += (f"; {stats.unexpected_errors} sends failed unexpectedly (counted as "
                        f"connect_error), last: {stats.last_unexpected_error}")
        self.files.load(ended_at, summary)
        await self._event("phase_end", summary, phase=phase.name, at=ended_at, data={
            "status": status, "planned": stats.planned, "sent": stats.sent, "dropped": stats.dropped,
            "cancelled_in_flight": stats.cancelled, "cancelled_queued": stats.cancelled_queued,
            "outcomes": dict(stats.outcomes)})
        self._heartbeat()
        self.live.finished = True

    # --- sampling -------------------------------------------------------------------------

    async def _sample_phase(self, phase: PhaseSpec, plan: SamplePlan, flags: Any,
                            load: PhaseLoad, start: float) -> None:
        assert plan.interval_s is not None
        for sample_num in range(1, plan.count + 1):
            boundary = start + sample_num * plan.interval_s  # absolute: no drift across samples
            await asyncio.sleep(max(0.0, boundary - self.clock.monotonic()))
            window_start = self.axis.wall(start + (sample_num - 1) * plan.interval_s)
            window_end = self.axis.wall(boundary)
            results = []
            for source in self.sources:
                result = await source.sample(window_start, window_end, flags)
                self.files.raw(self.now_wall(), f"phase={phase.name} sample={sample_num} "
                               f"source={source.name} window_end={utc_timestamp(window_end)}", result.raw)
                results.append(result)
            deadline = completion_deadline(
                boundary, timeout_s=self.spec.target.timeout, rate=phase.rate,
                concurrency=phase.concurrency,
                next_window_end=boundary + plan.interval_s if sample_num < plan.count else None)
            if self._server_trip_pending(results):
                deadline = boundary  # stop now: the load must not run on while requests finish
            complete = await wait_for_window_completion(
                load.oldest_outstanding, boundary, deadline, self.clock.monotonic)
            await self._flush_rows()
            client = await self.writer_thread.call(self.writer.client_window, phase.name,
                                                   window_start, window_end)
            await self._store_samples(phase, sample_num, window_start, window_end, results, client,
                                      complete)

    async def _store_samples(self, phase: PhaseSpec, sample_num: int, window_start: float,
                             window_end: float, results: list[Any], client: dict, complete: bool) -> None:
        from phase5site.store.csv_v3 import append_csv_row

        timestamp = utc_timestamp(window_end)
        if not results:
            reasons = dict.fromkeys(server_columns(), NO_SOURCE_REASON)
            rows = [("none", {}, reasons)]
        else:
            # NA reasons quote source errors, which name the metrics URL: redact them like
            # every other line, since the samples table (and the site) shows them.
            rows = [(r.source, r.values, {column: self.files.clean(reason)
                                          for column, reason in r.na_reasons.items()})
                    for r in results]
        server_trip: Trip | None = None
        for index, (source, values, reasons) in enumerate(rows):
            row = sample_row(phase=phase.name, sample_num=sample_num, source=source, timestamp=timestamp,
                             window_start=window_start, window_end=window_end, values=values,
                             na_reasons=reasons, client=client)
            await self.writer_thread.call(self.writer.add_sample, row)
            if index == 0:
                await asyncio.to_thread(append_csv_row, self.files.metrics_csv, row)
            self._log_sample(phase.name, sample_num, row, client, complete)
            if row["na_reasons"] and source != "none":
                await self._event("na", f"sample {sample_num} ({source}): {describe_na(row['na_reasons'])}",
                                  phase=phase.name, data=row["na_reasons"])
            if self.breaker_on and source != "none" and server_trip is None:
                server_trip = check_server(values, self.spec.circuit_breaker)
        # Tripped only after every source's row is stored: the trip cancels this task.
        if server_trip is not None and self.stop_status is None:
            self._trip(server_trip, side="server")

    def _log_sample(self, phase: str, sample_num: int, row: dict, client: dict, complete: bool) -> None:
        at = self.now_wall()
        p95 = client.get("client_p95_ms")
        self.files.observe(at, (
            f"phase={phase} sample={sample_num} source={row['source']} window_end={row['timestamp']} "
            f"server: success={_fmt(row.get('http_success_rate'))} p95_s={_fmt(row.get('p95_latency'))} "
            f"error_rate={_fmt(row.get('error_rate'))} eff_fallback={_fmt(row.get('effective_fallback_ratio'))} "
            f"client: requests={client.get('client_requests')} p95_ms={_fmt(p95)} "
            f"success={_fmt(client.get('client_success_rate'))} dropped={client.get('dropped')}"))
        if row["na_reasons"]:
            self.files.observe(at, f"phase={phase} sample={sample_num} {describe_na(row['na_reasons'])}")
        if not complete:
            self.files.observe(at, f"phase={phase} sample={sample_num} client columns exclude requests "
                               "of the window still queued or in flight when the wait for them ended")

    # --- breaker --------------------------------------------------------------------------

    def _on_result(self, done_mono: float, outcome: str) -> None:
        self.window.record(done_mono, error=is_error(outcome))

    def _server_trip_pending(self, results: list[Any]) -> bool:
        if not self.breaker_on or self.stop_status is not None:
            return False
        return any(check_server(r.values, self.spec.circuit_breaker) is not None for r in results)

    def _trip(self, trip: Trip, *, side: str) -> None:
        self.request_stop("aborted", f"circuit breaker ({side}): {trip.reason}", "breaker_trip",
                          {"side": side, **trip.values})

    async def _warn_breaker_off(self) -> None:
        why = "--no-breaker given" if not self.breaker_flag else "circuit_breaker.enabled is false"
        message = f"circuit breaker DISABLED ({why}): nothing stops the load if the service suffers"
        self.files.load(self.now_wall(), f"WARNING {message}")
        await self._event("warning", message)

    # --- ticker: breaker checks, row flushes, heartbeat ------------------------------------

    async def _tick(self) -> None:
        try:
            await self._tick_forever()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - without the ticker nothing guards the load
            reason = self.files.clean(f"the run's ticker failed: {type(error).__name__}: {error}")
            self.files.load(self.now_wall(), "".join(traceback.format_exception(error)).rstrip())
            self.request_stop("failed", reason, "error", None)

    async def _tick_forever(self) -> None:
        next_flush = next_status = self.clock.monotonic()
        while True:
            now = self.clock.monotonic()
            if self.breaker_on and self.stop_status is None and self.live.load is not None:
                trip = check_client(self.window, now, self.spec.circuit_breaker)
                if trip is not None:
                    self._trip(trip, side="client")
            if now >= next_flush:
                next_flush = now + FLUSH_EVERY_S
                await self._flush_rows()
            if now >= next_status:
                next_status = now + STATUS_EVERY_S
                self._heartbeat()
                await self._write_pending_events()
            await asyncio.sleep(TICK_S)

    async def _flush_rows(self) -> None:
        from phase5site.store import RequestRows

        async with self._flush_lock:
            if len(self.rows) == 0:
                return
            batch, self.rows = self.rows, RequestRows()
            await self.writer_thread.call(self.writer.append_requests, batch)

    async def _report_drops(self, load: PhaseLoad, at: float) -> None:
        new = load.stats.dropped - self.live.reported_drops
        if new <= 0:
            return
        self.live.reported_drops = load.stats.dropped
        message = (f"{new} requests dropped in phase {load.phase} (total {load.stats.dropped}): "
                   f"more than one second of sends ({load.rate:g}) waited for a free slot")
        self.files.load(at, message)
        await self._event("drops", message, phase=load.phase, at=at,
                          data={"new": new, "total": load.stats.dropped})

    def snapshot(self, final_status: str | None = None) -> dict[str, Any]:
        live, now = self.live, self.clock.monotonic()
        status: dict[str, Any] = {
            "run_id": self.run_dir.name, "run_dir": str(self.run_dir), "name": self.spec.name,
            "status": final_status or "running", "updated_at": utc_timestamp(self.axis.wall(now)) + " UTC",
            "pid": os.getpid(), "breaker": "on" if self.breaker_on else "off",
            "phases": [p.name for p in self.phases], "exit_reason": self.exit_reason,
        }
        load = live.load
        if load is None or live.phase is None:
            return status
        stats = load.stats
        dt = now - live.last_at
        achieved = (stats.sent - live.last_sent) / dt if dt > 0.05 else None
        if dt > 0.05:
            live.last_sent, live.last_at = stats.sent, now
        if live.finished or final_status is not None:
            # After the phase: the mean over the phase, not the (empty) last second.
            elapsed = min(max(now - live.start_mono, 1e-9), live.phase.planned_duration_s)
            achieved = stats.sent / elapsed
        p95 = stats.latency.quantile(0.95)
        status.update({
            "phase": live.phase.name, "phase_index": live.ordinal + 1,
            "elapsed_s": round(min(now - live.start_mono, live.phase.planned_duration_s), 1),
            "planned_s": live.phase.planned_duration_s, "target_rate": live.phase.rate,
            "achieved_rate": None if achieved is None else round(achieved, 1),
            "in_flight": stats.in_flight, "sent": stats.sent, "completed": stats.completed,
            "planned_requests": stats.planned, "dropped": stats.dropped,
            "errors": {k: v for k, v in sorted(stats.outcomes.items()) if k not in ("ok", "dropped")},
            "outcomes": dict(sorted(stats.outcomes.items())),
            "client_p95_ms": None if p95 is None else round(p95, 1),
        })
        return status

    def _heartbeat(self, final_status: str | None = None) -> None:
        status = self.snapshot(final_status)
        self.files.write_status(status)
        if self.live.finished and final_status is None:
            return  # between phases: status.json is fresh, nothing new to print
        if status.get("phase") and final_status is None:
            self.files.load(self.axis.wall(self.clock.monotonic()), _status_line(status))
        if self.progress is not None:
            try:
                self.progress.update(status)
            except Exception as error:  # noqa: BLE001 - a display must never stop the load
                # e.g. `phase5site run spec | head`: stdout closed. status.json and load.log
                # keep the progress; the measurement goes on.
                self.progress = None
                self.files.load(self.axis.wall(self.clock.monotonic()),
                                f"progress display failed ({type(error).__name__}: {error}); "
                                "see status.json and this log")

    # --- events and metadata --------------------------------------------------------------

    async def _event(self, kind: str, message: str, *, phase: str | None = None,
                     at: float | None = None, data: dict | None = None) -> None:
        await self.writer_thread.call(self.writer.add_event, kind, self.files.clean(message),
                                      at=self.now_wall() if at is None else at, phase=phase,
                                      data=_clean_data(data, self.files.clean))

    async def _write_pending_events(self) -> None:
        pending, self.pending_events = self.pending_events, []
        for kind, message, at, phase, data in pending:
            await self._event(kind, message, phase=phase, at=at, data=data)
        if self.live.load is not None and self.live.load.stats.dropped > self.live.reported_drops:
            await self._report_drops(self.live.load, self.now_wall())
        await self._report_first_errors()

    async def _report_first_errors(self) -> None:
        """An 'error' event the first time each failure outcome shows up in a phase (the
        totals are in the phase_end event): bounded, yet no failure kind goes unmentioned."""
        load = self.live.load
        if load is None:
            return
        for outcome, count in sorted(load.stats.outcomes.items()):
            if outcome in ("ok", "dropped") or count == 0 or outcome in self.live.seen_errors:
                continue
            self.live.seen_errors.add(outcome)
            message = f"first {outcome} responses in phase {load.phase} ({count} so far)"
            self.files.load(self.now_wall(), message)
            await self._event("error", message, phase=load.phase, data={"outcome": outcome, "count": count})

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
                "pacing": "open model, absolute schedule t0 + i/rate; backlog of one second, then drops",
            },
            "tool_version": __version__,
            "python": platform.python_version(),
            "environment": environment,
        }


def _status_line(status: dict[str, Any]) -> str:
    """One line per second for load.log and for a terminal that is not a TTY."""
    errors = ",".join(f"{k}={v}" for k, v in status.get("errors", {}).items()) or "0"
    achieved = status.get("achieved_rate")
    p95 = status.get("client_p95_ms")
    return (f"phase={status['phase']} t={status['elapsed_s']:.0f}/{status['planned_s']:g}s "
            f"rate={'NA' if achieved is None else f'{achieved:.1f}'}/{status['target_rate']:g} "
            f"sent={status['sent']} in_flight={status['in_flight']} dropped={status['dropped']} "
            f"errors={errors} p95_ms={'NA' if p95 is None else p95}")


def status_line(status: dict[str, Any]) -> str:
    """Public form of the per-second line (the CLI prints it when stdout is not a TTY)."""
    if not status.get("phase"):
        return f"run {status.get('run_id')} {status.get('status')}"
    return _status_line(status)


def _fmt(value: object) -> str:
    if value is None:
        return "NA"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _clean_data(data: dict | None, clean: Callable[[str], str]) -> dict | None:
    if data is None:
        return None
    return {key: clean(value) if isinstance(value, str) else value for key, value in data.items()}


__all__ = ["ProgressSink", "RunOutcome", "check_allowed_host", "run_spec", "status_line"]
