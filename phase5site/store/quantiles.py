"""Client-side quantile definition and window ratios: pure arithmetic, no IO.

Every exact client quantile in phase5site is the **nearest-rank** quantile: the
⌈q·n⌉-th smallest of the n values (Hyndman & Fan definition 1, numpy's
``method="inverted_cdf"``, DuckDB's ``quantile_disc``). It is always an observed latency,
so "P95 ≤ 150 ms" holds exactly when at least 95 % of the requests took ≤ 150 ms, which is
what the order-statistic confidence intervals of the SLO part assume. Use
``nearest_rank`` on ``RunReader.client_latencies_ms()`` to get the same numbers the store
computes in SQL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

CLIENT_QUANTILES: tuple[tuple[str, float], ...] = (
    ("client_p50_ms", 0.5),
    ("client_p90_ms", 0.9),
    ("client_p95_ms", 0.95),
    ("client_p99_ms", 0.99),
)


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


def ratio(numerator: int | float, denominator: int | float) -> float | None:
    """numerator / denominator, or None (NA) when the denominator is zero.

    >>> ratio(3, 4), ratio(0, 0)
    (0.75, None)
    """
    if denominator == 0:
        return None
    return numerator / denominator


def client_rates(
    *, requests: int, ok: int, http_4xx: int, http_5xx: int, transport_errors: int
) -> dict[str, float | None]:
    """Window ratios over requests that were sent (dropped ones excluded).

    Transport errors (timeout, connect_error) are failures *and* errors:
    success = ok / requests, error = (4xx + 5xx + transport) / requests.

    >>> client_rates(requests=100, ok=96, http_4xx=1, http_5xx=2, transport_errors=1)
    {'client_success_rate': 0.96, 'client_error_rate': 0.04, 'client_error_rate_4xx': 0.01, \
'client_error_rate_5xx': 0.02}
    """
    return {
        "client_success_rate": ratio(ok, requests),
        "client_error_rate": ratio(http_4xx + http_5xx + transport_errors, requests),
        "client_error_rate_4xx": ratio(http_4xx, requests),
        "client_error_rate_5xx": ratio(http_5xx, requests),
    }
