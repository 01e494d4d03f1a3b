from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phase5site.slo.stats import (
    binomial_cdf,
    clopper_pearson_interval,
    max_exceeds_quantile_probability,
    quantile_rank_interval,
    regularized_beta,
    summarize,
    wilson_interval,
)


def test_twelve_of_twelve_known_bounds() -> None:
    exact = clopper_pearson_interval(12, 12)
    wilson = wilson_interval(12, 12)
    assert exact is not None and wilson is not None
    assert exact.low == pytest.approx(0.025 ** (1 / 12), abs=1e-6)  # 0.7354
    assert exact.low == pytest.approx(0.7354, abs=1e-4)
    assert exact.high == 1.0
    assert wilson.low == pytest.approx(0.7575, abs=1e-4)
    assert wilson.high == 1.0


@pytest.mark.parametrize(
    ("successes", "total", "wilson", "exact"),
    [
        # Reference values as published for statsmodels' proportion_confint (alpha 0.05).
        (8, 10, (0.4902, 0.9433), (0.4439, 0.9748)),
        (0, 10, (0.0, 0.2775), (0.0, 0.3085)),
        (50, 100, (0.4038, 0.5962), (0.3983, 0.6017)),
    ],
)
def test_intervals_against_reference_values(successes: int, total: int, wilson: tuple, exact: tuple) -> None:
    w = wilson_interval(successes, total)
    e = clopper_pearson_interval(successes, total)
    assert w is not None and e is not None
    assert (w.low, w.high) == pytest.approx(wilson, abs=1e-4)
    assert (e.low, e.high) == pytest.approx(exact, abs=1e-4)


def test_no_events_gives_no_interval() -> None:
    assert wilson_interval(0, 0) is None
    assert clopper_pearson_interval(0, 0) is None


@pytest.mark.parametrize(("x", "a", "b", "expected"), [(0.5, 1, 1, 0.5), (0.3, 2, 1, 0.09), (0.3, 1, 2, 1 - 0.7**2)])
def test_regularized_beta_closed_forms(x: float, a: float, b: float, expected: float) -> None:
    assert regularized_beta(x, a, b) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("n", "p"), [(12, 0.5), (20, 0.95), (7, 0.01), (50, 0.3)])
def test_binomial_cdf_matches_the_sum(n: int, p: float) -> None:
    for k in range(-1, n + 1):
        direct = math.fsum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(0, k + 1))
        assert binomial_cdf(k, n, p) == pytest.approx(direct, abs=1e-10)


def test_median_ranks_for_one_hundred() -> None:
    # Classic table value: the 95% CI for the median of 100 observations is (x_(40), x_(61)).
    assert quantile_rank_interval(100, 0.5) == (40, 61)


def test_p99_of_one_hundred_has_no_upper_bound() -> None:
    low, high = quantile_rank_interval(100, 0.99)
    assert high is None
    assert low is not None and low < 100


@pytest.mark.parametrize(("n", "q"), [(30, 0.5), (200, 0.95), (1000, 0.99), (57, 0.9)])
def test_rank_interval_is_tight_and_covers(n: int, q: float) -> None:
    low, high = quantile_rank_interval(n, q)
    assert low is not None and high is not None
    coverage = binomial_cdf(high - 1, n, q) - binomial_cdf(low - 1, n, q)
    assert coverage >= 0.95
    # equal tails, as tight as possible: one rank further in breaks the tail condition
    assert binomial_cdf(low, n, q) > 0.025
    assert binomial_cdf(high - 2, n, q) < 0.975


def test_summarize_skips_na() -> None:
    summary = summarize([1.0, None, 3.0])
    assert (summary.n_valid, summary.minimum, summary.maximum, summary.mean) == (2, 1.0, 3.0, 2.0)
    assert summary.stddev == pytest.approx(math.sqrt(2))
    assert summarize([None]).mean is None
    assert summarize([5.0]).stddev is None


def test_max_exceeds_quantile_probability() -> None:
    assert max_exceeds_quantile_probability(12, 0.9) == pytest.approx(1 - 0.9**12)


counts = st.integers(min_value=1, max_value=5000).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)


@given(counts)
def test_intervals_contain_the_point_estimate(pair: tuple[int, int]) -> None:
    successes, total = pair
    share = successes / total
    for interval in (wilson_interval(successes, total), clopper_pearson_interval(successes, total)):
        assert interval is not None and interval.low is not None and interval.high is not None
        assert 0.0 <= interval.low <= share + 1e-9
        assert share - 1e-9 <= interval.high <= 1.0


@given(counts)
def test_intervals_are_monotone_in_successes(pair: tuple[int, int]) -> None:
    successes, total = pair
    if successes == total:
        return
    for make in (wilson_interval, clopper_pearson_interval):
        lower, higher = make(successes, total), make(successes + 1, total)
        assert lower is not None and higher is not None
        assert higher.low >= lower.low - 1e-9  # type: ignore[operator]
        assert higher.high >= lower.high - 1e-9  # type: ignore[operator]


@given(st.integers(min_value=1, max_value=2000), st.sampled_from([0.5, 0.9, 0.95, 0.99]))
def test_rank_interval_brackets_the_point_rank(n: int, q: float) -> None:
    low, high = quantile_rank_interval(n, q)
    point = max(1, math.ceil(q * n - 1e-9))
    if low is not None:
        assert 1 <= low <= point
    if high is not None:
        assert point <= high <= n


def _exact_binomial_cdf(k: int, n: int, p: float) -> float:
    # Brute force in exact rational arithmetic: no incomplete beta, no rounding until the end.
    from fractions import Fraction

    share = Fraction(p)
    return float(sum(math.comb(n, i) * share**i * (1 - share) ** (n - i) for i in range(0, k + 1)))


@pytest.mark.parametrize(
    ("k", "n", "p"),
    [
        (0, 1000, 0.5),  # 2**-1000: far tail, relative accuracy matters
        (1, 300, 0.999),  # lower tail near p = 1
        (290, 300, 0.999),
        (299, 300, 0.999),  # 1 - 0.999**300
        (0, 300, 1e-4),
        (5, 300, 1e-4),  # upper tail near p = 0
        (188, 200, 0.95),  # around the mean of a P95 rank
        (197, 200, 0.99),
        (6, 12, 0.5),
    ],
)
def test_binomial_cdf_at_extremes_matches_exact_sum(k: int, n: int, p: float) -> None:
    exact = _exact_binomial_cdf(k, n, p)
    assert binomial_cdf(k, n, p) == pytest.approx(exact, rel=1e-9, abs=1e-15)
    # and the complement through the other branch of the continued fraction
    assert 1.0 - regularized_beta(p, k + 1, n - k) == pytest.approx(exact, rel=1e-9, abs=1e-12)


# --- cross-checks against values computed independently of phase5site.slo.stats -------------


@pytest.mark.parametrize(("successes", "total"), [(0, 1), (1, 1), (12, 12), (8, 10), (0, 10), (50, 100),
                                                  (997, 1000), (9_950, 10_000), (1, 576_000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_clopper_pearson_equals_scipy_binomtest(successes: int, total: int, confidence: float) -> None:
    from scipy.stats import binomtest

    expected = binomtest(successes, total).proportion_ci(confidence_level=confidence, method="exact")
    ours = clopper_pearson_interval(successes, total, confidence)
    assert ours is not None
    assert ours.low == pytest.approx(expected.low, rel=1e-9, abs=1e-12)
    assert ours.high == pytest.approx(expected.high, rel=1e-9, abs=1e-12)


def _exact_rank_interval(n: int, q: float, confidence: float) -> tuple[int | None, int | None]:
    """The equal-tail order-statistic ranks from exact rational binomial sums (no floats)."""
    from fractions import Fraction

    p, alpha_half = Fraction(str(q)), (1 - Fraction(str(confidence))) / 2
    cdf, running = [], Fraction(0)
    for k in range(n + 1):
        running += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        cdf.append(running)  # cdf[k] = P(B <= k)
    lower = max((rank for rank in range(1, n + 1) if cdf[rank - 1] <= alpha_half), default=None)
    upper = min((rank for rank in range(1, n + 1) if cdf[rank - 1] >= 1 - alpha_half), default=None)
    return lower, upper


@pytest.mark.parametrize(("n", "q"), [(1, 0.5), (12, 0.5), (20, 0.95), (100, 0.5), (100, 0.99),
                                      (150, 0.9), (240, 0.95), (300, 0.99)])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_quantile_rank_interval_equals_exact_rational_search(n: int, q: float, confidence: float) -> None:
    assert quantile_rank_interval(n, q, confidence) == _exact_rank_interval(n, q, confidence)
