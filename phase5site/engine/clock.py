"""The run's clock: monotonic time for pacing, one fixed offset to turn it into UTC epoch.

Pacing and latencies use ``time.monotonic`` (never steps backwards); stored instants are
wall-clock UTC epoch seconds. The offset is taken once per run so that every stored instant
of a run is on the same axis: ``wall = monotonic + offset``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...


class SystemClock:
    """The real monotonic clock."""

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass
class WallAxis:
    """Maps monotonic seconds to UTC epoch seconds with one offset fixed at creation.

    >>> axis = WallAxis(offset_s=1_700_000_000.0)
    >>> axis.wall(12.5)
    1700000012.5
    """

    offset_s: float = field(default_factory=lambda: time.time() - time.monotonic())

    def wall(self, monotonic_s: float) -> float:
        return monotonic_s + self.offset_s

    def monotonic(self, wall_s: float) -> float:
        return wall_s - self.offset_s


def utc_timestamp(epoch_s: float) -> str:
    """CSV v3 timestamp of an instant: UTC, ``YYYY-MM-DD HH:MM:SS``.

    >>> utc_timestamp(0.0)
    '1970-01-01 00:00:00'
    """
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def utc_compact(epoch_s: float) -> str:
    """Run-folder suffix of an instant: ``YYYYmmddTHHMMSSZ``.

    >>> utc_compact(0.0)
    '19700101T000000Z'
    """
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
