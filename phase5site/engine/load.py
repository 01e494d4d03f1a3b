"""The load of one phase: a pacer task feeding ``concurrency`` workers through a bounded queue.

Layout (why it never collapses): the pacer hands each due request to an ``asyncio.Queue``
whose size is one second of sends; ``concurrency`` workers, each with a transport of its
own, take requests from it. So at most ``concurrency`` requests are in flight, a request
waiting for a worker keeps its intended time (its ``latency_ms`` includes the wait; its
``service_ms`` does not), and when the queue is full the request is dropped and recorded
with outcome ``dropped`` — the shortfall is counted, never hidden.

Stopping: cancelling ``PhaseLoad.run`` stops pacing and cancels in-flight sends at once;
the number cancelled is kept in ``LoadStats.cancelled``, and the number still waiting for a
slot in ``LoadStats.cancelled_queued`` (neither gets a row).
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from phase5site.engine.clock import Clock, SystemClock, WallAxis
from phase5site.engine.mix import PreparedRequest, RequestMix
from phase5site.engine.outcome import classify
from phase5site.engine.pacer import Pacer, backlog_capacity
from phase5site.engine.transport import SendResult, Transport, TransportFactory


class RowSink(Protocol):
    """Where request rows go (the store's ``RequestRows`` has this shape)."""

    def append(
        self,
        phase: str,
        seq: int,
        request_name: str,
        intended_at: float,
        sent_at: float | None,
        latency_ms: float | None,
        service_ms: float | None,
        status: int | None,
        outcome: str,
        bytes: int | None,
    ) -> None: ...


class LatencyHistogram:
    """Log-bucketed latency counts (2% wide buckets) for a live p95; O(1) memory per phase.

    Only for the progress display; stored verdicts use the exact request rows.

    >>> histogram = LatencyHistogram()
    >>> for latency_ms in range(1, 101):
    ...     histogram.add(float(latency_ms))
    >>> 93 < histogram.quantile(0.95) < 97
    True
    """

    _GROWTH = math.log(1.02)

    def __init__(self) -> None:
        self._counts: Counter[int] = Counter()
        self.count = 0

    def add(self, latency_ms: float) -> None:
        index = math.floor(math.log(max(latency_ms, 0.001)) / self._GROWTH)
        self._counts[index] += 1
        self.count += 1

    def quantile(self, q: float) -> float | None:
        if self.count == 0:
            return None
        rank = q * self.count
        seen = 0
        for index in sorted(self._counts):
            seen += self._counts[index]
            if seen >= rank:
                return math.exp((index + 0.5) * self._GROWTH)
        return None


@dataclass
class LoadStats:
    """Live counters of one phase, read by the status heartbeat and the display."""

    phase: str
    rate: float
    planned: int
    sent: int = 0
    completed: int = 0
    dropped: int = 0
    in_flight: int = 0
    cancelled: int = 0  # in flight when the phase was stopped (no row)
    cancelled_queued: int = 0  # waiting for a slot when the phase was stopped (no row)
    unexpected_errors: int = 0
    last_unexpected_error: str | None = None
    outcomes: Counter[str] = field(default_factory=Counter)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    send_lag_ms: LatencyHistogram = field(default_factory=LatencyHistogram)


ResultHook = Callable[[float, str], None]  # (completed at, monotonic; outcome)


class PhaseLoad:
    """Paces one phase and records a row for every intended request."""

    def __init__(
        self,
        *,
        phase: str,
        rate: float,
        concurrency: int,
        duration_s: float,
        mix: RequestMix,
        transport_factory: TransportFactory,
        sink_provider: Callable[[], RowSink],
        axis: WallAxis,
        clock: Clock | None = None,
        on_result: ResultHook | None = None,
    ) -> None:
        self.phase = phase
        self.rate = rate
        self.concurrency = concurrency
        self.duration_s = duration_s
        self.mix = mix
        self.transport_factory = transport_factory
        self.sink_provider = sink_provider  # called per row: the runner swaps buffers on flush
        self.axis = axis
        self.clock = clock or SystemClock()
        self.on_result = on_result
        self.pacer: Pacer | None = None
        self._outstanding: dict[int, float] = {}  # seq -> intended (monotonic), queued or in flight
        self._transports: list[Transport] = []
        self.stats = LoadStats(phase=phase, rate=rate, planned=0)

    def oldest_outstanding(self) -> float | None:
        """Intended time (monotonic) of the oldest request still queued or in flight."""
        return min(self._outstanding.values(), default=None)

    def prepare(self) -> None:
        """Create the workers' transports before the phase clock starts (an httpx client
        takes milliseconds to build; built inside the phase it would delay the first sends)."""
        if not self._transports:
            self._transports = [self.transport_factory() for _ in range(self.concurrency)]

    async def run(self, start_mono: float) -> None:
        """Send the phase's requests from ``start_mono``; returns when all have completed."""
        self.pacer = Pacer(rate=self.rate, start_s=start_mono, duration_s=self.duration_s)
        self.stats.planned = self.pacer.total
        queue: asyncio.Queue[tuple[int, float, PreparedRequest]] = asyncio.Queue(
            maxsize=backlog_capacity(self.rate)
        )
        self.prepare()
        transports, self._transports = self._transports, []
        workers = [asyncio.create_task(self._work(queue, t)) for t in transports]
        try:
            await self._pace(self.pacer, queue)
            await queue.join()
        finally:
            self.stats.cancelled_queued += queue.qsize()
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.gather(*(t.aclose() for t in transports), return_exceptions=True)
            self._outstanding.clear()

    async def _pace(self, pacer: Pacer, queue: asyncio.Queue) -> None:
        while True:
            now = self.clock.monotonic()
            for seq in pacer.due(now):
                intended = pacer.intended_at(seq)
                request = self.mix.draw()
                try:
                    queue.put_nowait((seq, intended, request))
                except asyncio.QueueFull:
                    self._drop(seq, intended, request)
                    continue
                self._outstanding[seq] = intended
            next_at = pacer.next_due_at()
            if next_at is None:
                return
            await asyncio.sleep(max(0.0, next_at - self.clock.monotonic()))

    def _drop(self, seq: int, intended: float, request: PreparedRequest) -> None:
        self.stats.dropped += 1
        self.stats.outcomes["dropped"] += 1
        self.sink_provider().append(
            self.phase, seq, request.name, self.axis.wall(intended),
            None, None, None, None, "dropped", None,
        )

    async def _work(self, queue: asyncio.Queue, transport: Transport) -> None:
        while True:
            seq, intended, request = await queue.get()
            sent = self.clock.monotonic()
            self.stats.sent += 1
            self.stats.in_flight += 1
            try:
                result = await transport.send(request)
            except asyncio.CancelledError:
                self.stats.cancelled += 1
                raise
            except Exception as error:  # noqa: BLE001 - a dead worker would stall the phase
                # A transport maps every expected failure itself; anything else still ends
                # this request as a transport failure, and is reported, instead of killing
                # the worker and leaving its queue undrained.
                self.stats.unexpected_errors += 1
                self.stats.last_unexpected_error = f"{type(error).__name__}: {error}"
                result = SendResult(status=None, bytes=None, error="connect_error")
            finally:
                self.stats.in_flight -= 1
            done = self.clock.monotonic()
            outcome = classify(result.status, result.error)
            latency_ms = (done - intended) * 1000.0
            self.sink_provider().append(
                self.phase, seq, request.name, self.axis.wall(intended), self.axis.wall(sent),
                latency_ms, (done - sent) * 1000.0, result.status, outcome, result.bytes,
            )
            self._outstanding.pop(seq, None)
            self.stats.completed += 1
            self.stats.outcomes[outcome] += 1
            self.stats.latency.add(latency_ms)
            self.stats.send_lag_ms.add((sent - intended) * 1000.0)
            if self.on_result is not None:
                self.on_result(done, outcome)
            queue.task_done()
