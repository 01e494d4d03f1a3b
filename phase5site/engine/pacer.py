"""Open-model pacing: when each request of a phase is *intended*, and which are due now.

Request ``i`` of a phase is intended at ``t0 + i / rate`` — an absolute schedule, so a late
wake-up never shifts later requests (no drift accumulates), and everything that fell due
while the loop slept is issued at once. This is the schedule of wrk2 (Gil Tene's
"coordinated omission" fix): latency is measured from the intended time, not from the
moment the client got round to sending.

With load workers in several processes the schedule is split by *execution segment*:
request ``i`` belongs to worker ``i mod N``, and worker ``w``'s pacer hands out exactly the
indices ``w, w + N, w + 2N, ...`` of the same schedule, so the union over the workers is the
single-process schedule, index for index and instant for instant.

The pacer is pure: it is told the time and answers with indices; it never sleeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from phase5site.runspec.capacity import backlog_capacity

__all__ = ["Pacer", "backlog_capacity", "planned_sends"]  # the backlog bound is the spec's, shared


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

    Worker 1 of 3 paces the indices 1, 4, 7 of the same schedule:

    >>> segment = Pacer(rate=10, start_s=100.0, duration_s=1.0, offset=1, stride=3)
    >>> list(segment.due(100.45)), segment.next_due_at(), segment.total, segment.phase_total
    ([1, 4], 100.7, 3, 10)
    """

    rate: float
    start_s: float
    duration_s: float
    offset: int = 0  # this worker's index w
    stride: int = 1  # the number of workers N
    next_index: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"rate must be > 0 (got {self.rate!r})")
        if self.stride < 1 or not 0 <= self.offset < self.stride:
            raise ValueError(f"worker {self.offset} of {self.stride} is not a segment")
        self.phase_total = planned_sends(self.rate, self.duration_s)  # every worker's together
        # This segment's share: the indices offset, offset + stride, ... below phase_total.
        self.total = max(0, -(-(self.phase_total - self.offset) // self.stride))
        self.next_index = self.offset

    def intended_at(self, index: int) -> float:
        # Computed from t0 each time (not by adding 1/rate repeatedly) so no error accumulates.
        return self.start_s + index / self.rate

    def due(self, now_s: float) -> range:
        """Indices of this segment intended at or before ``now_s`` not handed out yet."""
        first = self.next_index
        if now_s < self.start_s:
            return range(first, first)
        last_due = min(self.phase_total - 1, math.floor(round((now_s - self.start_s) * self.rate, 9)))
        if last_due < first:
            return range(first, first)
        # The first index of this segment above last_due.
        self.next_index = first + ((last_due - first) // self.stride + 1) * self.stride
        return range(first, self.next_index, self.stride)

    def next_due_at(self) -> float | None:
        """When the next request is intended, or None when the segment has handed out all."""
        if self.next_index >= self.phase_total:
            return None
        return self.intended_at(self.next_index)

    @property
    def done(self) -> bool:
        return self.next_index >= self.phase_total
