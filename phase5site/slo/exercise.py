"""Did the load exercise a category at all? Pure rules (issue 12).

A ratio over counters that never moved is no evidence: the shipped mix never reaches the
real service's cache, so the cache hit rate is 0/0, and a 0 % effective fallback over a phase
in which nothing that can fall back ran "proves" nothing. A category whose exercise counters
(``Category.exercise``) were measured and summed to zero over the whole phase is
NOT-EXERCISED, a verdict of its own, with the metrics profile's hint of what would move it.
Counters that were never measured (the family is missing) leave the category as it was: NA
says "not measured", not "not exercised".

"Did not move" is a verdict on the phase, so it needs the coverage a PASS needs
(``slo.evidence.enough_evidence``): counters measured in 1 of 6 samples say nothing about
the other 5, and the row is NA "insufficient data" with the coverage note. A counter whose
family the service does not export (its stored reason is ``columns.NOT_EXPORTED``, the
metrics profile's word) can never move: it is neither named among the counters that did not
move nor taken as a sample's explained gap.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from phase5site import quantiles
from phase5site.columns import NOT_EXPORTED
from phase5site.slo.categories import Category, number
from phase5site.slo.evidence import coverage_note, enough_evidence
from phase5site.slo.models import NA, NOT_EXERCISED, NOT_EXERCISED_TEXT, PASS, SourceRow

Row = Mapping[str, Any]
HISTOGRAM = "latency_buckets"


@dataclass(frozen=True)
class Exercise:
    """``moved``: True (some counter moved), False (measured, none moved), None (not measured).
    ``samples``: how many samples measured at least one of the counters; ``columns``: the
    counters measured in at least one sample (never one the service does not export);
    ``explained``: samples that measured none of them and store why (not "not exported");
    ``expected``/``min_share``: the coverage a verdict needs (None: not weighed);
    ``why``: the most frequent stored reason of the gaps."""

    moved: bool | None
    samples: int
    columns: tuple[str, ...]
    explained: int = 0
    expected: int | None = None
    min_share: float | None = None
    why: str | None = None

    @property
    def enough(self) -> bool:
        """Whether the samples that measured the counters cover the phase like a PASS must."""
        if self.expected is None or self.min_share is None:
            return True
        return enough_evidence(self.samples, self.explained, self.expected, self.min_share)


def _histogram_count(row: Row) -> float | None:
    try:
        buckets = quantiles.parse_buckets(row.get(HISTOGRAM))
    except (TypeError, ValueError):
        return None
    return buckets[-1][1] if buckets else None


def _value(row: Row, column: str) -> float | None:
    return _histogram_count(row) if column == HISTOGRAM else number(row, column)


def _gap_reasons(row: Row, columns: Sequence[str]) -> list[str]:
    """The stored reasons a sample gives for its exercise counters, "not exported" left out:
    a family the service never exports explains nothing about this window."""
    reasons = row.get("na_reasons")
    if not isinstance(reasons, Mapping):
        return []
    return [f"{column}: {reasons[column]}" for column in columns
            if reasons.get(column) and not str(reasons[column]).startswith(NOT_EXPORTED)]


def exercise_of(category: Category, rows: Sequence[Row], *, expected: int | None = None,
                min_share: float | None = None) -> Exercise:
    """Whether the category's exercise counters moved over the phase's server samples;
    with ``expected`` and ``min_share``, also whether enough samples measured them.

    >>> from phase5site.slo.categories import CATEGORY_BY_NAME
    >>> cache = CATEGORY_BY_NAME["cache_hit_rate"]
    >>> exercise_of(cache, [{"cache_hits_raw": 0, "cache_misses_raw": 0}] * 3).moved
    False
    >>> exercise_of(cache, [{"cache_hits_raw": 0, "cache_misses_raw": 2}]).moved
    True
    >>> exercise_of(cache, [{"cache_hits_raw": None}]).moved is None
    True
    >>> idle, gap = {"cache_hits_raw": 0, "cache_misses_raw": 0}, {"cache_hits_raw": None}
    >>> exercise_of(cache, [idle] + [gap] * 5, expected=6, min_share=0.8).enough
    False
    """
    total, measured, explained = 0.0, 0, 0
    seen: set[str] = set()
    gaps: Counter[str] = Counter()
    for row in rows:
        values = {column: _value(row, column) for column in category.exercise}
        known = {column: value for column, value in values.items() if value is not None}
        if known:
            measured += 1
            total += sum(known.values())
            seen.update(known)
            continue
        reasons = _gap_reasons(row, category.exercise)
        explained += bool(reasons)
        gaps.update(reasons)
    columns = tuple(column for column in category.exercise if column in seen)
    why = gaps.most_common(1)[0][0] if gaps else None
    moved = None if not category.exercise or measured == 0 else total > 0
    return Exercise(moved, measured, columns, explained, expected, min_share, why)


def _names(exercise: Exercise) -> str:
    return ", ".join("the latency histogram's count" if c == HISTOGRAM else c for c in exercise.columns)


def _over(exercise: Exercise) -> str:
    plural = "s" if exercise.samples != 1 else ""
    return f"over the {exercise.samples} sample{plural} that measured them"


def not_exercised_reason(exercise: Exercise) -> str:
    """Example: 'not exercised by this load: cache_hits_raw, cache_misses_raw did not move
    over the 6 samples that measured them'."""
    return f"{NOT_EXERCISED_TEXT}: {_names(exercise)} did not move {_over(exercise)}"


def too_few_reason(exercise: Exercise) -> str:
    """Example: 'only 1 of 6 samples valid (a server verdict needs all of them, or 80% with
    every other sample's NA explained); cache_hits_raw, cache_misses_raw did not move over
    the 1 sample that measured them, too few to call the category not exercised'."""
    assert exercise.expected is not None and exercise.min_share is not None
    text = (f"{coverage_note(exercise.samples, exercise.expected, exercise.min_share)}; {_names(exercise)} "
            f"did not move {_over(exercise)}, too few to call the category not exercised")
    return f"{text}; {exercise.why}" if exercise.why else text


def mark_not_exercised(row: SourceRow, exercise: Exercise) -> SourceRow:
    """A server row whose counters did not move: NOT-EXERCISED (a PASS such as 0 % fallback
    or an NA such as 0/0 alike); its pooled value, if any, stays beside it. When too few
    samples measured the counters, NA "insufficient data" instead: a verdict on the phase
    needs the coverage a PASS needs."""
    if row.source != "server" or exercise.moved is not False or row.verdict not in (PASS, NA):
        return row
    notes = list(row.notes)
    if not exercise.enough:
        if row.pooled is not None:
            notes.append("the pooled value is shown, but too few samples say whether anything could move it")
        return replace(row, verdict=NA, na_reason=too_few_reason(exercise), notes=notes, insufficient=True)
    if row.pooled is not None:
        notes.append("the pooled value is shown, but nothing that could move it ran")
    return replace(row, verdict=NOT_EXERCISED, na_reason=not_exercised_reason(exercise), notes=notes,
                   insufficient=False)
