"""``histogram_quantile`` with the exact semantics of Prometheus 2.x (promql/quantile.go,
``bucketQuantile``; documented under "histogram_quantile()" in the PromQL functions page).

Rules, in the order Prometheus applies them:

1. ``q < 0`` → -Inf, ``q > 1`` → +Inf (NaN q → NA).
2. Buckets are sorted by upper bound; without a ``+Inf`` bucket the result is NA.
3. Buckets with the same upper bound are merged (counts added).
4. Bucket counts are made monotonic: a count lower than an earlier one is raised to it
   (this happens when buckets are scraped at slightly different moments or reset).
5. Fewer than 2 buckets, or a total count of 0 → NA.
6. ``rank = q · total``; the answer lies in the first bucket whose cumulative count ≥ rank.
   If that is the ``+Inf`` bucket, the highest finite upper bound is returned. If it is the
   first bucket and that bucket's upper bound is ≤ 0, that upper bound is returned.
   Otherwise the value is interpolated linearly inside the bucket, whose lower bound is the
   previous bucket's upper bound, or 0 for the first bucket.

NA is ``None`` here (Prometheus returns NaN).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable


def _merged_monotonic(buckets: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: dict[float, float] = {}
    for upper_bound, count in buckets:
        if math.isnan(upper_bound) or math.isnan(count):
            continue
        merged[upper_bound] = merged.get(upper_bound, 0.0) + count
    ordered = sorted(merged.items())
    highest = -math.inf
    monotonic: list[tuple[float, float]] = []
    for upper_bound, count in ordered:
        highest = max(highest, count)
        monotonic.append((upper_bound, highest))
    return monotonic


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The q-quantile of cumulative ``(upper_bound, count)`` buckets, or None (NA).

    Worked example: buckets ``(0.1, 50), (0.25, 90), (+Inf, 100)``, q = 0.95:
    rank = 95 falls in the +Inf bucket → the highest finite bound, 0.25.
    q = 0.6: rank = 60 falls in (0.1, 0.25] holding 40 → 0.1 + 0.15 · (60 − 50)/40 = 0.1375.

    >>> histogram_quantile(0.6, [(0.1, 50), (0.25, 90), (math.inf, 100)])
    0.1375
    >>> histogram_quantile(0.95, [(0.1, 50), (0.25, 90), (math.inf, 100)])
    0.25
    >>> histogram_quantile(0.5, [(0.1, 0), (math.inf, 0)]) is None
    True
    """
    if math.isnan(q):
        return None
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = _merged_monotonic(buckets)
    if not ordered or not math.isinf(ordered[-1][0]) or ordered[-1][0] < 0:
        return None
    if len(ordered) < 2:
        return None
    observations = ordered[-1][1]
    if observations == 0:
        return None
    rank = q * observations
    counts = [count for _, count in ordered[:-1]]
    index = bisect.bisect_left(counts, rank)  # first bucket with count >= rank
    if index == len(ordered) - 1:
        return ordered[-2][0]
    if index == 0 and ordered[0][0] <= 0:
        return ordered[0][0]
    return _interpolate(ordered, index, rank)


def _interpolate(ordered: list[tuple[float, float]], index: int, rank: float) -> float | None:
    bucket_start = 0.0
    bucket_end, count = ordered[index]
    if index > 0:
        bucket_start = ordered[index - 1][0]
        count -= ordered[index - 1][1]
        rank -= ordered[index - 1][1]
    if count == 0:
        # Only reachable for q = 0 with an empty first bucket: Prometheus computes 0/0 = NaN.
        return None
    return bucket_start + (bucket_end - bucket_start) * (rank / count)
