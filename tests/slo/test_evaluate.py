from __future__ import annotations

from typing import Any

import pytest

from phase5site.slo import PhaseData, evaluate_phase
from phase5site.slo.categories import CATEGORY_BY_NAME
from phase5site.slo.evaluate import combine, go_no_go, judge, ratio_row
from phase5site.slo.models import CategoryVerdict, SourceRow
from phase5site.slo.stats import quantile_rank_interval
from phase5site.runspec.models import SloSpec

HEALTHY_BUCKETS = [[0.05, 900], [0.1, 990], [0.25, 1000], ["+Inf", 1000]]


def sample(num: int, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "sample_num": num, "window_s": 60.0,
        "server_requests": 1000, "server_ok": 995, "server_4xx": 3, "server_5xx": 2,
        "latency_buckets": HEALTHY_BUCKETS, "effective_fallback_total": 10, "rss_mb": 200.0,
        "cache_hits_raw": 90, "cache_misses_raw": 10,
        "plugin_reload_success": 1, "plugin_reload_failure": 0,
        "snapshot_create_success": 1, "snapshot_create_failure": 0,
        "snapshot_restore_success": 1, "snapshot_restore_failure": 0,
        "client_requests": 1000, "client_ok": 998, "client_4xx": 1, "client_5xx": 1,
        "client_transport_errors": 0, "client_p95_ms": 60.0, "client_p99_ms": 90.0,
    }
    row.update(over)
    return row


def phase(rows: list[dict[str, Any]], latencies: list[float] | None = None, **kw: Any) -> PhaseData:
    return PhaseData("baseline", rows, rows, latencies if latencies is not None else sorted([20.0] * 950 + [100.0] * 50), **kw)


def test_healthy_phase_is_go() -> None:
    evaluation = evaluate_phase(phase([sample(i) for i in range(1, 13)]), SloSpec())
    assert evaluation.decision == "GO", evaluation.reasons
    assert {c.verdict for c in evaluation.categories} == {"PASS"}
    # 12 reloads and 24 snapshot operations, all good, cannot show >= 95 % / 99 % at 95 %
    # confidence: those two PASS are printed as not significant; nothing else is a caveat.
    assert [c.category for c in evaluation.categories if c.significant is False] == [
        "plugin_reload_success", "snapshot_success"]
    assert [caveat.split(":")[0] for caveat in evaluation.caveats] == ["Plugin reload success", "Snapshot success"]


def test_pooled_ratio_wins_over_averaged_ratios() -> None:
    rows = [
        sample(1, server_requests=100, server_ok=99),
        sample(2, server_requests=1000, server_ok=900),
    ]
    category = CATEGORY_BY_NAME["success_rate"]
    slo = SloSpec(success_rate_min=0.94)
    row = ratio_row(category, category.server, "server", rows, slo)  # type: ignore[arg-type]
    assert row.pooled == pytest.approx(999 / 1100)  # 0.9082
    assert row.sample_mean == pytest.approx((0.99 + 0.9) / 2)  # 0.945 would pass
    assert row.verdict == "FAIL"
    assert (row.good, row.total) == (999, 1100)
    assert (row.worst_sample, row.worst_value) == (2, pytest.approx(0.9))


@pytest.mark.parametrize(
    ("rows", "category", "expected_sample", "expected_value"),
    [
        ([sample(1), sample(2, server_ok=950), sample(3)], "success_rate", 2, 0.95),
        ([sample(1, rss_mb=300.0), sample(2, rss_mb=410.0), sample(3)], "memory", 2, 410.0),
        ([sample(1), sample(2), sample(3, cache_hits_raw=50, cache_misses_raw=50)], "cache_hit_rate", 3, 0.5),
        ([sample(1, effective_fallback_total=80), sample(2)], "effective_fallback", 1, 0.08),
    ],
)
def test_worst_sample(rows: list[dict[str, Any]], category: str, expected_sample: int, expected_value: float) -> None:
    evaluation = evaluate_phase(phase(rows), SloSpec())
    server = next(r for r in evaluation.category(category).rows if r.source == "server")
    assert server.worst_sample == expected_sample
    assert server.worst_value == pytest.approx(expected_value)


@pytest.mark.parametrize(
    ("missing", "mandatory", "decision"),
    [
        ({"cache_hits_raw": None, "cache_misses_raw": None}, True, "NO-GO"),
        ({"rss_mb": None}, True, "NO-GO"),
        ({"effective_fallback_total": None}, True, "NO-GO"),
        ({"plugin_reload_success": None, "plugin_reload_failure": None}, False, "GO"),
        ({"snapshot_create_success": None}, False, "GO"),
    ],
)
def test_na_mandatory_is_no_go_optional_is_neutral(missing: dict[str, Any], mandatory: bool, decision: str) -> None:
    evaluation = evaluate_phase(phase([sample(i, **missing) for i in (1, 2)]), SloSpec())
    na = [c for c in evaluation.categories if c.verdict == "NA"]
    assert len(na) == 1 and na[0].mandatory is mandatory
    assert evaluation.decision == decision
    if mandatory:
        assert "insufficient data" in evaluation.reasons[0]


def test_optional_fail_is_no_go() -> None:
    rows = [sample(1, plugin_reload_success=1, plugin_reload_failure=1)]
    evaluation = evaluate_phase(phase(rows), SloSpec())
    assert evaluation.category("plugin_reload_success").verdict == "FAIL"
    assert evaluation.decision == "NO-GO"


def test_no_server_metrics_makes_server_only_categories_na() -> None:
    client_only = [
        {k: v for k, v in sample(i).items() if k.startswith("client_") or k in ("sample_num", "window_s")}
        for i in (1, 2)
    ]
    data = PhaseData("baseline", [], client_only, sorted([20.0] * 1000), metrics_source_none=True)
    evaluation = evaluate_phase(data, SloSpec())
    for name in ("effective_fallback", "memory", "cache_hit_rate"):
        assert evaluation.category(name).verdict == "NA"
    for name in ("success_rate", "error_rate", "latency_p95", "latency_p99"):
        assert evaluation.category(name).verdict == "PASS"
    assert evaluation.decision == "NO-GO"
    assert any("insufficient data" in reason for reason in evaluation.reasons)
    assert any("no server metrics" in caveat for caveat in evaluation.caveats)


def test_latency_judged_on_both_sources() -> None:
    slow_client = sorted([20.0] * 900 + [400.0] * 100)  # client P95 = 400 ms
    evaluation = evaluate_phase(phase([sample(1), sample(2)], slow_client), SloSpec())
    p95 = evaluation.category("latency_p95")
    verdicts = {r.source: r.verdict for r in p95.rows}
    assert verdicts == {"server": "PASS", "client": "FAIL"}
    assert p95.verdict == "FAIL"
    client = next(r for r in p95.rows if r.source == "client")
    assert client.pooled == 400.0
    assert client.share_within == pytest.approx(0.9)
    low_rank, high_rank = quantile_rank_interval(1000, 0.95)
    assert low_rank is not None and low_rank > 900  # both ranks fall among the slow requests
    assert client.interval is not None
    assert (client.interval.low, client.interval.high) == (400.0, 400.0)


def test_server_latency_from_pooled_histogram_with_share_at_bucket_edge() -> None:
    evaluation = evaluate_phase(phase([sample(1), sample(2)]), SloSpec())
    p99 = next(r for r in evaluation.category("latency_p99").rows if r.source == "server")
    # pooled buckets: 1800 <= 50 ms, 1980 <= 100 ms, 2000 <= 250 ms; rank 1980 -> 100 ms
    assert p99.pooled == pytest.approx(100.0)
    assert p99.share_within == pytest.approx(1.0)  # 250 ms is a bucket edge
    p95 = next(r for r in evaluation.category("latency_p95").rows if r.source == "server")
    assert p95.share_within is None  # 150 ms is not a bucket edge
    assert p95.interval is not None and p95.interval.low == pytest.approx(50.0)


def test_memory_is_judged_on_the_mean_with_max_beside() -> None:
    rows = [sample(1, rss_mb=400.0), sample(2, rss_mb=600.0), sample(3, rss_mb=400.0)]
    memory = evaluate_phase(phase(rows), SloSpec()).category("memory")
    row = memory.rows[0]
    assert row.pooled == pytest.approx(466.6667, abs=1e-3)
    assert row.verdict == "PASS"
    assert row.breakdown["max_mb"] == 600.0


@pytest.mark.parametrize(
    "client_requests",
    [1000,  # every request intended, the 4 dropped ones included (since issue 11)
     996],  # rows written before: sent requests only, the drops beside them
)
def test_error_rate_shows_4xx_5xx_transport_and_dropped_apart(client_requests: int) -> None:
    rows = [sample(1, client_requests=client_requests, client_ok=986, client_4xx=2, client_5xx=3,
                   client_transport_errors=5, dropped=4)]
    evaluation = evaluate_phase(phase(rows), SloSpec())
    client = next(r for r in evaluation.category("error_rate").rows if r.source == "client")
    assert client.pooled == pytest.approx(14 / 1000)
    assert (client.good, client.total) == (14, 1000)
    assert client.breakdown == pytest.approx({"4xx": 0.002, "5xx": 0.003, "transport": 0.005, "dropped": 0.004})
    success = next(r for r in evaluation.category("success_rate").rows if r.source == "client")
    assert (success.good, success.total) == (986, 1000)
    errors = evaluation.category("error_rate")
    server = next(r for r in errors.rows if r.source == "server")
    assert server.breakdown == pytest.approx({"4xx": 0.003, "5xx": 0.002})


def test_counts_reconstructed_from_rate_when_not_stored() -> None:
    rows = [
        {"sample_num": 1, "window_s": 60.0, "request_rate": 10.0, "http_success_rate": 0.5},
        {"sample_num": 2, "window_s": 60.0, "request_rate": 30.0, "http_success_rate": 1.0},
    ]
    success = evaluate_phase(PhaseData("p", rows, []), SloSpec()).category("success_rate")
    server = success.rows[0]
    assert server.pooled == pytest.approx((300 + 1800) / 2400)
    assert any("reconstructed" in note for note in server.notes)


def _category(verdict: str, mandatory: bool) -> CategoryVerdict:
    return CategoryVerdict("c", "C", mandatory, verdict, "why", [])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("verdicts", "decision"),
    [
        ([("PASS", True), ("NA", False)], "GO"),
        ([("PASS", True), ("PASS", False)], "GO"),
        ([("NA", True), ("PASS", False)], "NO-GO"),
        ([("PASS", True), ("FAIL", False)], "NO-GO"),
        ([("FAIL", True)], "NO-GO"),
    ],
)
def test_go_no_go(verdicts: list[tuple[str, bool]], decision: str) -> None:
    assert go_no_go([_category(v, m) for v, m in verdicts])[0] == decision


def _row(verdict: str) -> SourceRow:
    return SourceRow("c", "server", "ratio", 0.5, ">=", None, verdict)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("verdicts", "combined"),
    [(["PASS", "FAIL"], "FAIL"), (["NA", "PASS"], "PASS"), (["NA", "NA"], "NA"), (["PASS", "PASS"], "PASS")],
)
def test_combine_sources(verdicts: list[str], combined: str) -> None:
    assert combine([_row(v) for v in verdicts]) == combined


def test_judge() -> None:
    assert judge(0.985, 0.98, ">=") == "PASS"
    assert judge(0.975, 0.98, ">=") == "FAIL"
    assert judge(None, 0.98, ">=") == "NA"
    assert judge(150.0, 150.0, "<=") == "PASS"


def test_plugin_reload_and_snapshot_durations_from_pooled_histograms() -> None:
    rows = [
        sample(1, plugin_reload_buckets=[[0.5, 1], [1.0, 2], ["+Inf", 2]]),
        sample(2, plugin_reload_buckets=[[0.5, 0], [1.0, 2], ["+Inf", 2]]),
    ]
    evaluation = evaluate_phase(phase(rows), SloSpec())
    durations = evaluation.category("plugin_reload_success").rows[0].breakdown
    # pooled: 1 of 4 <= 0.5 s, 4 <= 1 s; P95 rank 3.8 -> 0.5 + 0.5 * 2.8/3 s
    assert durations["p95_ms"] == pytest.approx((0.5 + 0.5 * 2.8 / 3) * 1000)
    assert evaluation.category("snapshot_success").rows[0].breakdown == {"p95_ms": None, "p99_ms": None}


def test_error_classes_from_ratio_columns_when_counts_were_not_stored() -> None:
    rows = [
        {"sample_num": 1, "window_s": 60.0, "request_rate": 10.0, "error_rate": 0.01,
         "error_rate_4xx": 0.01, "error_rate_5xx": 0.0},
        {"sample_num": 2, "window_s": 60.0, "request_rate": 30.0, "error_rate": 0.02,
         "error_rate_4xx": 0.0, "error_rate_5xx": 0.02},
    ]
    errors = evaluate_phase(PhaseData("p", rows, []), SloSpec()).category("error_rate")
    server = errors.rows[0]
    assert server.pooled == pytest.approx((6 + 36) / 2400)
    assert server.breakdown == pytest.approx({"4xx": 6 / 2400, "5xx": 36 / 2400})


def test_server_percentile_pools_bucket_deltas_never_averages_sample_percentiles() -> None:
    # 1000 fast requests (<= 50 ms) in sample 1, 10 slow ones (0.5-1 s) in sample 2.
    fast = [[0.05, 1000], [0.1, 1000], [0.5, 1000], [1.0, 1000], ["+Inf", 1000]]
    slow = [[0.05, 0], [0.1, 0], [0.5, 0], [1.0, 10], ["+Inf", 10]]
    rows = [sample(1, latency_buckets=fast), sample(2, latency_buckets=slow)]
    p95 = evaluate_phase(phase(rows), SloSpec()).category("latency_p95")
    server = next(r for r in p95.rows if r.source == "server")
    # pooled: 1010 observations, rank 959.5 lies in (0, 50 ms] holding 1000 -> 47.975 ms
    assert server.pooled == pytest.approx(50.0 * 959.5 / 1000)
    assert server.verdict == "PASS"
    # the per-sample P95s are 47.5 ms and 975 ms: their mean (511 ms) would FAIL
    assert server.sample_max == pytest.approx(975.0)
    assert (server.worst_sample, server.total) == (2, 1010)
