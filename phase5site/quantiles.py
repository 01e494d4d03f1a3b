"""Quantile and ratio arithmetic, once for the whole tool: pure functions, no IO, no imports
from other phase5site parts. ``metrics``, ``store`` and ``slo`` all use these.

**Client side: the nearest-rank quantile.** The ⌈q·n⌉-th smallest of n values (Hyndman &
Fan definition 1, numpy's ``method="inverted_cdf"``, DuckDB's ``quantile_disc``). It is
always an observed latency, so "P95 ≤ 150 ms" holds exactly when at least 95 % of the
requests took ≤ 150 ms, which is what the order-statistic confidence intervals of the SLO
part assume. Dropped requests (never sent) enter the ranking as censored values above every
sent one (``censored_ranking``), so a drop can only raise a client percentile; one that falls
on a drop is a lower bound (``rank_is_censored``).

**Server side: Prometheus' ``histogram_quantile``**, with the exact semantics of Prometheus
2.x (promql/quantile.go, ``bucketQuantile``; documented under "histogram_quantile()" in the
PromQL functions page), in the order Prometheus applies its rules:

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

Buckets are cumulative ``(upper_bound, count)`` pairs; stored ones are JSON text
``[[0.1, 4], ["+Inf", 5]]`` (upper bound in seconds). NA is ``None`` everywhere
(Prometheus returns NaN).
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Sequence
from fractions import Fraction

Buckets = list[tuple[float, float]]
_BOUND_TOLERANCE = 1e-9


# --- exact quantiles of observed values (client side) -------------------------------------


def nearest_rank_index(q: float, n: int) -> int:
    """0-based index of the nearest-rank q-quantile among n sorted values.

    Exact rational arithmetic so that e.g. q=0.07, n=100 gives rank 7, not 8 (the float
    product is 7.000000000000001).

    >>> nearest_rank_index(0.95, 20), nearest_rank_index(0.5, 4), nearest_rank_index(0.0, 3)
    (18, 1, 0)
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be within [0, 1] (got {q!r})")
    if n <= 0:
        raise ValueError(f"need at least one value (got n={n})")
    rank = math.ceil(Fraction(str(q)) * n)
    return max(rank, 1) - 1


def nearest_rank(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank q-quantile of already sorted values; None when there are none.

    >>> nearest_rank([10.0, 20.0, 30.0, 40.0], 0.5)
    20.0
    >>> nearest_rank([10.0, 20.0, 30.0, 40.0], 0.95)
    40.0
    >>> nearest_rank([], 0.99) is None
    True
    """
    n = len(sorted_values)
    if n == 0:
        return None
    return float(sorted_values[nearest_rank_index(q, n)])


def censored_ranking(
    sent_sorted_ms: Sequence[float], dropped_waits_ms: Iterable[float | None]
) -> tuple[list[float], int]:
    """The latency ranking of a set of requests with its dropped ones, and how many of its
    top values are censored.

    A dropped request was never answered: its real latency is at least its wait, and it is
    ranked *above* every sent request of the same set, with the value ``max(its wait, the
    set's largest sent latency)``. So adding drops to a set can only raise its nearest-rank
    percentiles, never lower them (DESIGN.md, "Load": drops can only make figures worse).
    A drop with no known wait in a set without any sent latency has no value and is left
    out (the percentile is NA, as it was without it).

    Worked example: sent 10, 20, 30 ms, drops that waited 5 ms, 45 ms and an unknown time
    -> ranking 10, 20, 30, 30, 30, 45 with the top 3 censored; P50 is 30 (the 3rd value, a
    sent request), P90 is 45 (the 6th, censored: a lower bound).

    >>> censored_ranking([10.0, 20.0, 30.0], [5.0, 45.0, None])
    ([10.0, 20.0, 30.0, 30.0, 30.0, 45.0], 3)
    >>> censored_ranking([], [None, 7.0])
    ([7.0], 1)
    """
    top = float(sent_sorted_ms[-1]) if len(sent_sorted_ms) else None

    def value(wait: float | None) -> float | None:
        if wait is None or top is None:
            return top if wait is None else float(wait)
        return max(float(wait), top)

    censored = sorted(v for v in map(value, dropped_waits_ms) if v is not None)
    # A phase can hold millions of latencies: copy them once, not per element.
    return list(sent_sorted_ms) + censored, len(censored)


def rank_is_censored(q: float, n: int, censored: int) -> bool:
    """True when the nearest-rank q-quantile of n ranked values falls on one of the top
    ``censored`` (dropped) ones: the percentile is then only a lower bound.

    >>> rank_is_censored(0.95, 100, 5), rank_is_censored(0.95, 100, 6), rank_is_censored(0.5, 0, 0)
    (False, True, False)
    """
    if n <= 0 or censored <= 0:
        return False
    return nearest_rank_index(q, n) >= n - censored


def nearest_rank_censored(ranking: Sequence[float], censored: int, q: float) -> tuple[float | None, bool]:
    """Nearest-rank q-quantile of a ``censored_ranking`` and whether it is censored.

    >>> nearest_rank_censored([10.0, 20.0, 30.0, 30.0, 45.0], 2, 0.9)
    (45.0, True)
    >>> nearest_rank_censored([10.0, 20.0, 30.0, 30.0, 45.0], 2, 0.5)
    (30.0, False)
    """
    return nearest_rank(ranking, q), rank_is_censored(q, len(ranking), censored)


def share_at_or_below(sorted_values: Sequence[float], bound: float) -> float | None:
    """Exact share of sorted values <= ``bound``; ``None`` for no values.

    >>> share_at_or_below([10, 20, 30, 40], 25)
    0.5
    """
    n = len(sorted_values)
    if n == 0:
        return None
    return bisect.bisect_right(sorted_values, bound) / n


# --- histograms (server side) ---------------------------------------------------------------


def _bound(value: object) -> float:
    if isinstance(value, str):
        return math.inf if value.strip().lower() in ("+inf", "inf") else float(value)
    return float(value)  # type: ignore[arg-type]


def parse_buckets(raw: object) -> Buckets | None:
    """Bucket list from a stored value (JSON text or list); ``None`` when absent or empty.

    >>> parse_buckets('[[0.1, 4], ["+Inf", 5]]')
    [(0.1, 4.0), (inf, 5.0)]
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

    >>> pool_buckets([[(0.1, 4), (math.inf, 5)], None, [(0.1, 1), (math.inf, 3)]])
    [(0.1, 5.0), (inf, 8.0)]
    """
    totals: dict[float, float] = {}
    seen = False
    for buckets in bucket_lists:
        if not buckets:
            continue
        seen = True
        for bound, count in buckets:
            totals[bound] = totals.get(bound, 0.0) + float(count)
    return sorted(totals.items()) if seen else None


def monotonic_buckets(buckets: Iterable[tuple[float, float]]) -> Buckets:
    """Prometheus' clean-up before any bucket arithmetic: NaN pairs dropped, equal bounds
    merged, sorted by bound, counts made non-decreasing.

    >>> monotonic_buckets([(0.25, 4), (0.1, 6), (math.inf, 10)])
    [(0.1, 6.0), (0.25, 6.0), (inf, 10.0)]
    """
    merged: dict[float, float] = {}
    for upper_bound, count in buckets:
        if math.isnan(upper_bound) or math.isnan(count):
            continue
        merged[upper_bound] = merged.get(upper_bound, 0.0) + count
    highest = -math.inf
    monotonic: Buckets = []
    for upper_bound, count in sorted(merged.items()):
        highest = max(highest, count)
        monotonic.append((upper_bound, highest))
    return monotonic


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]] | None) -> float | None:
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
    if buckets is None or math.isnan(q):
        return None
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = monotonic_buckets(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]) or ordered[-1][0] < 0:
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


def quantile_bucket(q: float, buckets: Iterable[tuple[float, float]]) -> tuple[float | None, float | None]:
    """(lower, upper) edge of the bucket holding the q-quantile's rank; the first bucket's lower
    edge is 0, the +Inf bucket's upper edge +Inf; (None, None) without observations.

    >>> quantile_bucket(0.95, [(0.1, 15), (0.5, 15), (math.inf, 15)])
    (0.0, 0.1)
    >>> quantile_bucket(0.6, [(0.1, 50), (0.25, 90), (math.inf, 100)])
    (0.1, 0.25)
    >>> quantile_bucket(0.95, [(0.1, 50), (0.25, 90), (math.inf, 100)])
    (0.25, inf)
    """
    ordered = monotonic_buckets(buckets)
    if len(ordered) < 2 or ordered[-1][1] <= 0:
        return None, None
    rank = q * ordered[-1][1]
    index = bisect.bisect_left([count for _, count in ordered], rank)
    index = min(index, len(ordered) - 1)
    low = 0.0 if index == 0 else ordered[index - 1][0]
    return low, ordered[index][0]


def _interpolate(ordered: Buckets, index: int, rank: float) -> float | None:
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


def bucket_share_at_or_below(buckets: Buckets | None, bound: float) -> float | None:
    """Exact share of observations <= ``bound`` when a bucket edge equals it, else ``None``.

    >>> bucket_share_at_or_below([(0.1, 50), (0.25, 99), (math.inf, 100)], 0.25)
    0.99
    >>> bucket_share_at_or_below([(0.1, 50), (0.25, 99), (math.inf, 100)], 0.15) is None
    True
    """
    if not buckets:
        return None
    ordered = monotonic_buckets(buckets)
    total = ordered[-1][1]
    if total <= 0 or not math.isinf(ordered[-1][0]):
        return None
    for upper, count in ordered:
        if abs(upper - bound) <= _BOUND_TOLERANCE * max(1.0, abs(bound)):
            return count / total
    return None


def bucket_rank_bounds(
    buckets: Buckets | None, low_rank: int | None, high_rank: int | None
) -> tuple[float | None, float | None]:
    """Values that surely bracket the order statistics ``low_rank`` and ``high_rank``.

    The ``low_rank``-th observation lies in the first bucket whose cumulative count reaches
    it, so it is at least that bucket's lower edge; the ``high_rank``-th is at most its
    bucket's upper edge (``None`` for +Inf).

    >>> bucket_rank_bounds([(0.1, 50), (0.25, 100), (math.inf, 100)], 40, 61)
    (0.0, 0.25)
    """
    if not buckets:
        return None, None
    ordered = monotonic_buckets(buckets)

    def bucket_index(rank: int) -> int | None:
        return next((i for i, (_, count) in enumerate(ordered) if count >= rank), None)

    low: float | None = None
    if low_rank is not None and (index := bucket_index(low_rank)) is not None:
        low = 0.0 if index == 0 else ordered[index - 1][0]
    high: float | None = None
    if high_rank is not None and (index := bucket_index(high_rank)) is not None:
        high = None if math.isinf(ordered[index][0]) else ordered[index][0]
    return low, high


# --- ratios -----------------------------------------------------------------------------------


def ratio(numerator: int | float, denominator: int | float) -> float | None:
    """numerator / denominator, or None (NA) when the denominator is zero.

    >>> ratio(3, 4), ratio(0, 0)
    (0.75, None)
    """
    if denominator == 0:
        return None
    return numerator / denominator
