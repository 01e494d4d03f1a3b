"""The sample loop of an observed phase, on the parent: one sample per window.

At each boundary (an absolute schedule from the phase start) every metrics source is asked
for that window only; then the loop waits until every request intended in the window has a
row (the workers report their oldest unfinished request with every batch), flushes the rows
to the store and computes the window's client columns from them, adds the generator-health
columns (the workers' CPU and loop lag over the window, and whether the generator's own
send lag made the window generator-limited), stores one row per source and checks the
server side of the circuit breaker.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from phase5site.engine.breaker import Trip, check_server
from phase5site.engine.clock import utc_timestamp
from phase5site.engine.progress import PhaseProgress
from phase5site.engine.sampler import (
    NO_SOURCE_REASON,
    SamplePlan,
    completion_deadline,
    describe_na,
    sample_row,
    server_columns,
    wait_for_window_completion,
)
from phase5site.runspec.models import PhaseSpec

if TYPE_CHECKING:
    from phase5site.engine.context import RunContext as Run


def generator_columns(client: dict[str, Any], cpu_s: float, window_s: float,
                      loop_lag_max_ms: float | None, max_generator_lag_ms: float) -> dict[str, Any]:
    """The generator-health columns of one window (``columns.GENERATOR_COLUMNS``).

    ``client`` holds the store's own-lag figures of the window (``generator_lag_p99_ms``,
    ``generator_lag_max_ms``: send lag of requests that had a free slot when due).

    >>> generator_columns({"generator_lag_p99_ms": 12.0, "generator_lag_max_ms": 40.0},
    ...                   cpu_s=3.0, window_s=60.0, loop_lag_max_ms=2.5, max_generator_lag_ms=10.0)
    {'generator_lag_p99_ms': 12.0, 'generator_lag_max_ms': 40.0, 'generator_cpu_ratio': 0.05, \
'loop_lag_max_ms': 2.5, 'generator_limited': True}
    """
    lag_p99 = client.get("generator_lag_p99_ms")
    return {
        "generator_lag_p99_ms": lag_p99,
        "generator_lag_max_ms": client.get("generator_lag_max_ms"),
        "generator_cpu_ratio": cpu_s / window_s if window_s > 0 else None,
        "loop_lag_max_ms": loop_lag_max_ms,
        "generator_limited": None if lag_p99 is None else bool(lag_p99 > max_generator_lag_ms),
    }


async def sample_phase(run: Run, phase: PhaseSpec, plan: SamplePlan, flags: Any,
                       progress: PhaseProgress, start: float) -> None:
    assert plan.interval_s is not None
    cpu_before = 0.0
    progress.take_loop_lag()
    phase_end = start + phase.planned_duration_s
    for sample_num in range(1, plan.count + 1):
        boundary = start + sample_num * plan.interval_s  # absolute: no drift across samples
        await asyncio.sleep(max(0.0, boundary - run.clock.monotonic()))
        window_start = run.axis.wall(start + (sample_num - 1) * plan.interval_s)
        window_end = run.axis.wall(boundary)
        results = []
        for source in run.sources:
            result = await source.sample(window_start, window_end, flags)
            run.files.raw(run.now_wall(), f"phase={phase.name} sample={sample_num} "
                          f"source={source.name} window_end={utc_timestamp(window_end)}", result.raw)
            results.append(result)
        deadline = completion_deadline(
            boundary, timeout_s=run.spec.target.timeout, phase_end=phase_end,
            next_window_end=boundary + plan.interval_s if sample_num < plan.count else None)
        if server_trip_pending(run, results):
            deadline = boundary  # stop now: the load must not run on while requests finish
        complete = await wait_for_window_completion(
            progress.oldest_outstanding, boundary, deadline, run.clock.monotonic)
        cpu_now = progress.cpu_s()
        loop_lag = progress.take_loop_lag()
        await run.flush_rows()
        client = await run.writer_thread.call(run.writer.client_window, phase.name,
                                              window_start, window_end)
        client.update(generator_columns(client, cpu_now - cpu_before, window_end - window_start,
                                        loop_lag, run.spec.target.max_generator_lag * 1000.0))
        cpu_before = progress.cpu_sampled = cpu_now
        await store_samples(run, phase, sample_num, window_start, window_end, results, client, complete)


TAIL_REASON = ("the phase was stopped inside this window ({reason}): a partial last window, "
               "its client columns count every request stored after the last full sample; the "
               "service was not sampled")


async def store_tail_sample(run: Run, phase: PhaseSpec, progress: PhaseProgress, ended_at: float) -> bool:
    """After a stop, one last sample for the requests intended after the last stored window.

    Without it a stopped phase is judged on its full windows only: a breaker trip just after
    a boundary left every failing request out of the client rates, and the partial summary
    showed 0 % errors, PASS, beside an exit reason counting the errors (issue 13 item 3).
    The row has source ``none`` (server columns NA, with why) and the client columns of the
    window [last window end, phase end); it is not a CSV v3 sample, so metrics.csv keeps
    full windows only. Returns True when a row was stored.
    """
    last = await run.writer_thread.call(run.writer.last_sample_window, phase.name)
    sample_num, window_start = (last[0] + 1, last[1]) if last else (1, run.axis.wall(run.live.start_mono))  # type: ignore[arg-type]
    if ended_at <= window_start:
        return False
    client = await run.writer_thread.call(run.writer.client_window, phase.name, window_start, ended_at)
    if not client.get("client_requests"):
        return False
    client.update(generator_columns(client, progress.cpu_s() - progress.cpu_sampled, ended_at - window_start,
                                    progress.take_loop_lag(), run.spec.target.max_generator_lag * 1000.0))
    reason = run.files.clean(TAIL_REASON.format(reason=run.stop.reason or run.stop.status))
    row = sample_row(phase=phase.name, sample_num=sample_num, source="none",
                     timestamp=utc_timestamp(ended_at), window_start=window_start, window_end=ended_at,
                     values={}, na_reasons=dict.fromkeys(server_columns(), reason), client=client)
    await run.writer_thread.call(run.writer.add_sample, row)
    run.files.observe(run.now_wall(), (
        f"phase={phase.name} sample={sample_num} partial window after the stop: "
        f"{ended_at - window_start:.2f}s, client: requests={client.get('client_requests')} "
        f"success={_fmt(client.get('client_success_rate'))} error={_fmt(client.get('client_error_rate'))}"))
    return True


async def store_samples(run: Run, phase: PhaseSpec, sample_num: int, window_start: float,
                        window_end: float, results: list[Any], client: dict, complete: bool) -> None:
    from phase5site.store.csv_v3 import append_csv_row

    timestamp = utc_timestamp(window_end)
    if not results:
        reasons = dict.fromkeys(server_columns(), NO_SOURCE_REASON)
        rows = [("none", {}, reasons, None)]
    else:
        # NA reasons quote source errors, which name the metrics URL: redact them like
        # every other line, since the samples table (and the site) shows them.
        rows = [(r.source, r.values, {column: run.files.clean(reason)
                                      for column, reason in r.na_reasons.items()},
                 r.server_window.columns() if r.server_window else None)
                for r in results]
    server_trip: Trip | None = None
    for index, (source, values, reasons, server_window) in enumerate(rows):
        row = sample_row(phase=phase.name, sample_num=sample_num, source=source, timestamp=timestamp,
                         window_start=window_start, window_end=window_end, values=values,
                         na_reasons=reasons, client=client, server_window=server_window)
        await run.writer_thread.call(run.writer.add_sample, row)
        if index == 0:
            await asyncio.to_thread(append_csv_row, run.files.metrics_csv, row)
            run.screen.record(phase.name, sample_num, row, run.spec.slo)
        log_sample(run, phase.name, sample_num, row, client, complete)
        if row["na_reasons"] and source != "none":
            await run.event("na", f"sample {sample_num} ({source}): {describe_na(row['na_reasons'])}",
                            phase=phase.name, data=row["na_reasons"])
        if run.breaker_on and source != "none" and server_trip is None:
            server_trip = check_server(values, run.spec.circuit_breaker)
    if client.get("generator_limited"):
        await run.event("warning", generator_limited_message(client, window_end, run), phase=phase.name,
                        data={"sample_num": sample_num, "generator_lag_p99_ms": client.get("generator_lag_p99_ms"),
                              "generator_lag_max_ms": client.get("generator_lag_max_ms")})
    # Tripped only after every source's row is stored: the trip cancels this task.
    if server_trip is not None and not run.stop.requested:
        run.trip(server_trip, side="server")


def generator_limited_message(client: dict, window_end: float, run: Run) -> str:
    return (f"window ending {utc_timestamp(window_end)} UTC is generator-limited: the load generator's "
            f"own send lag (slot free) had p99 {client.get('generator_lag_p99_ms'):.1f} ms and max "
            f"{client.get('generator_lag_max_ms'):.1f} ms (limit {run.spec.target.max_generator_lag * 1000:g} ms): "
            "the machine was busy; its client latency is not a verdict on the service")


def server_trip_pending(run: Run, results: list[Any]) -> bool:
    if not run.breaker_on or run.stop.requested:
        return False
    return any(check_server(r.values, run.spec.circuit_breaker) is not None for r in results)


def log_sample(run: Run, phase: str, sample_num: int, row: dict, client: dict, complete: bool) -> None:
    at = run.now_wall()
    p95 = client.get("client_p95_ms")
    run.files.observe(at, (
        f"phase={phase} sample={sample_num} source={row['source']} window_end={row['timestamp']} "
        f"server: success={_fmt(row.get('http_success_rate'))} p95_s={_fmt(row.get('p95_latency'))} "
        f"error_rate={_fmt(row.get('error_rate'))} eff_fallback={_fmt(row.get('effective_fallback_ratio'))} "
        f"client: requests={client.get('client_requests')} p95_ms={_fmt(p95)} "
        f"success={_fmt(client.get('client_success_rate'))} dropped={client.get('dropped')} "
        f"generator: own_lag_p99_ms={_fmt(client.get('generator_lag_p99_ms'))} "
        f"cpu={_fmt(client.get('generator_cpu_ratio'))} loop_lag_ms={_fmt(client.get('loop_lag_max_ms'))}"))
    if row["na_reasons"]:
        run.files.observe(at, f"phase={phase} sample={sample_num} {describe_na(row['na_reasons'])}")
    if not complete:
        run.files.observe(at, f"phase={phase} sample={sample_num} client columns exclude requests "
                          "of the window still queued or in flight when the wait for them ended")


def _fmt(value: object) -> str:
    if value is None:
        return "NA"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
