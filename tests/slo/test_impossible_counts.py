"""A sample whose counts are impossible is no evidence (review item: possible false PASS).

A negative increase, or outcomes that add up to more than the requests, beside a ratio
column that looks valid: the sample gate (``columns.gate_row``) makes the counts NA, and with
them every ratio column made of them, so the category's reader (``slo.categories``) finds
nothing to read, and the sample can neither PASS a category nor move its pooled value.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from phase5site.columns import gate_sample
from phase5site.runspec.models import SloSpec
from phase5site.slo import PhaseData, evaluate_phase
from phase5site.slo.categories import CATEGORY_BY_NAME, number
from phase5site.slo.evidence import measured_in

from .test_evaluate import sample

# Ratio columns that would pass every release criterion: what a false PASS would read.
PASSING_RATIOS = {
    "http_success_rate": 0.999, "error_rate": 0.001, "error_rate_4xx": 0.0005, "error_rate_5xx": 0.0005,
    "effective_fallback_ratio": 0.01, "cache_hit_rate": 0.95, "plugin_reload_success_rate": 1.0,
    "snapshot_success_rate": 1.0, "client_success_rate": 0.999, "client_error_rate": 0.001,
}

# The count that is made impossible -> the (category, source) rows that read it. Written out
# here, not derived from the code under test.
SERVER_HTTP = [("success_rate", "server"), ("error_rate", "server")]
CLIENT_HTTP = [("success_rate", "client"), ("error_rate", "client")]
READERS: dict[str, list[tuple[str, str]]] = {
    "server_requests": [*SERVER_HTTP, ("effective_fallback", "server")],
    "server_ok": [("success_rate", "server")],
    "server_4xx": [("error_rate", "server")],
    "server_5xx": [("error_rate", "server")],
    "effective_fallback_total": [("effective_fallback", "server")],
    "cache_hits_raw": [("cache_hit_rate", "server")],
    "cache_misses_raw": [("cache_hit_rate", "server")],
    "plugin_reload_success": [("plugin_reload_success", "server")],
    "plugin_reload_failure": [("plugin_reload_success", "server")],
    "snapshot_create_success": [("snapshot_success", "server")],
    "snapshot_create_failure": [("snapshot_success", "server")],
    "snapshot_restore_success": [("snapshot_success", "server")],
    "snapshot_restore_failure": [("snapshot_success", "server")],
    "client_requests": CLIENT_HTTP,
    "client_ok": [("success_rate", "client")],
    "client_4xx": [("error_rate", "client")],
    "client_5xx": [("error_rate", "client")],
    "client_transport_errors": [("error_rate", "client")],
    "dropped": CLIENT_HTTP,  # client_requests counts the drops: both denominators are unknown
}


def healthy(num: int, requests: int = 1000, **over: Any) -> dict[str, Any]:
    """A possible sample with passing counts and passing ratio columns."""
    row = sample(num, server_requests=requests, server_ok=requests - 5, client_requests=requests,
                 client_ok=requests - 2, dropped=0, request_rate=requests / 60.0, **PASSING_RATIOS)
    row.update(over)
    return row


# An impossibility: (columns to overwrite, the count whose name the reason must carry, rows hit).
Impossible = tuple[dict[str, Any], str, list[tuple[str, str]]]


def _negative() -> st.SearchStrategy[Impossible]:
    value = st.one_of(st.integers(-(2**40), -1), st.floats(-1e12, -1e-6))
    return st.builds(lambda column, v: ({column: v}, column, READERS[column]), st.sampled_from(sorted(READERS)), value)


def _outcomes_above(prefix: str, outcomes: tuple[str, ...], hit: list[tuple[str, str]]) -> st.SearchStrategy[Impossible]:
    """Outcomes each within the requests, summing above them (1000 requests)."""
    def build(parts: list[int]) -> Impossible:
        return dict(zip(outcomes, parts)), f"exceeds {prefix}_requests", hit
    parts = st.lists(st.integers(0, 1000), min_size=len(outcomes), max_size=len(outcomes))
    return parts.filter(lambda p: sum(p) > 1000).map(build)


IMPOSSIBLE = st.one_of(
    _negative(),
    _outcomes_above("server", ("server_ok", "server_4xx", "server_5xx"), SERVER_HTTP),
    _outcomes_above("client", ("client_ok", "client_4xx", "client_5xx", "client_transport_errors"), CLIENT_HTTP),
)


def _row(evaluation: Any, category: str, source: str) -> Any:
    return next(r for r in evaluation.category(category).rows if r.source == source)


def _phase(rows: list[dict[str, Any]]) -> PhaseData:
    return PhaseData("baseline", rows, rows, sorted([20.0] * 950 + [100.0] * 50))


@settings(deadline=None, max_examples=200)
@given(impossible=IMPOSSIBLE, n_samples=st.integers(1, 8))
def test_an_impossible_count_is_na_with_its_ratio_and_never_passes(impossible: Impossible, n_samples: int) -> None:
    columns, named, hit = impossible
    rows = [healthy(i, **columns) for i in range(1, n_samples + 1)]
    for category, source in hit:
        reader = getattr(CATEGORY_BY_NAME[category], source)
        gated = gate_sample(rows[0])
        assert reader.counts(gated) is None, (category, source, columns)
        assert number(gated, reader.ratio_column) is None, (category, source, columns)
        if source == "server":
            assert not measured_in(CATEGORY_BY_NAME[category], gated)
    evaluation = evaluate_phase(_phase(rows), SloSpec())
    for category, source in hit:
        row = _row(evaluation, category, source)
        assert row.verdict == "NA" and row.pooled is None, (category, source, columns, row)
        assert named in (row.na_reason or ""), (category, source, row.na_reason)


@settings(deadline=None, max_examples=100)
@given(impossible=IMPOSSIBLE, requests=st.lists(st.integers(10, 5000), min_size=1, max_size=6),
       n_impossible=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_an_impossible_sample_does_not_move_the_pooled_counts(
    impossible: Impossible, requests: list[int], n_impossible: int, seed: int,
) -> None:
    columns, _, hit = impossible
    valid = [healthy(i, count) for i, count in enumerate(requests, start=1)]
    mixed = valid + [healthy(len(valid) + i, **columns) for i in range(1, n_impossible + 1)]
    random.Random(seed).shuffle(mixed)
    alone, together = evaluate_phase(_phase(valid), SloSpec()), evaluate_phase(_phase(mixed), SloSpec())
    for category, source in hit:
        expected, got = _row(alone, category, source), _row(together, category, source)
        assert (got.good, got.total) == (expected.good, expected.total), (category, source, columns)
        assert got.pooled == expected.pooled


def test_the_issue_sample_passed_on_its_ratio_column() -> None:
    """995 ok + 30 + 2 errors of 1000 requests with http_success_rate 0.995 stored: the counts
    cannot be, so neither can the ratio; and -1000 requests with a request rate beside them
    rebuilt a request count from the rate and passed."""
    evaluation = evaluate_phase(_phase([healthy(i, server_4xx=30, server_5xx=2) for i in range(1, 4)]), SloSpec())
    success = _row(evaluation, "success_rate", "server")
    assert success.verdict == "NA"
    assert success.na_reason == (
        "http_success_rate: made of server_ok, which is impossible in this sample (raw server_ok + server_4xx + "
        "server_5xx = 1027 exceeds server_requests = 1000: a part cannot be larger than its whole)")
    rebuilt = evaluate_phase(_phase([healthy(i, server_requests=-1000) for i in range(1, 4)]), SloSpec())
    fallback = _row(rebuilt, "effective_fallback", "server")
    assert fallback.verdict == "NA" and "made of server_requests" in (fallback.na_reason or "")
    assert not any("reconstructed" in note for note in fallback.notes)
