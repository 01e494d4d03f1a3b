"""Dropped requests count (DESIGN.md "Load"): a drop can only make client figures worse.

For any sent latencies and any drops, the nearest-rank percentiles with the drops are >=
those without, and the success rate with them is <= the one without.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from phase5site.quantiles import censored_ranking, nearest_rank, nearest_rank_censored, rank_is_censored
from phase5site.store.queries import client_rates

QUANTILES = (0.5, 0.9, 0.95, 0.99)
latency_ms = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
outcome = st.sampled_from(("ok", "http_4xx", "http_5xx", "timeout", "connect_error"))


@given(st.lists(latency_ms, max_size=300), st.lists(st.one_of(st.none(), latency_ms), max_size=60))
def test_drops_never_lower_a_percentile(sent: list[float], waits: list[float | None]) -> None:
    sent = sorted(sent)
    ranking, censored = censored_ranking(sent, waits)
    assert ranking == sorted(ranking), "drops sit above every sent request"
    assert censored == (len(waits) if sent else sum(w is not None for w in waits))
    for q in QUANTILES:
        without = nearest_rank(sent, q)
        with_drops, is_censored = nearest_rank_censored(ranking, censored, q)
        if without is not None:
            assert with_drops is not None and with_drops >= without
        # Censored exactly when the rank falls among the drops, never on a sent request.
        assert is_censored == (with_drops is not None and censored > 0
                               and rank_is_censored(q, len(ranking), censored))
        if not censored:
            assert (with_drops, is_censored) == (without, False)


@given(st.lists(outcome, max_size=300), st.integers(min_value=0, max_value=300))
def test_drops_never_raise_the_success_rate(outcomes: list[str], dropped: int) -> None:
    counts = {name: outcomes.count(name) for name in ("ok", "http_4xx", "http_5xx")}
    transport = outcomes.count("timeout") + outcomes.count("connect_error")
    base = dict(ok=counts["ok"], http_4xx=counts["http_4xx"], http_5xx=counts["http_5xx"],
                transport_errors=transport)
    without = client_rates(requests=len(outcomes), **base)
    with_drops = client_rates(requests=len(outcomes) + dropped, dropped=dropped, **base)
    if without["client_success_rate"] is not None:
        assert with_drops["client_success_rate"] <= without["client_success_rate"]
        assert with_drops["client_error_rate"] >= without["client_error_rate"]
    if dropped:
        assert with_drops["client_success_rate"] < 1.0
    total = len(outcomes) + dropped
    if total:  # every request intended is a success or an error, never neither
        assert abs(with_drops["client_success_rate"] + with_drops["client_error_rate"] - 1.0) < 1e-12


def test_a_censored_percentile_is_the_drop_not_a_sent_value() -> None:
    # wrk2 saw p95 1611 ms through a 3 s stall; drops that waited 1611 ms are its evidence.
    sent = [40.0 + i * 0.1 for i in range(90)]
    ranking, censored = censored_ranking(sent, [1611.0] * 10)
    assert nearest_rank_censored(ranking, censored, 0.95) == (1611.0, True)
    assert nearest_rank_censored(ranking, censored, 0.5) == (sent[49], False)  # 50th of 100
