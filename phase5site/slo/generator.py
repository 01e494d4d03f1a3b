"""Generator health (DESIGN.md "Generator health"): when the load generator, not the service,
limited a measurement. Pure: sample rows in, windows and reasons out.

A send lag while one of the generator's slots was free is the generator's *own* delay (a
busy host, a blocked event loop), not the service holding requests back. The engine marks a
sample window ``generator_limited`` when that own lag's p99 exceeds the spec's
``target.max_generator_lag`` (default 10 ms). The client latency of a phase with any such
window measures the tool, so it is INVALID: never a PASS, and never a NO-GO caused by the
tool. Rows from runs made before generator health was measured have NULL there: not
limited, judged exactly as before.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, Any]

RERUN_HINT = "the machine was busy; rerun on a quieter host or with more workers"


@dataclass(frozen=True)
class LimitedWindow:
    """A sample window in which the generator's own send lag exceeded its threshold."""

    sample_num: int | None
    window_end: float | None
    generator_lag_p99_ms: float | None
    generator_lag_max_ms: float | None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if value != value else float(value)  # NaN is NA


def limited_windows(rows: Iterable[Row]) -> list[LimitedWindow]:
    """The generator-limited windows among sample rows, once per sample number, in order.

    Rows of several sources for one window carry the same generator columns; NULL
    ``generator_limited`` (not measured) is not limited.

    >>> limited_windows([{"sample_num": 2, "generator_limited": True, "window_end": 60.0,
    ...                   "generator_lag_p99_ms": 31.0, "generator_lag_max_ms": 612.0},
    ...                  {"sample_num": 1, "generator_limited": None},
    ...                  {"sample_num": 2, "source": "scrape", "generator_limited": True}])
    [LimitedWindow(sample_num=2, window_end=60.0, generator_lag_p99_ms=31.0, generator_lag_max_ms=612.0)]
    """
    found: dict[Any, LimitedWindow] = {}
    for row in rows:
        if row.get("generator_limited") is not True:
            continue
        key = row.get("sample_num")
        if key in found:
            continue
        found[key] = LimitedWindow(
            sample_num=None if key is None else int(key),
            window_end=_number(row.get("window_end")),
            generator_lag_p99_ms=_number(row.get("generator_lag_p99_ms")),
            generator_lag_max_ms=_number(row.get("generator_lag_max_ms")),
        )
    return sorted(found.values(), key=lambda w: (w.sample_num is None, w.sample_num or 0))


def utc_clock(epoch_s: float | None) -> str:
    """``HH:MM:SS UTC`` of an epoch time. Example: ``utc_clock(1764000012.4) == '16:00:12 UTC'``."""
    if epoch_s is None:
        return "an unknown time"
    return dt.datetime.fromtimestamp(epoch_s, tz=dt.timezone.utc).strftime("%H:%M:%S UTC")


def invalid_reason(windows: list[LimitedWindow], n_windows: int) -> str:
    """Why client latency is INVALID, naming the worst window (largest own lag).

    >>> invalid_reason([LimitedWindow(4, 1764002412.0, 40.0, 612.0)], 12)
    'the load generator was delayed 612 ms at 16:40:12 UTC while slots were free (1 of 12 windows generator-limited): the machine was busy; rerun on a quieter host or with more workers'
    """
    worst = max(windows, key=lambda w: -1.0 if w.generator_lag_max_ms is None else w.generator_lag_max_ms)
    share = f"{len(windows)} of {max(n_windows, len(windows))} windows generator-limited"
    if worst.generator_lag_max_ms is None:
        delayed = f"the load generator fell behind its schedule in the window ending {utc_clock(worst.window_end)}"
    else:
        delayed = (f"the load generator was delayed {worst.generator_lag_max_ms:.0f} ms at "
                   f"{utc_clock(worst.window_end)}")
    return f"{delayed} while slots were free ({share}): {RERUN_HINT}"
