"""Did the load exercise a category at all? Pure rules (issue 12).

A ratio over counters that never moved is no evidence: the shipped mix never reaches the
real service's cache, so the cache hit rate is 0/0, and a 0 % effective fallback over a phase
in which nothing that can fall back ran "proves" nothing. A category whose exercise counters
(``Category.exercise``) were measured and summed to zero over the whole phase is
NOT-EXERCISED, a verdict of its own, with the metrics profile's hint of what would move it.
Counters that were never measured (the family is missing) leave the category as it was: NA
says "not measured", not "not exercised".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from phase5site import quantiles
from phase5site.slo.categories import Category, number
from phase5site.slo.models import NA, NOT_EXERCISED, NOT_EXERCISED_TEXT, PASS, SourceRow

Row = Mapping[str, Any]
HISTOGRAM = "latency_buckets"


@dataclass(frozen=True)
class Exercise:
    """``moved``: True (some counter moved), False (measured, none moved), None (not measured).
    ``samples``: how many samples measured at least one of the counters."""

    moved: bool | None
    samples: int
    columns: tuple[str, ...]


def _histogram_count(row: Row) -> float | None:
    try:
        buckets = quantiles.parse_buckets(row.get(HISTOGRAM))
    except (TypeError, ValueError):
        return None
    return buckets[-1][1] if buckets else None


def exercise_of(category: Category, rows: Sequence[Row]) -> Exercise:
    """Whether the category's exercise counters moved over the phase's server samples.

    >>> from phase5site.slo.categories import CATEGORY_BY_NAME
    >>> cache = CATEGORY_BY_NAME["cache_hit_rate"]
    >>> exercise_of(cache, [{"cache_hits_raw": 0, "cache_misses_raw": 0}] * 3).moved
    False
    >>> exercise_of(cache, [{"cache_hits_raw": 0, "cache_misses_raw": 2}]).moved
    True
    >>> exercise_of(cache, [{"cache_hits_raw": None}]).moved is None
    True
    """
    total, measured = 0.0, 0
    for row in rows:
        values = [_histogram_count(row) if column == HISTOGRAM else number(row, column)
                  for column in category.exercise]
        known = [value for value in values if value is not None]
        if known:
            measured += 1
            total += sum(known)
    if not category.exercise or measured == 0:
        return Exercise(None, measured, category.exercise)
    return Exercise(total > 0, measured, category.exercise)


def not_exercised_reason(exercise: Exercise) -> str:
    """Example: 'not exercised by this load: cache_hits_raw, cache_misses_raw did not move
    over the 6 samples that measured them'."""
    names = ", ".join("the latency histogram's count" if c == HISTOGRAM else c for c in exercise.columns)
    plural = "s" if exercise.samples != 1 else ""
    return f"{NOT_EXERCISED_TEXT}: {names} did not move over the {exercise.samples} sample{plural} that measured them"


def mark_not_exercised(row: SourceRow, exercise: Exercise) -> SourceRow:
    """A server row whose counters did not move: NOT-EXERCISED (a PASS such as 0 % fallback
    or an NA such as 0/0 alike); its pooled value, if any, stays beside it."""
    if row.source != "server" or exercise.moved is not False or row.verdict not in (PASS, NA):
        return row
    notes = list(row.notes)
    if row.pooled is not None:
        notes.append("the pooled value is shown, but nothing that could move it ran")
    return replace(row, verdict=NOT_EXERCISED, na_reason=not_exercised_reason(exercise), notes=notes,
                   insufficient=False)
