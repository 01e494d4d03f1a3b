"""Recognising the two known defects of the old observer's files. Pure functions.

1. Placeholders: when a metric was missing the observer wrote a fixed default (success
   0.99, p50/p90/p95/p99 = 0.2/0.3/0.4/0.5 s, fallback ratio 0.05). A column that holds its
   placeholder in every row is almost certainly unmeasured.
2. Cumulative counters: the "per-sample" counts were totals since process start. A count
   column that never decreases over several samples and is not all zero looks cumulative.

The importer stores what the file says and records these findings as warnings.
"""

from __future__ import annotations

from collections.abc import Sequence

from phase5site.columns import CSV_V3_COUNT_COLUMNS

PLACEHOLDERS: dict[str, float] = {
    "http_success_rate": 0.99,
    "p50_latency": 0.2,
    "p90_latency": 0.3,
    "p95_latency": 0.4,
    "p99_latency": 0.5,
    "raw_fallback_ratio": 0.05,
}

COUNT_COLUMNS = CSV_V3_COUNT_COLUMNS  # window counts by definition


def placeholder_columns(rows: Sequence[dict[str, object]], present: Sequence[str]) -> list[str]:
    """Columns whose every non-NA value equals the old observer's placeholder.

    >>> rows = [{"http_success_rate": 0.99, "p99_latency": 0.5, "p50_latency": 0.0002}] * 3
    >>> placeholder_columns(rows, ["http_success_rate", "p99_latency", "p50_latency"])
    ['http_success_rate', 'p99_latency']
    """
    found = []
    for column in present:
        placeholder = PLACEHOLDERS.get(column)
        if placeholder is None:
            continue
        values = [row.get(column) for row in rows if row.get(column) is not None]
        if values and all(value == placeholder for value in values):
            found.append(column)
    return found


def looks_cumulative(values: Sequence[float | None]) -> bool:
    """True when at least two samples never decrease and are not all zero.

    A per-interval count goes up and down with the load; a total since process start can
    only grow (or stay put when nothing happens).

    >>> looks_cumulative([3, 3, 3]), looks_cumulative([12, 15, 19]), looks_cumulative([5, 2])
    (True, True, False)
    >>> looks_cumulative([0, 0]), looks_cumulative([7]), looks_cumulative([1, None, 2])
    (False, False, True)
    """
    numbers = [v for v in values if v is not None]
    if len(numbers) < 2 or max(numbers) <= 0:
        return False
    return all(later >= earlier for earlier, later in zip(numbers, numbers[1:]))


def cumulative_columns(rows: Sequence[dict[str, object]], present: Sequence[str]) -> list[str]:
    """Count columns of ``present`` whose values look cumulative (see ``looks_cumulative``)."""
    return [
        column
        for column in present
        if column in COUNT_COLUMNS
        and looks_cumulative([row.get(column) for row in rows])  # type: ignore[misc]
    ]
