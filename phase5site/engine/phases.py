"""One phase of a run, on the parent's side: order the workers, sample, record the end.

The phase starts when every worker has its ``PhaseOrder``: the same schedule for all
(request ``k`` intended at ``t0 + k/rate``, sends starting half a period after the phase
start so no request sits on a sample boundary), split by execution segment. The parent
then samples (``sampleloop``) while the workers send, and waits for every worker's
``phase_done``. A stop cancels the sample task and tells the workers, which answer with
their last rows.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from phase5site.engine.mix import mix_seed, prepare
from phase5site.engine.pacer import backlog_capacity
from phase5site.engine.pool import share
from phase5site.engine.progress import PhaseProgress
from phase5site.engine.protocol import ClientChoice, PhaseOrder
from phase5site.engine.sampleloop import sample_phase, store_tail_sample
from phase5site.engine.sampler import SamplePlan
from phase5site.errors import TargetError
from phase5site.runspec.models import PhaseSpec

if TYPE_CHECKING:
    from phase5site.engine.context import RunContext as Run

FLAG_SWITCH_WAIT_S = 30.0  # longest wait for the embedded target to answer its admin page


def phase_orders(run: Run, phase: PhaseSpec, start: float, workers: int) -> list[PhaseOrder]:
    """Every worker's segment of ``phase``, starting half a period after ``start``."""
    spec = run.spec
    entries = tuple(prepare(spec.target.requests, base_url=run.base_url, bearer=run.bearer))
    backlog = backlog_capacity(phase.rate, spec.target.max_backlog)
    client = ClientChoice(kind=spec.target.client, timeout_s=spec.target.timeout,
                          max_body_bytes=spec.target.max_body_bytes)
    return [
        PhaseOrder(
            phase=phase.name, rate=phase.rate, concurrency=share(phase.concurrency, workers, index),
            duration_s=phase.planned_duration_s, start_mono=start + 0.5 / phase.rate,
            end_mono=start + phase.planned_duration_s, offset=index, stride=workers,
            entries=entries, weights=tuple(r.weight for r in spec.target.requests),
            seed=mix_seed(spec.name, phase.name), wall_offset_s=run.axis.offset_s,
            max_backlog=max(1, share(backlog, workers, index)), client=client,
            secrets=run.files.secrets,
        )
        for index in range(workers)
    ]


async def run_phase(run: Run, phase: PhaseSpec, ordinal: int) -> None:
    plan = SamplePlan.of(phase)
    flags = run.spec.effective_flags(phase)
    workers = run.pool.count
    await set_target_flags(run, phase, flags)
    if plan.count:
        await open_sources(run, phase, plan)
    progress = PhaseProgress(phase=phase.name, rate=phase.rate, workers=workers)
    run.live_phase(progress, phase, ordinal)
    start = run.clock.monotonic()
    await run.writer_thread.call(
        run.writer.begin_phase, phase.name, ordinal=ordinal, rate=phase.rate,
        concurrency=phase.concurrency, planned_duration_s=phase.planned_duration_s,
        samples=plan.count, interval_s=plan.interval_s, observe=phase.observe,
        flags=flags.model_dump(), started_at=run.axis.wall(start), workers=workers,
        max_backlog=backlog_capacity(phase.rate, run.spec.target.max_backlog),
    )
    message = (f"phase {phase.name} started: {phase.rate:g} req/s, {phase.concurrency} in flight, "
               f"{phase.planned_duration_s:g}s, {plan.count} samples, {workers} load worker(s)")
    run.files.load(run.axis.wall(start), message)
    await run.event("phase_start", message, phase=phase.name, at=run.axis.wall(start))
    run.live.start_mono = run.live.last_at = start
    run.live.sent_history.clear()  # a heartbeat during the setup above must not count as a reading
    if run.stop.requested:  # a signal arrived while the phase was being set up
        await end_phase(run, phase, progress)
        return
    run.pool.order(phase_orders(run, phase, start, workers))
    tasks: list[asyncio.Task] = [asyncio.create_task(progress.finished.wait())]
    if plan.count:
        tasks.append(asyncio.create_task(sample_phase(run, phase, plan, flags, progress, start)))
    run.live.phase_tasks = tasks
    await await_phase(run, tasks, progress)
    await end_phase(run, phase, progress)


async def await_phase(run: Run, tasks: list[asyncio.Task], progress: PhaseProgress) -> None:
    """Until the workers are done and the samples taken, or a stop; a stop still waits
    (bounded) for every worker's last rows."""
    try:
        await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        if not run.stop.requested:
            raise
    finally:
        for task in tasks[1:]:
            task.cancel()
        results = await asyncio.gather(*tasks[1:], return_exceptions=True)
    if run.stop.requested and not progress.finished.is_set():
        await run.wait_for_workers(progress)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


async def end_phase(run: Run, phase: PhaseSpec, progress: PhaseProgress) -> None:
    ended_at = run.now_wall()
    status = run.stop.status or "completed"
    totals = progress.totals()
    await run.flush_rows()
    if run.stop.requested and SamplePlan.of(phase).count:
        await store_tail_sample(run, phase, progress, ended_at)
    await run.write_pending_events()
    await run.report_drops(progress, ended_at)
    await run.writer_thread.call(
        run.writer.end_phase, phase.name, ended_at=ended_at, status=status,
        requests_sent=totals["sent"], dropped=totals["dropped"],
    )
    summary = (f"phase {phase.name} {status}: planned {totals['planned']}, sent {totals['sent']}, "
               f"dropped {totals['dropped']} ({totals['dropped_at_end']} not sent by the phase end), "
               f"cancelled in flight {totals['cancelled']}, "
               f"cancelled while queued {totals['cancelled_queued']}, outcomes {totals['outcomes']}")
    if totals["unexpected_errors"]:
        summary += (f"; {totals['unexpected_errors']} sends failed unexpectedly (counted as "
                    f"connect_error), last: {totals['last_unexpected_error']}")
    stop_ms = progress.stop_latency_ms(run.stop_sent_at) if run.stop_sent_at is not None else None
    if stop_ms is not None:
        summary += f"; the stop reached {progress.workers} load worker(s) within {stop_ms:.1f} ms"
    run.files.load(ended_at, summary)
    await run.event("phase_end", summary, phase=phase.name, at=ended_at, data={
        "status": status, "planned": totals["planned"], "sent": totals["sent"],
        "dropped": totals["dropped"], "dropped_at_end": totals["dropped_at_end"],
        "cancelled_in_flight": totals["cancelled"], "cancelled_queued": totals["cancelled_queued"],
        "outcomes": totals["outcomes"], "workers": progress.workers, "stop_latency_ms": stop_ms,
        "rows_received": progress.rows_received})
    run.heartbeat()
    run.live.finished = True


async def set_target_flags(run: Run, phase: PhaseSpec, flags: Any) -> None:
    """Run the simulator with the phase's service flags. Its admin page shares the
    service's listener, so during a scheduled outage the switch waits (bounded) for the
    outage to end; an unchanged flag needs no call at all."""
    wanted = flags.COUNT_CACHE_MISS_AS_FALLBACK
    if run.target is None or wanted == run.target_count_cache_miss:
        return
    deadline = run.clock.monotonic() + FLAG_SWITCH_WAIT_S
    waiting_told = False
    while True:
        try:
            await asyncio.to_thread(run.target.set_flags, count_cache_miss_as_fallback=wanted)
        except TargetError:
            if run.stop.requested:
                return  # the phase is cancelled as soon as it starts
            if run.clock.monotonic() >= deadline:
                raise
            if not waiting_told:
                waiting_told = True
                run.files.load(run.now_wall(), f"phase {phase.name}: the embedded target does not "
                               "answer (outage?); waiting to switch COUNT_CACHE_MISS_AS_FALLBACK")
            await asyncio.sleep(0.25)
            continue
        run.target_count_cache_miss = wanted
        return


async def open_sources(run: Run, phase: PhaseSpec, plan: SamplePlan) -> None:
    """Take each source's baseline at the phase start; say how the phase is observed."""
    opened_at = run.now_wall()
    if not run.sources:
        run.files.observe(opened_at, f"phase={phase.name} {plan.count} samples x "
                          f"{plan.interval_s:g}s, client side only (metrics source none)")
    for source in run.sources:
        answers = await source.open(opened_at)
        run.files.raw(opened_at, f"phase={phase.name} baseline source={source.name}", answers)
        run.files.observe(opened_at, f"phase={phase.name} {plan.count} samples x "
                          f"{plan.interval_s:g}s, source {source.name} opened "
                          f"({len(answers)} raw answers)")
        opened_at = run.now_wall()
