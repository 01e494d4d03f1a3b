"""How a run stops early: a signal, the circuit breaker, a dead worker or a failure.

The first reason wins and is kept (status, reason, the event to record); every later one is
ignored. Stopping is immediate and synchronous: the ``on_stop`` callback tells the load
workers (a few bytes per pipe) and cancels the phase's tasks; the phase then records how it
ended. SIGINT, SIGTERM and SIGHUP (a dropped SSH session) stop a run the same way: status
``interrupted``, exit 128 + the signal's number.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

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


def install_signals(handler: Callable[[int], None]) -> Callable[[], None]:
    """Route SIGINT/SIGTERM/SIGHUP to ``handler`` on the running loop; returns the undo."""
    loop = asyncio.get_running_loop()
    installed: list[int] = []
    for signum in STOP_SIGNALS:
        try:
            loop.add_signal_handler(signum, handler, signum)
            installed.append(signum)
        except (ValueError, RuntimeError, NotImplementedError):
            pass  # not the main thread: the caller handles signals

    def restore() -> None:
        for signum in installed:
            loop.remove_signal_handler(signum)

    return restore
