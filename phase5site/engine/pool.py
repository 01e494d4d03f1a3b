"""The parent's side of the load workers: start them, order phases, hear them, stop them.

One pipe per worker. A reader thread per pipe receives the worker's messages (Arrow IPC
batches are decoded there, off the event loop) and hands them to the loop with
``call_soon_threadsafe``; the runner's ``on_message`` sees them in the order each worker
sent them. A pipe that closes before the pool closed it means the worker died: that is
reported at once (``on_message(index, ("gone", index, exitcode))``), with the worker's own
``failed`` text before it when it managed to send one.

STOP is written to every pipe synchronously, so a breaker trip or a signal reaches the
workers within the time it takes to write a few bytes; each worker notes when it read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from phase5site.engine.protocol import EXIT, STOP, PhaseOrder
from phase5site.engine.worker import table_of, worker_main
from phase5site.errors import RunError

READY_TIMEOUT_S = 60.0  # a spawned worker imports the engine: seconds on a busy host
JOIN_TIMEOUT_S = 5.0

OnMessage = Callable[[int, tuple], None]


def auto_workers(rate: float, concurrency: int, cpu_count: int | None = None,
                 per_worker_rate: float = 2_000.0) -> int:
    """``target.workers: auto``: enough workers for the rate, at most the cores less one
    (the parent needs one), never more than the slots, at least one.

    >>> auto_workers(80, 20, cpu_count=2), auto_workers(5_000, 100, cpu_count=8)
    (1, 3)
    >>> auto_workers(50_000, 4, cpu_count=16)
    4
    """
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    wanted = -(-int(rate) // int(per_worker_rate)) if rate > 0 else 1
    return max(1, min(wanted, cores - 1, concurrency))


def share(total: int, workers: int, index: int) -> int:
    """Worker ``index``'s part of ``total`` slots (or backlog): as even as integers allow.

    >>> [share(20, 3, i) for i in range(3)], [share(5, 5, i) for i in range(5)]
    ([7, 7, 6], [1, 1, 1, 1, 1])
    """
    return total // workers + (1 if index < total % workers else 0)


class WorkerPool:
    """``count`` load worker processes, started once per run."""

    def __init__(self, count: int, on_message: OnMessage) -> None:
        self.count = count
        self.on_message = on_message
        self.pids: list[int] = []
        self._conns: list[Connection] = []
        self._processes: list[Any] = []
        self._threads: list[threading.Thread] = []
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Future[None] | None = None
        self._ready_count = 0

    async def start(self) -> None:
        """Spawn the workers and wait until each has said ``ready``."""
        self._loop = asyncio.get_running_loop()
        self._ready = self._loop.create_future()
        context = multiprocessing.get_context("spawn")
        for index in range(self.count):
            parent_end, child_end = context.Pipe(duplex=True)
            process = context.Process(target=worker_main, args=(child_end, index),
                                      name=f"phase5site-load-{index}", daemon=True)
            process.start()
            child_end.close()  # only the child holds it now: its death closes the pipe
            self._conns.append(parent_end)
            self._processes.append(process)
            self.pids.append(process.pid)
            thread = threading.Thread(target=self._read, args=(index, parent_end, process),
                                      name=f"phase5site-load-{index}-reader", daemon=True)
            thread.start()
            self._threads.append(thread)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), READY_TIMEOUT_S)
        except TimeoutError as error:
            raise RunError(f"{self.count - self._ready_count} load worker(s) did not start within "
                           f"{READY_TIMEOUT_S:g}s", hint="see load.log; is the machine overloaded?") from error

    def _read(self, index: int, conn: Connection, process: Any) -> None:
        while True:
            try:
                message = conn.recv()
                if message[0] == "batch" and message[2] is not None:
                    message = ("batch", index, table_of(message[2]), message[3])
            except (EOFError, OSError):
                break
            except Exception as error:  # noqa: BLE001 - a silent reader would hang the run
                # An unreadable message (a cut pickle, a damaged batch): nothing more from
                # this worker can be trusted. Said as its failure, then it is stopped.
                self._deliver(index, ("failed", index, f"unreadable message from load worker "
                                      f"{index}: {type(error).__name__}: {error}"))
                if not self._closing:
                    with contextlib.suppress(OSError, ValueError, AttributeError):
                        process.kill()  # our own child
                break
            self._deliver(index, message)
        if not self._closing:
            process.join(JOIN_TIMEOUT_S)
            self._deliver(index, ("gone", index, process.exitcode))

    def _deliver(self, index: int, message: tuple) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop closed: the run is over
            self._loop.call_soon_threadsafe(self._dispatch, index, message)

    def _dispatch(self, index: int, message: tuple) -> None:
        if message[0] == "ready":
            self._ready_count += 1
            if self._ready_count == self.count and self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
            return
        self.on_message(index, message)

    def order(self, orders: list[PhaseOrder]) -> None:
        """Send each worker its segment of the phase."""
        for conn, order in zip(self._conns, orders, strict=True):
            conn.send(order)

    def stop(self) -> None:
        """Tell every worker to stop its phase now (synchronous: a few bytes per pipe)."""
        for conn in self._conns:
            with contextlib.suppress(OSError, ValueError):
                conn.send(STOP)

    def kill(self) -> None:
        """SIGKILL every worker still running (a forced stop: no more waiting for them)."""
        for process in self._processes:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                if process.is_alive():
                    process.kill()

    async def close(self) -> None:
        """EXIT every worker and reap it; one that does not leave is terminated (our own pid)."""
        self._closing = True
        for conn in self._conns:
            with contextlib.suppress(OSError, ValueError):
                conn.send(EXIT)
        await asyncio.to_thread(self._reap)

    def _reap(self) -> None:
        for process in self._processes:
            process.join(JOIN_TIMEOUT_S)
            if process.is_alive():
                process.terminate()
                process.join(JOIN_TIMEOUT_S)
        for conn in self._conns:
            conn.close()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT_S)
