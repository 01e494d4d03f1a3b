from __future__ import annotations

import math

import pytest

from phase5site.quantiles import (
    bucket_rank_bounds,
    bucket_share_at_or_below,
    histogram_quantile,
    nearest_rank,
    parse_buckets,
    pool_buckets,
    share_at_or_below,
)

INF = math.inf


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.95, [(0.1, 50), (0.25, 100), (INF, 100)], 0.235),  # 0.1 + 0.15 * 45/50
        (0.5, [(0.1, 50), (0.25, 100), (INF, 100)], 0.1),
        (0.25, [(0.1, 50), (0.25, 100), (INF, 100)], 0.05),  # lowest bucket starts at 0
        (0.99, [(0.1, 50), (0.25, 90), (INF, 100)], 0.25),  # in +Inf: highest finite bound
        (0.5, [(0.1, 0), (INF, 0)], None),  # no observations: NA
        (0.5, [(0.1, 5), (0.25, 10)], None),  # no +Inf bucket: NA (Prometheus NaN)
        (0.5, None, None),
        (0.5, [(0.1, 6), (0.25, 4), (INF, 10)], 0.1 * 5 / 6),  # non-monotone fixed upward
    ],
)
def test_histogram_quantile_prometheus_semantics(q: float, buckets, expected) -> None:
    result = histogram_quantile(q, buckets)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_parse_and_pool_buckets() -> None:
    first = parse_buckets('[[0.1, 4], ["+Inf", 5]]')
    second = parse_buckets([[0.1, 1], ["+Inf", 3]])
    assert first == [(0.1, 4.0), (INF, 5.0)]
    assert pool_buckets([first, None, second]) == [(0.1, 5.0), (INF, 8.0)]
    assert pool_buckets([None, None]) is None
    assert parse_buckets(None) is None and parse_buckets("") is None


def test_pooled_histogram_differs_from_averaged_percentiles() -> None:
    busy = [(0.1, 990), (0.25, 1000), (INF, 1000)]  # p95 in (0, 0.1]
    slow = [(0.1, 0), (0.25, 10), (INF, 10)]  # 10 slow requests
    pooled = histogram_quantile(0.95, pool_buckets([busy, slow]))
    averaged = (histogram_quantile(0.95, busy) + histogram_quantile(0.95, slow)) / 2  # type: ignore[operator]
    assert pooled == pytest.approx(0.1 * (0.95 * 1010) / 990)
    assert averaged > 0.15 > pooled  # averaging would let 10 requests dominate the verdict


def test_bucket_share_only_at_a_bucket_edge() -> None:
    buckets = [(0.1, 50), (0.25, 99), (INF, 100)]
    assert bucket_share_at_or_below(buckets, 0.25) == pytest.approx(0.99)
    assert bucket_share_at_or_below(buckets, 0.15) is None


def test_bucket_rank_bounds() -> None:
    buckets = [(0.1, 50), (0.25, 100), (INF, 100)]
    assert bucket_rank_bounds(buckets, 40, 61) == (0.0, 0.25)
    assert bucket_rank_bounds(buckets, 60, None) == (0.1, None)
    assert bucket_rank_bounds([(0.1, 5), (INF, 10)], 1, 9) == (0.0, None)


def test_nearest_rank_and_share() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert nearest_rank(values, 0.5) == 20.0
    assert nearest_rank(values, 0.95) == 40.0
    assert nearest_rank([], 0.5) is None
    assert share_at_or_below(values, 25) == 0.5
    assert share_at_or_below(values, 40) == 1.0
    assert share_at_or_below([], 1) is None
