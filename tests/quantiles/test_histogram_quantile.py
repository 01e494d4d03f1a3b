"""histogram_quantile: table tests of every Prometheus rule, and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phase5site.quantiles import histogram_quantile

INF = math.inf
LATENCY = [(0.1, 50), (0.25, 90), (INF, 100)]

CASES = [
    # (id, q, buckets, expected)
    ("interpolates inside a bucket", 0.6, LATENCY, 0.1 + 0.15 * (60 - 50) / 40),
    ("first bucket lower bound is 0", 0.25, LATENCY, 0.1 * 25 / 50),
    ("+Inf bucket gives highest finite bound", 0.95, LATENCY, 0.25),
    ("q=1 lands in +Inf bucket when it holds observations", 1.0, LATENCY, 0.25),
    ("q=1 reaches the top of the last finite bucket", 1.0, [(1, 3), (2, 10), (INF, 10)], 2.0),
    ("exact bucket edge", 0.5, LATENCY, 0.1),
    ("zero count is NA", 0.5, [(0.1, 0), (INF, 0)], None),
    ("single bucket is NA", 0.5, [(INF, 10)], None),
    ("no +Inf bucket is NA", 0.5, [(0.1, 5), (0.2, 10)], None),
    ("empty is NA", 0.5, [], None),
    ("q above 1 is +Inf", 1.5, LATENCY, INF),
    ("q below 0 is -Inf", -0.1, LATENCY, -INF),
    ("NaN q is NA", math.nan, LATENCY, None),
    ("negative first bound returns that bound", 0.1, [(-1, 5), (0, 8), (INF, 10)], -1),
    ("zero first bound returns that bound", 0.1, [(0, 5), (1, 8), (INF, 10)], 0),
    ("second bucket after negative starts at previous bound", 0.65, [(-1, 5), (1, 8), (INF, 10)],
     -1 + 2 * (6.5 - 5) / 3),
    ("unsorted input is sorted", 0.6, [(INF, 100), (0.25, 90), (0.1, 50)], 0.1375),
    ("non-monotonic counts are raised", 0.5, [(0.1, 60), (0.25, 40), (INF, 100)],
     0.1 * 50 / 60),
    ("non-monotonic: rank in raised bucket goes to next rising one", 0.8,
     [(0.1, 60), (0.25, 40), (0.5, 100), (INF, 100)], 0.25 + 0.25 * (80 - 60) / 40),
    ("duplicate bounds are merged", 0.5, [(0.1, 25), (0.1, 25), (INF, 100)], 0.1),
    ("q=0 with empty first bucket is NaN in Prometheus", 0.0, [(0.1, 0), (1, 5), (INF, 5)], None),
    ("q=0 with a filled first bucket is 0", 0.0, [(0.1, 2), (INF, 5)], 0.0),
]


@pytest.mark.parametrize(("q", "buckets", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_table(q: float, buckets: list[tuple[float, float]], expected: float | None) -> None:
    result = histogram_quantile(q, buckets)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


BOUNDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5]


@st.composite
def cumulative_buckets(draw: st.DrawFn) -> list[tuple[float, float]]:
    increments = draw(st.lists(st.integers(0, 1000), min_size=len(BOUNDS) + 1, max_size=len(BOUNDS) + 1))
    counts, running = [], 0
    for increment in increments:
        running += increment
        counts.append(running)
    return list(zip([*BOUNDS, INF], counts))


@given(cumulative_buckets(), st.floats(0, 1), st.floats(0, 1))
def test_monotone_in_q(buckets: list[tuple[float, float]], q1: float, q2: float) -> None:
    low, high = sorted((q1, q2))
    a, b = histogram_quantile(low, buckets), histogram_quantile(high, buckets)
    if a is not None and b is not None:
        assert a <= b + 1e-12


@given(cumulative_buckets(), st.floats(0.001, 1))
def test_within_the_bucket_holding_the_rank(buckets: list[tuple[float, float]], q: float) -> None:
    result = histogram_quantile(q, buckets)
    total = buckets[-1][1]
    if total == 0:
        assert result is None
        return
    assert result is not None
    rank = q * total
    index = next(i for i, (_, count) in enumerate(buckets) if count >= rank)
    if index == len(buckets) - 1:
        assert result == BOUNDS[-1]
        return
    lower = 0.0 if index == 0 else buckets[index - 1][0]
    assert lower - 1e-12 <= result <= buckets[index][0] + 1e-12
