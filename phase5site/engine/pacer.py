"""Open-model pacing: when each request of a phase is *intended*, and which are due now.

Request ``i`` of a phase is intended at ``t0 + i / rate`` — an absolute schedule, so a late
wake-up never shifts later requests (no drift accumulates), and everything that fell due
while the loop slept is issued at once. This is the schedule of wrk2 (Gil Tene's
"coordinated omission" fix): latency is measured from the intended time, not from the
moment the client got round to sending.

The pacer is pure: it is told the time and answers with indices; it never sleeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def planned_sends(rate: float, duration_s: float) -> int:
    """Number of requests intended in ``[t0, t0 + duration_s)`` at ``rate`` per second.

    Request i is in the phase when ``i / rate < duration_s``.

    >>> planned_sends(80, 10)
    800
    >>> planned_sends(3, 0.5)
    2
    """
    exact = rate * duration_s
    # Guard float noise: 0.1 * 30 is 3.0000000000000004, which must plan 3, not 4.
    return max(0, math.ceil(round(exact, 9)))


@dataclass
class Pacer:
    """Absolute schedule of one phase.

    >>> pacer = Pacer(rate=10, start_s=100.0, duration_s=1.0)
    >>> list(pacer.due(100.25))          # 100.0, 100.1, 100.2 are due
    [0, 1, 2]
    >>> pacer.intended_at(3)
    100.3
    >>> list(pacer.due(100.25))          # nothing new
    []
    >>> len(pacer.due(200.0))            # a very late wake-up issues the rest, no more
    7
    >>> pacer.done
    True
    """

    rate: float
    start_s: float
    duration_s: float
    next_index: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"rate must be > 0 (got {self.rate!r})")
        self.total = planned_sends(self.rate, self.duration_s)

    def intended_at(self, index: int) -> float:
        # Computed from t0 each time (not by adding 1/rate repeatedly) so no error accumulates.
        return self.start_s + index / self.rate

    def due(self, now_s: float) -> range:
        """Indices intended at or before ``now_s`` that were not handed out yet."""
        if now_s < self.start_s:
            return range(self.next_index, self.next_index)
        last_due = math.floor(round((now_s - self.start_s) * self.rate, 9))
        end = min(self.total, last_due + 1)
        first = self.next_index
        self.next_index = max(first, end)
        return range(first, self.next_index)

    def next_due_at(self) -> float | None:
        """When the next request is intended, or None when the phase has handed out all."""
        if self.next_index >= self.total:
            return None
        return self.intended_at(self.next_index)

    @property
    def done(self) -> bool:
        return self.next_index >= self.total



def backlog_capacity(rate: float) -> int:
    """Most requests that may wait for a free slot: one second of sends (at least one).

    Beyond it a due request is dropped and counted, as k6 counts ``dropped_iterations``.

    >>> backlog_capacity(80)
    80
    >>> backlog_capacity(0.5)
    1
    """
    return max(1, math.ceil(rate))
