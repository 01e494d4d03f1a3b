"""The load of one phase in one process: a pacer task feeding ``concurrency`` slots through a
bounded queue. In a run, each load worker process runs one ``PhaseLoad`` for its segment of
the schedule (``offset``/``stride``, see ``pacer``); tests run one in-process.

Layout (why it never collapses): the pacer hands each due request to an ``asyncio.Queue``;
``concurrency`` slot tasks, each with a transport of its own, take requests from it. So at
most ``concurrency`` requests are in flight, and a request waiting for a slot keeps its
intended time (its ``latency_ms`` includes the wait; its ``service_ms`` does not).

Nothing is dropped silently. The queue holds up to ``max_backlog`` waiting requests (by
default ``max(30 s of sends, 10,000)``); a due request beyond it, or one still waiting when
the phase's time is up, is recorded with outcome ``dropped`` and, as ``latency_ms``, the
time it had waited: a censored latency (the real one is at least that), which the store
ranks above every sent request, so drops can only make percentiles and success worse.

Generator health: each row records whether a slot was free when the request fell due
(``slot_free``). A send lag (``sent_at - intended_at``) with a free slot is this process's
own delay (a busy host, a blocked loop); with every slot busy it is the service holding
requests back, which belongs in the latency.

Transport errors: a row keeps the error's kind as its outcome and the client's message in
``error`` (``outcome.error_text``: first line, the run's secrets redacted, bounded); the
message of each distinct raw text is made once (``ErrorTexts``), so an outage at thousands
of requests a second costs a dictionary lookup per failed request.

Stopping: cancelling ``PhaseLoad.run`` stops pacing and cancels in-flight sends at once;
the number cancelled is kept in ``LoadStats.cancelled``, and the number still waiting for a
slot in ``LoadStats.cancelled_queued`` (neither gets a row: the run was stopped, the
service did not fail them).
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from phase5site.engine.clock import Clock, SystemClock, WallAxis
from phase5site.engine.mix import PreparedRequest, RequestMix
from phase5site.engine.outcome import classify, describe, error_text
from phase5site.engine.pacer import Pacer, backlog_capacity
from phase5site.engine.transport import SendResult, Transport, TransportFactory

END_POLL_S = 0.01  # how often the end of a phase checks whether the backlog has drained


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
        slot_free: bool | None = None,
        worker: int | None = None,
        error: str | None = None,
        bytes_sent: int | None = None,
    ) -> None: ...


class ErrorTexts:
    """The stored message of each raw error text, made once per distinct text.

    Bounded: past ``limit`` distinct texts (messages that carry a changing number) the
    memo starts over, so memory stays flat however many errors a phase has.

    >>> texts = ErrorTexts(frozenset({"s3cr3t-t0ken"}))
    >>> texts.stored("refused, Bearer s3cr3t-t0ken"), texts.stored(None)
    ('refused, Bearer ***', None)
    """

    def __init__(self, secrets: frozenset[str] = frozenset(), limit: int = 256) -> None:
        self.secrets = secrets
        self.limit = limit
        self._memo: dict[str, str | None] = {}

    def stored(self, raw: str | None) -> str | None:
        if raw is None:
            return None
        text = self._memo.get(raw)
        if text is None:
            if len(self._memo) >= self.limit:
                self._memo.clear()
            text = self._memo[raw] = error_text(raw, self.secrets)
        return text


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
    """Live counters of one phase in one process (a worker sends them with every batch)."""

    phase: str
    rate: float
    planned: int
    sent: int = 0
    completed: int = 0
    dropped: int = 0
    dropped_at_end: int = 0  # of ``dropped``: still waiting when the phase's time was up
    in_flight: int = 0
    cancelled: int = 0  # in flight when the phase was stopped (no row)
    cancelled_queued: int = 0  # waiting for a slot when the phase was stopped (no row)
    unexpected_errors: int = 0
    last_unexpected_error: str | None = None
    outcomes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"phase": self.phase, "rate": self.rate, "planned": self.planned, "sent": self.sent,
                "completed": self.completed, "dropped": self.dropped,
                "dropped_at_end": self.dropped_at_end, "in_flight": self.in_flight,
                "cancelled": self.cancelled, "cancelled_queued": self.cancelled_queued,
                "unexpected_errors": self.unexpected_errors,
                "last_unexpected_error": self.last_unexpected_error, "outcomes": dict(self.outcomes)}


ResultHook = Callable[[float, str], None]  # (completed at, monotonic; outcome)
Queued = tuple[int, float, PreparedRequest, bool]  # seq, intended (monotonic), request, slot free


class PhaseLoad:
    """Paces one phase (or one worker's segment of it) and records a row for every request."""

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
        offset: int = 0,
        stride: int = 1,
        max_backlog: int | None = None,
        secrets: frozenset[str] = frozenset(),
    ) -> None:
        self.phase = phase
        self.rate = rate
        self.concurrency = concurrency
        self.duration_s = duration_s
        self.mix = mix
        self.transport_factory = transport_factory
        self.sink_provider = sink_provider  # called per row: the owner swaps buffers on flush
        self.axis = axis
        self.clock = clock or SystemClock()
        self.on_result = on_result
        self.offset, self.stride = offset, stride
        self.worker = offset
        self.max_backlog = backlog_capacity(rate, max_backlog)
        self.pacer: Pacer | None = None
        self._outstanding: dict[int, float] = {}  # seq -> intended (monotonic), queued or in flight
        # The outstanding seqs in the order the pacer handed them out (so in intended order);
        # finished ones are skipped lazily at the front, which keeps oldest_outstanding O(1)
        # amortised instead of a min() over every request in flight or queued.
        self._handed_out: deque[int] = deque()
        self._transports: list[Transport] = []
        self.stats = LoadStats(phase=phase, rate=rate, planned=0)
        self.error_texts = ErrorTexts(secrets)

    def oldest_outstanding(self) -> float | None:
        """Intended time (monotonic) of the oldest request of this segment not finished yet:
        queued, in flight, or not handed out by the pacer yet.

        Called with every batch (10 times a second): at thousands of requests outstanding a
        ``min`` over them all cost the loop milliseconds; the pacer hands requests out in
        intended order, so the oldest is the first of ``_handed_out`` still outstanding."""
        self._trim_handed_out()
        oldest = self._outstanding[self._handed_out[0]] if self._handed_out else None
        upcoming = self.pacer.next_due_at() if self.pacer is not None else None
        if oldest is None or (upcoming is not None and upcoming < oldest):
            return upcoming
        return oldest

    def _finished(self, seq: int) -> None:
        self._outstanding.pop(seq, None)
        self._trim_handed_out()  # amortised O(1): each seq leaves the deque once

    def _trim_handed_out(self) -> None:
        handed_out, outstanding = self._handed_out, self._outstanding
        while handed_out and handed_out[0] not in outstanding:
            handed_out.popleft()

    def prepare(self) -> None:
        """Create the slots' transports before the phase clock starts (an httpx client takes
        milliseconds to build; built inside the phase it would delay the first sends)."""
        if not self._transports:
            self._transports = [self.transport_factory() for _ in range(self.concurrency)]

    async def run(self, start_mono: float, end_mono: float | None = None) -> None:
        """Send the requests intended from ``start_mono``; requests still waiting at
        ``end_mono`` (default: start + duration) are dropped; returns when every request
        has a row (in-flight ones are awaited, bounded by the transport's timeout)."""
        self.pacer = Pacer(rate=self.rate, start_s=start_mono, duration_s=self.duration_s,
                           offset=self.offset, stride=self.stride)
        self.stats.planned = self.pacer.total
        end = start_mono + self.duration_s if end_mono is None else end_mono
        queue: asyncio.Queue[Queued] = asyncio.Queue(maxsize=self.max_backlog)
        self.prepare()
        transports, self._transports = self._transports, []
        slots = [asyncio.create_task(self._work(queue, t)) for t in transports]
        try:
            await self._pace(self.pacer, queue)
            await self._drop_left_at(end, queue)
            await queue.join()
        finally:
            self.stats.cancelled_queued += queue.qsize()
            for slot in slots:
                slot.cancel()
            await asyncio.gather(*slots, return_exceptions=True)
            await asyncio.gather(*(t.aclose() for t in transports), return_exceptions=True)
            self._outstanding.clear()
            self._handed_out.clear()

    async def _pace(self, pacer: Pacer, queue: asyncio.Queue[Queued]) -> None:
        while True:
            now = self.clock.monotonic()
            for seq in pacer.due(now):
                intended = pacer.intended_at(seq)
                request = self.mix.entry(seq)
                # A slot is free when fewer requests wait than slots are idle.
                slot_free = queue.qsize() < self.concurrency - self.stats.in_flight
                try:
                    queue.put_nowait((seq, intended, request, slot_free))
                except asyncio.QueueFull:
                    self._drop(seq, intended, request, now)
                    continue
                self._outstanding[seq] = intended
                self._handed_out.append(seq)
            next_at = pacer.next_due_at()
            if next_at is None:
                return
            await asyncio.sleep(max(0.0, next_at - self.clock.monotonic()))

    async def _drop_left_at(self, end: float, queue: asyncio.Queue[Queued]) -> None:
        """At the end of the phase's time, what still waits for a slot is dropped: it was
        not sent within its phase, and the next phase must not inherit it."""
        while not queue.empty() and self.clock.monotonic() < end:
            await asyncio.sleep(min(END_POLL_S, max(0.0, end - self.clock.monotonic())))
        now = self.clock.monotonic()
        while not queue.empty():
            seq, intended, request, _ = queue.get_nowait()
            self._finished(seq)
            self._drop(seq, intended, request, now)
            self.stats.dropped_at_end += 1
            queue.task_done()

    def _drop(self, seq: int, intended: float, request: PreparedRequest, now: float) -> None:
        self.stats.dropped += 1
        self.stats.outcomes["dropped"] += 1
        waited_ms = max(0.0, now - intended) * 1000.0  # censored: the latency is at least this
        self.sink_provider().append(
            self.phase, seq, request.name, self.axis.wall(intended),
            None, waited_ms, None, None, "dropped", None, False, self.worker,
        )

    async def _work(self, queue: asyncio.Queue[Queued], transport: Transport) -> None:
        while True:
            seq, intended, request, slot_free = await queue.get()
            sent = self.clock.monotonic()
            self.stats.sent += 1
            self.stats.in_flight += 1
            try:
                result = await transport.send(request)
            except asyncio.CancelledError:
                self.stats.cancelled += 1
                raise
            except Exception as error:  # noqa: BLE001 - a dead slot would stall the phase
                # A transport maps every expected failure itself; anything else still ends
                # this request as a transport failure, and is reported, instead of killing
                # the slot and leaving its queue undrained.
                self.stats.unexpected_errors += 1
                self.stats.last_unexpected_error = describe(error)
                result = SendResult(status=None, bytes=None, error="connect_error",
                                    message=f"unexpected client error: {describe(error)}")
            finally:
                self.stats.in_flight -= 1
            done = self.clock.monotonic()
            if result.pre_send_s:  # the client's own work before the request left is send lag
                sent = min(done, sent + result.pre_send_s)
            outcome = classify(result.status, result.error, request.expect)
            message = None if result.message is None else self.error_texts.stored(result.message)
            self.sink_provider().append(
                self.phase, seq, request.name, self.axis.wall(intended), self.axis.wall(sent),
                (done - intended) * 1000.0, (done - sent) * 1000.0, result.status, outcome,
                result.bytes, slot_free, self.worker, message, result.bytes_sent,
            )
            self._finished(seq)
            self.stats.completed += 1
            self.stats.outcomes[outcome] += 1
            if self.on_result is not None:
                self.on_result(done, outcome)
            queue.task_done()
