"""Is there enough evidence for a verdict? Pure rules (issue 13, item 4).

Coverage. A server-side PASS needs enough valid samples: every sample the phase took, or
at least ``slo.min_valid_sample_share`` of them (default 80 %) with each other one's NA
explained by a stored reason. Below that the row is NA, "insufficient data": a Prometheus
killed mid-baseline once left 1 of 6 server samples valid, and those few windows passed for
the whole phase. A FAIL on the valid samples stands (a failure seen is evidence).

Significance. A PASS whose 95 % confidence interval reaches past the threshold cannot be
told from a FAIL by the data: it is printed "PASS, not significant" (``verdict_label``).
The exact interval (Clopper-Pearson) is used where there is one, else the row's interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from phase5site import quantiles
from phase5site.slo.categories import Category, number
from phase5site.slo.models import PASS, SourceRow

Row = Mapping[str, Any]
LATENCY_COLUMNS = {0.95: "p95_latency", 0.99: "p99_latency"}


def evidence_columns(category: Category) -> tuple[str, ...]:
    """The stored columns whose values (or NA reasons) are a category's server evidence."""
    if category.kind == "latency":
        return (LATENCY_COLUMNS[category.quantile or 0.95], "latency_buckets")
    if category.kind == "memory":
        return ("rss_mb",)
    return category.server.columns if category.server is not None else ()


def measured_in(category: Category, row: Row) -> bool:
    """Whether a sample holds the server inputs of a category (counts of 0 are measured).

    >>> from phase5site.slo.categories import CATEGORY_BY_NAME
    >>> memory = CATEGORY_BY_NAME["memory"]
    >>> measured_in(memory, {"rss_mb": 210.0}), measured_in(memory, {"rss_mb": None})
    (True, False)
    """
    if category.kind == "latency":
        if _buckets(row.get("latency_buckets")) is not None:
            return True
        return number(row, LATENCY_COLUMNS[category.quantile or 0.95]) is not None
    if category.kind == "memory":
        return number(row, "rss_mb") is not None
    reader = category.server
    if reader is None:
        return False
    return reader.counts(row) is not None or (reader.ratio_column is not None
                                              and number(row, reader.ratio_column) is not None)


def _buckets(raw: object) -> object:
    try:
        return quantiles.parse_buckets(raw)
    except (TypeError, ValueError):
        return None


def explained(row: Row, columns: Sequence[str]) -> bool:
    """Whether a sample says why a column it lacks is NA (a stored reason)."""
    reasons = row.get("na_reasons")
    return isinstance(reasons, Mapping) and any(reasons.get(column) for column in columns)


def enough_evidence(measured: int, explained_na: int, expected: int, min_share: float) -> bool:
    """All samples valid, or at least ``min_share`` of them with every other one explained.

    >>> enough_evidence(6, 0, 6, 0.8), enough_evidence(5, 1, 6, 0.8), enough_evidence(1, 5, 6, 0.8)
    (True, True, False)
    >>> enough_evidence(5, 0, 6, 0.8)   # the sixth sample is missing, not explained
    False
    """
    if measured >= expected:
        return True
    return measured / expected >= min_share and measured + explained_na >= expected


def coverage_note(measured: int, expected: int, min_share: float) -> str:
    """Example: 'only 1 of 6 samples valid (a server verdict needs all of them, or 80% with
    every other sample's NA explained)'."""
    return (f"only {measured} of {expected} samples valid (a server verdict needs all of them, "
            f"or {min_share:.0%} with every other sample's NA explained)")


def significance(row: SourceRow) -> bool | None:
    """Whether a PASS row's interval lies wholly on the passing side (None: no interval or
    not a PASS). An unbounded side counts as crossing.

    >>> from phase5site.slo.stats import Interval
    >>> row = SourceRow("effective_fallback", "server", "ratio", 0.05, "<=", 0.012, "PASS",
    ...                 exact_interval=Interval("clopper-pearson", 0.95, 0.0017, 0.053))
    >>> significance(row)
    False
    """
    interval = row.exact_interval or row.interval
    if row.verdict != PASS or interval is None:
        return None
    if row.comparison == ">=":
        return interval.low is not None and interval.low >= row.threshold
    return interval.high is not None and interval.high <= row.threshold


def category_significance(verdict: str, rows: Sequence[SourceRow]) -> bool | None:
    """A PASS category is significant only if no passing row is not (None: nothing to say)."""
    passing = [row.significant for row in rows if row.verdict == PASS]
    if verdict != PASS or all(flag is None for flag in passing):
        return None
    return all(flag is not False for flag in passing)
