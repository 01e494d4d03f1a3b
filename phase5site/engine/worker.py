"""A load worker process: one event loop that only paces, sends and records.

The parent starts ``workers`` of these (``multiprocessing`` spawn: no inherited threads or
event loop). Each runs ``PhaseLoad`` for its segment of every phase it is ordered to run,
and hands its rows to the parent as Arrow IPC batches at least every 100 ms, with its
counters, CPU time and event-loop lag. It never parses scrapes, queries DuckDB or renders
anything, so nothing but its own sends competes for its loop.

Signals: SIGINT is ignored (Ctrl-C reaches the whole process group; the parent decides and
sends STOP). The worker leaves when told EXIT, or at once when its pipe to the parent
closes (the parent died). An error it cannot go on from is sent as ``failed`` before it
exits with status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

import pyarrow as pa

from phase5site.engine.clock import SystemClock, WallAxis
from phase5site.engine.load import PhaseLoad
from phase5site.engine.mix import RequestMix
from phase5site.engine.protocol import (
    BATCH_EVERY_S,
    EXIT,
    LOOP_PROBE_S,
    STOP,
    ClientChoice,
    PhaseOrder,
    WorkerStats,
)
from phase5site.engine.transport import TransportFactory
from phase5site.store.rows import RequestRows

_PARENT_GONE = object()


def client_factory(choice: ClientChoice) -> TransportFactory:
    """The transport factory of ``target.client``."""
    if choice.kind == "httpx":
        from phase5site.engine.transport import httpx_factory

        return httpx_factory(choice.timeout_s, max_body_bytes=choice.max_body_bytes)
    from phase5site.engine.httpclient import httptools_factory

    return httptools_factory(choice.timeout_s, choice.max_body_bytes)  # "httptools", or "raw", its older name


def event_loop_runner() -> asyncio.Runner:
    """uvloop when it is installed (it halves send lag at the same CPU), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def worker_main(conn: Connection, index: int) -> None:
    """Entry point of the worker process ``index``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code = 0
    try:
        with event_loop_runner() as runner:
            runner.run(_Worker(conn, index).serve())
    except BaseException as error:  # noqa: BLE001 - the parent must learn why, then we exit
        code = 1
        with contextlib.suppress(OSError, ValueError):
            conn.send(("failed", index, "".join(traceback.format_exception(error)).rstrip()))
    finally:
        with contextlib.suppress(OSError):
            conn.close()
    os._exit(code)  # no atexit work in a child: the parent owns every file


class _Worker:
    def __init__(self, conn: Connection, index: int) -> None:
        self.conn = conn
        self.index = index
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.rows = RequestRows()
        self.loop_lag_max_ms = 0.0
        self.stop_seen_at: float | None = None

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        watch_pipe(loop, self.conn, self._readable)
        self.conn.send(("ready", self.index, os.getpid()))
        probe = asyncio.create_task(self._probe_loop())
        try:
            while True:
                message = await self.inbox.get()
                if isinstance(message, PhaseOrder):
                    if not await self._run_phase(message):
                        return
                elif message in (EXIT, _PARENT_GONE):
                    return
                # a STOP between phases has nothing to stop
        finally:
            probe.cancel()
            loop.remove_reader(self.conn.fileno())

    def _readable(self) -> None:
        try:
            while self.conn.poll():
                message = self.conn.recv()
                if message == STOP:
                    self.stop_seen_at = time.monotonic()
                self.inbox.put_nowait(message)
        except (EOFError, OSError):
            self.inbox.put_nowait(_PARENT_GONE)

    async def _probe_loop(self) -> None:
        """Event-loop lag: how late a 10 ms sleep wakes up (a blocked loop shows here)."""
        while True:
            due = time.monotonic() + LOOP_PROBE_S
            await asyncio.sleep(LOOP_PROBE_S)
            self.loop_lag_max_ms = max(self.loop_lag_max_ms, (time.monotonic() - due) * 1000.0)

    async def _run_phase(self, order: PhaseOrder) -> bool:
        """Run one segment; False when the worker must leave afterwards."""
        load = PhaseLoad(
            phase=order.phase, rate=order.rate, concurrency=order.concurrency,
            duration_s=order.duration_s,
            mix=RequestMix(list(order.entries), list(order.weights), seed=order.seed),
            transport_factory=client_factory(order.client), sink_provider=lambda: self.rows,
            axis=WallAxis(offset_s=order.wall_offset_s), clock=SystemClock(),
            offset=order.offset, stride=order.stride, max_backlog=order.max_backlog,
            secrets=order.secrets,
        )
        load.prepare()
        self.stop_seen_at = None
        phase = asyncio.create_task(load.run(order.start_mono, order.end_mono))
        flusher = asyncio.create_task(self._flush_every(load))
        command = asyncio.create_task(self.inbox.get())
        leave = consumed = parent_gone = False
        try:
            done, _ = await asyncio.wait({phase, command}, return_when=asyncio.FIRST_COMPLETED)
            if command in done:
                consumed = True
                leave = command.result() in (EXIT, _PARENT_GONE)
                parent_gone = command.result() is _PARENT_GONE
                phase.cancel()
            await asyncio.gather(phase, return_exceptions=True)
            if not phase.cancelled() and phase.exception() is not None:
                raise phase.exception()  # type: ignore[misc]
        finally:
            command.cancel()
            flusher.cancel()
            await asyncio.gather(flusher, command, return_exceptions=True)
            if not consumed and command.done() and not command.cancelled():
                self.inbox.put_nowait(command.result())  # arrived as the phase ended: keep it
        if not parent_gone:  # even when told to EXIT, the rows recorded so far go to the parent
            self._send_batch(load)
            self.conn.send(("phase_done", self.index, self._stats(load)))
        return not leave

    async def _flush_every(self, load: PhaseLoad) -> None:
        while True:
            await asyncio.sleep(BATCH_EVERY_S)
            self._send_batch(load)

    def _stats(self, load: PhaseLoad) -> WorkerStats:
        lag, self.loop_lag_max_ms = self.loop_lag_max_ms, 0.0
        return WorkerStats(load=load.stats.as_dict(), oldest_outstanding=load.oldest_outstanding(),
                           cpu_s=time.process_time(), loop_lag_max_ms=lag, stop_seen_at=self.stop_seen_at)

    def _send_batch(self, load: PhaseLoad) -> None:
        # Stats are taken after the rows: a parent that sees oldest_outstanding past a
        # window boundary has every row of that window in this batch or an earlier one.
        payload = None
        if len(self.rows):
            table = self.rows.to_arrow()
            self.rows.clear()
            payload = ipc_bytes(table)
        self.conn.send(("batch", self.index, payload, self._stats(load)))


def watch_pipe(loop: asyncio.AbstractEventLoop, conn: Connection, callback: Any) -> None:
    """Call ``callback`` when the parent's pipe is readable, keeping the pipe blocking.

    uvloop's ``add_reader`` (libuv's poll handle) switches the descriptor to non-blocking;
    ``Connection.send`` then raised ``BlockingIOError`` half-way through a batch bigger than
    the pipe's free buffer (16,000 req/s, a parent slow to read), which cut the message: the
    parent's reader died on an unreadable pickle, the worker's flusher died, and the run hung
    at the end of its phase. A blocking pipe makes a slow parent hold the worker back (seen
    as send lag) instead; ``_readable`` only reads after ``poll`` says a message is there."""
    loop.add_reader(conn.fileno(), callback)
    os.set_blocking(conn.fileno(), True)


def ipc_bytes(table: pa.Table) -> bytes:
    """An Arrow table as IPC stream bytes (what a batch carries over the pipe)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def table_of(payload: bytes) -> pa.Table:
    """The Arrow table of a batch's IPC bytes."""
    with pa.ipc.open_stream(pa.py_buffer(payload)) as reader:
        return reader.read_all()
