"""How a run stops early: a signal, the circuit breaker, a dead worker or a failure.

The first reason wins and is kept (status, reason, the event to record); every later one is
ignored. Stopping is immediate and synchronous: the ``on_stop`` callback tells the load
workers (a few bytes per pipe) and cancels the phase's tasks; the phase then records how it
ended. SIGINT, SIGTERM and SIGHUP (a dropped SSH session) stop a run the same way: status
``interrupted``, exit 128 + the signal's number. A second one while the run is stopping
forces the stop (the runner kills the load workers instead of waiting for their last rows);
any later one is ignored until the run has ended and its summary is written.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

PendingEvent = tuple[str, str, float, str | None, dict | None]  # kind, message, at, phase, data


@dataclass
class StopControl:
    """The run's stop state; ``request`` is idempotent (first reason wins)."""

    on_stop: Callable[[str], None]  # called once, with the reason, when a stop is requested
    status: str | None = None  # interrupted | aborted | failed
    reason: str | None = None
    signal: int | None = None
    pending_events: list[PendingEvent] = field(default_factory=list)

    @property
    def requested(self) -> bool:
        return self.status is not None

    def request(self, status: str, reason: str, kind: str, data: dict | None, *,
                at: float, phase: str | None) -> bool:
        """Stop now for ``reason``; False when a stop was already requested."""
        if self.status is not None:
            return False
        self.status, self.reason = status, reason
        self.pending_events.append((kind, reason, at, phase, data))
        self.on_stop(reason)
        return True

    def take_events(self) -> list[PendingEvent]:
        events, self.pending_events = self.pending_events, []
        return events


class SignalLatch:
    """While installed (``with SignalLatch() as latch:``), SIGINT/SIGTERM/SIGHUP are noted in
    ``received`` instead of acting: a step that must finish (writing a partial summary) is
    not cut short by a Ctrl-C. A run started inside it takes the signals noted so far as
    its own (``install_signals``), so a Ctrl-C just before the run still stops it."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, Any] = {}

    def __call__(self, signum: int, frame: object) -> None:
        self.received.append(signum)

    def __enter__(self) -> SignalLatch:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


def install_signals(handler: Callable[[int], None]) -> Callable[[], None]:
    """Route SIGINT/SIGTERM/SIGHUP to ``handler`` on the running loop; returns the undo,
    which puts back the handlers found (asyncio alone would reset them to the defaults)."""
    loop = asyncio.get_running_loop()
    installed: dict[int, Any] = {}
    for signum in STOP_SIGNALS:
        previous = signal.getsignal(signum)
        try:
            loop.add_signal_handler(signum, handler, signum)
        except (ValueError, RuntimeError, NotImplementedError):
            continue  # not the main thread: the caller handles signals
        installed[signum] = previous
        if isinstance(previous, SignalLatch):  # noted before the run began: the run's now
            for _ in range(previous.received.count(signum)):
                loop.call_soon(handler, signum)
            previous.received[:] = [s for s in previous.received if s != signum]

    def restore() -> None:
        # Blocked while swapping, so a signal in between reaches the handler put back
        # (SIG_DFL for SIGTERM in the gap would kill the process before its summary).
        signal.pthread_sigmask(signal.SIG_BLOCK, installed)
        try:
            for signum, previous in installed.items():
                loop.remove_signal_handler(signum)
                if previous is not None:  # None: set outside Python, nothing to put back
                    signal.signal(signum, previous)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, installed)

    return restore
