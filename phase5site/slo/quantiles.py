"""Latency quantiles: exact ones from client requests, estimated ones from pooled histograms.

Client side: the nearest-rank quantile (the ceil(q*n)-th smallest value), which is an
actual observation, so its distribution-free confidence interval is a pair of order
statistics (see ``stats.quantile_rank_interval``).

Server side: Prometheus' ``histogram_quantile`` over bucket deltas pooled (summed per
``le``) across the samples of a phase, with Prometheus' rules: linear interpolation inside
the bucket, the lowest bucket starts at 0, a quantile in the +Inf bucket returns the highest
finite bound (https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile).
Buckets are cumulative ``[upper_bound, count]`` pairs as stored in ``latency_buckets``
(upper bound in seconds, ``"+Inf"`` as a string).
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Sequence

from phase5site.metrics.quantile import histogram_quantile as prometheus_histogram_quantile
from phase5site.store.quantiles import nearest_rank as store_nearest_rank

Buckets = list[tuple[float, float]]
_BOUND_TOLERANCE = 1e-9


def _bound(value: object) -> float:
    if isinstance(value, str):
        return math.inf if value.strip().lower() in ("+inf", "inf") else float(value)
    return float(value)  # type: ignore[arg-type]


def parse_buckets(raw: object) -> Buckets | None:
    """Bucket list from a stored value (JSON text or list); ``None`` when absent or empty.

    Example: ``parse_buckets('[[0.1, 4], ["+Inf", 5]]') == [(0.1, 4.0), (inf, 5.0)]``.
    """
    if raw is None:
        return None
    if isinstance(raw, str):
        if not raw.strip():
            return None
        raw = json.loads(raw)
    pairs = sorted((_bound(bound), float(count)) for bound, count in raw)  # type: ignore[union-attr]
    return pairs or None


def pool_buckets(bucket_lists: Iterable[Buckets | None]) -> Buckets | None:
    """Sum bucket deltas per upper bound over samples; ``None`` when no sample has buckets.

    Example: ``[(0.1, 4), (inf, 5)]`` + ``[(0.1, 1), (inf, 3)]`` -> ``[(0.1, 5), (inf, 8)]``.
    """
    totals: dict[float, float] = {}
    seen = False
    for buckets in bucket_lists:
        if not buckets:
            continue
        seen = True
        for bound, count in buckets:
            totals[bound] = totals.get(bound, 0.0) + count
    return sorted(totals.items()) if seen else None


def _monotone(buckets: Buckets) -> Buckets:
    # Prometheus forces cumulative counts to be non-decreasing before interpolating.
    fixed: Buckets = []
    running = 0.0
    for bound, count in buckets:
        running = max(running, count)
        fixed.append((bound, running))
    return fixed


def histogram_quantile(q: float, buckets: Buckets | None) -> float | None:
    """The q-quantile of cumulative buckets, Prometheus semantics; ``None`` (NA) when empty.

    One implementation for the whole tool: the metrics part's, which a test checks against
    a real Prometheus. Example: buckets ``[(0.1, 50), (0.25, 100), (inf, 100)]``, q = 0.95:
    rank 95 falls in (0.1, 0.25] holding 50 observations -> 0.1 + 0.15 * 45/50 = 0.235.
    """
    if not buckets or not 0.0 <= q <= 1.0:
        return None
    return prometheus_histogram_quantile(q, buckets)


def bucket_share_at_or_below(buckets: Buckets | None, bound: float) -> float | None:
    """Exact share of observations <= ``bound`` when a bucket edge equals it, else ``None``.

    Example: ``[(0.1, 50), (0.25, 99), (inf, 100)]`` at 0.25 -> 0.99; at 0.15 -> None.
    """
    if not buckets:
        return None
    buckets = _monotone(buckets)
    total = buckets[-1][1]
    if total <= 0 or not math.isinf(buckets[-1][0]):
        return None
    for upper, count in buckets:
        if abs(upper - bound) <= _BOUND_TOLERANCE * max(1.0, abs(bound)):
            return count / total
    return None


def bucket_rank_bounds(
    buckets: Buckets | None, low_rank: int | None, high_rank: int | None
) -> tuple[float | None, float | None]:
    """Values that surely bracket the order statistics ``low_rank`` and ``high_rank``.

    The ``low_rank``-th observation lies in the first bucket whose cumulative count reaches
    it, so it is at least that bucket's lower edge; the ``high_rank``-th is at most its
    bucket's upper edge (``None`` for +Inf). Example: ``[(0.1, 50), (0.25, 100), (inf, 100)]``,
    ranks 40 and 61 -> (0.0, 0.25).
    """
    if not buckets:
        return None, None
    buckets = _monotone(buckets)

    def bucket_index(rank: int) -> int | None:
        return next((i for i, (_, count) in enumerate(buckets) if count >= rank), None)

    low: float | None = None
    if low_rank is not None and (index := bucket_index(low_rank)) is not None:
        low = 0.0 if index == 0 else buckets[index - 1][0]
    high: float | None = None
    if high_rank is not None and (index := bucket_index(high_rank)) is not None:
        high = None if math.isinf(buckets[index][0]) else buckets[index][0]
    return low, high


def nearest_rank(sorted_values: Sequence[float], q: float) -> float | None:
    """The ceil(q*n)-th smallest value (1-based); ``None`` for no values.

    The store's definition (exact rational rank), so report and samples agree.
    Example: ``nearest_rank([10, 20, 30, 40], 0.5) == 20``; q = 0.95 -> 40.
    """
    value = store_nearest_rank(sorted_values, q)
    return None if value is None else float(value)


def share_at_or_below(sorted_values: Sequence[float], bound: float) -> float | None:
    """Exact share of values <= ``bound``; ``None`` for no values.

    Example: ``share_at_or_below([10, 20, 30, 40], 25) == 0.5``.
    """
    n = len(sorted_values)
    if n == 0:
        return None
    return bisect.bisect_right(sorted_values, bound) / n
