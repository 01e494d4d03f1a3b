"""Confidence bounds and summary statistics; the special functions come from SciPy.

- ``wilson_interval``: Wilson score interval for a binomial proportion (Wilson 1927;
  Brown, Cai & DasGupta 2001, "Interval Estimation for a Binomial Proportion").
- ``clopper_pearson_interval``: the exact interval from beta quantiles (Clopper & Pearson 1934).
- ``quantile_rank_interval``: distribution-free confidence interval for a population
  quantile from order statistics: the number of observations at or below the q-quantile
  is Binomial(n, q) (Hahn & Meeker, "Statistical Intervals", ch. 5; David & Nagaraja,
  "Order Statistics", 7.1).

The binomial CDF, the regularized incomplete beta function and its inverse are SciPy's
(``scipy.special.bdtr``, ``betainc``, ``betaincinv``: the Cephes implementations that
``scipy.stats`` uses too), accurate and fast for n in the millions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

from scipy import special

@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval; ``None`` for a bound means unbounded by the data."""

    method: str
    confidence: float
    low: float | None
    high: float | None


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularized incomplete beta function (``scipy.special.betainc``).

    Example: ``regularized_beta(0.5, 1, 1) == 0.5`` (uniform CDF);
    ``regularized_beta(0.3, 2, 1) == 0.09`` (x**2).
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    return float(special.betainc(a, b, x))


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p) (``scipy.special.bdtr``, i.e. I_{1-p}(n-k, k+1)).

    Example: ``binomial_cdf(0, 12, 0.5) == 0.5**12``; ``binomial_cdf(11, 12, 0.99) == 1 - 0.99**12``.
    """
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    return float(special.bdtr(k, n, p))


def _beta_quantile(probability: float, a: float, b: float) -> float:
    """Inverse of I_x(a, b) in x (``scipy.special.betaincinv``)."""
    return float(special.betaincinv(a, b, probability))


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def wilson_interval(successes: int, total: int, confidence: float = 0.95) -> Interval | None:
    """Wilson score interval; ``None`` when ``total`` is 0 (nothing observed).

    Example: 12 successes of 12 at 95% -> (0.7575, 1.0).
    """
    if total <= 0:
        return None
    z = _z(confidence)
    share = successes / total
    z2_n = z * z / total
    centre = (share + z2_n / 2.0) / (1.0 + z2_n)
    half = z / (1.0 + z2_n) * math.sqrt(share * (1.0 - share) / total + z2_n / (4.0 * total))
    return Interval("wilson", confidence, max(0.0, centre - half), min(1.0, centre + half))


def clopper_pearson_interval(successes: int, total: int, confidence: float = 0.95) -> Interval | None:
    """Exact (Clopper-Pearson) interval; ``None`` when ``total`` is 0.

    Example: 12 of 12 at 95% two-sided -> lower 0.025**(1/12) = 0.7354, upper 1.
    """
    if total <= 0:
        return None
    alpha = 1.0 - confidence
    low = 0.0 if successes <= 0 else _beta_quantile(alpha / 2.0, successes, total - successes + 1)
    high = 1.0 if successes >= total else _beta_quantile(1.0 - alpha / 2.0, successes + 1, total - successes)
    return Interval("clopper-pearson", confidence, low, high)


def quantile_rank_interval(n: int, q: float, confidence: float = 0.95) -> tuple[int | None, int | None]:
    """1-based ranks (l, u) with P(X_(l) <= xi_q <= X_(u)) >= confidence, distribution-free.

    B = #{X_i <= xi_q} ~ Binomial(n, q); X_(l) <= xi_q iff B >= l and X_(u) >= xi_q if B < u,
    so coverage is F(u-1) - F(l-1) with F the Binomial(n, q) CDF. We take the largest l with
    F(l-1) <= alpha/2 and the smallest u with F(u-1) >= 1 - alpha/2 (equal tails). A bound
    the data cannot give (too few observations) is ``None``.

    Example: n = 100, q = 0.5 -> (40, 61); n = 100, q = 0.99 -> (97, None): a hundred
    requests cannot bound P99 from above.
    """
    if n <= 0:
        return None, None
    alpha_half = (1.0 - confidence) / 2.0
    lower: int | None = None
    if binomial_cdf(0, n, q) <= alpha_half:
        lo, hi = 1, n  # invariant: F(lo-1) <= alpha/2
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if binomial_cdf(mid - 1, n, q) <= alpha_half:
                lo = mid
            else:
                hi = mid - 1
        lower = lo
    upper: int | None = None
    if binomial_cdf(n - 1, n, q) >= 1.0 - alpha_half:
        lo, hi = 1, n  # invariant: F(hi-1) >= 1 - alpha/2
        while lo < hi:
            mid = (lo + hi) // 2
            if binomial_cdf(mid - 1, n, q) >= 1.0 - alpha_half:
                hi = mid
            else:
                lo = mid + 1
        upper = lo
    return lower, upper


@dataclass(frozen=True)
class SampleSummary:
    """min / max / mean / sample standard deviation (n-1) over the valid per-sample values."""

    n_valid: int
    minimum: float | None
    maximum: float | None
    mean: float | None
    stddev: float | None


def summarize(values: Sequence[float | None]) -> SampleSummary:
    """Summary over the non-NA values.

    Example: ``summarize([1.0, None, 3.0])`` -> n_valid 2, min 1, max 3, mean 2, stddev 1.4142.
    """
    valid = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not valid:
        return SampleSummary(0, None, None, None, None)
    # Scaled by the largest magnitude, so values near the float limit (a ratio over a tiny
    # fractional count) neither overflow the sum nor the squares.
    scale = max(abs(v) for v in valid) or 1.0
    scaled = [v / scale for v in valid]
    mean = math.fsum(scaled) / len(scaled)
    stddev = None
    if len(valid) > 1:
        stddev = math.sqrt(math.fsum((v - mean) ** 2 for v in scaled) / (len(scaled) - 1)) * scale
    return SampleSummary(len(valid), min(valid), max(valid), mean * scale, stddev)


def max_exceeds_quantile_probability(n: int, q: float) -> float:
    """Probability that the maximum of n samples exceeds the population q-quantile: 1 - q**n.

    Example: 12 samples, q = 0.9 -> 1 - 0.9**12 = 0.7176.
    """
    return 1.0 - q**n
