"""Generator-limited windows make client latency INVALID (never FAIL, never GO); dropped
requests make client latency censored (a lower bound that never PASSes)."""

from __future__ import annotations

from typing import Any

import pytest

from phase5site.runspec.models import SloSpec
from phase5site.slo import PhaseData, evaluate_phase
from phase5site.slo.evaluate import go_no_go
from phase5site.slo.generator import limited_windows
from phase5site.slo.models import CategoryVerdict

from .test_evaluate import phase, sample

T0 = 1_764_000_000.0  # 2025-11-24 16:00:00 UTC
FAST = sorted([20.0] * 950 + [100.0] * 50)
REASON = ("the load generator was delayed 612 ms at 16:40:12 UTC while slots were free "
          "(1 of 12 windows generator-limited): the machine was busy; rerun on a quieter host "
          "or with more workers")


def window(num: int, **over: Any) -> dict[str, Any]:
    row = sample(num, window_end=T0 + num * 600.0 + 12, generator_lag_p99_ms=0.4,
                 generator_lag_max_ms=1.5, generator_cpu_ratio=0.05, loop_lag_max_ms=0.8,
                 generator_limited=False, dropped=0)
    row.update(over)
    return row


def limited_phase(latencies: list[float] = FAST, **over: Any) -> PhaseData:
    rows = [window(i) for i in range(1, 13)]
    rows[3] = window(4, generator_limited=True, generator_lag_p99_ms=40.0, generator_lag_max_ms=612.0)
    rows = [{**row, **over} for row in rows]
    return phase(rows, latencies)


def test_a_generator_limited_window_makes_client_latency_invalid() -> None:
    evaluation = evaluate_phase(limited_phase(), SloSpec())
    for name in ("latency_p95", "latency_p99"):
        category = evaluation.category(name)
        server, client = category.rows
        assert (server.verdict, client.verdict, category.verdict) == ("PASS", "INVALID", "INVALID")
        assert client.invalid_reason == REASON
        assert client.pooled is not None, "the value is still shown, as evidence of the tool"
        assert category.reason == f"client: {REASON}"
    assert evaluation.decision == "INVALID"
    assert evaluation.reasons == [f"latency_p95, latency_p99: client: {REASON}"]
    assert evaluation.generator_limited_samples == [4]
    assert evaluation.category("success_rate").verdict == "PASS", "other categories judged as before"


def test_slow_client_latency_in_a_limited_phase_is_invalid_not_fail() -> None:
    slow = sorted([20.0] * 900 + [900.0] * 100)  # P95 900 ms: would break <= 150
    evaluation = evaluate_phase(limited_phase(slow), SloSpec())
    assert evaluation.category("latency_p95").verdict == "INVALID"
    assert evaluation.decision == "INVALID"


def test_a_server_failure_is_still_no_go_beside_invalid_client_latency() -> None:
    evaluation = evaluate_phase(limited_phase(server_ok=900, server_5xx=97), SloSpec())
    assert evaluation.category("latency_p95").verdict == "INVALID"
    assert evaluation.category("success_rate").verdict == "FAIL"
    assert evaluation.decision == "NO-GO"
    assert [r.split(":")[0] for r in evaluation.reasons] == ["success_rate", "error_rate"]


def test_a_server_latency_failure_is_not_hidden_by_invalid_client_latency() -> None:
    slow_buckets = [[0.05, 100], [0.1, 200], [0.25, 300], ["+Inf", 1000]]
    evaluation = evaluate_phase(limited_phase(latency_buckets=slow_buckets), SloSpec())
    category = evaluation.category("latency_p95")
    assert [row.verdict for row in category.rows] == ["FAIL", "INVALID"]
    assert category.verdict == "FAIL" and category.reason.startswith("server 250 ms breaks <= 150")
    assert evaluation.decision == "NO-GO"


def test_mandatory_na_beside_invalid_is_no_go() -> None:
    categories = [
        CategoryVerdict("latency_p95", "Latency P95", True, "INVALID", "client: busy", []),
        CategoryVerdict("memory", "Memory", True, "NA", "insufficient data (x)", []),
    ]
    assert go_no_go(categories) == ("NO-GO", ["memory: insufficient data (x)"])
    assert go_no_go(categories[:1]) == ("INVALID", ["latency_p95: client: busy"])


@pytest.mark.parametrize("limited", [None, False])
def test_rows_without_generator_health_are_judged_as_before(limited: bool | None) -> None:
    old = [sample(i) for i in range(1, 13)]  # no generator columns at all
    measured = [{**row, "generator_limited": limited, "generator_lag_p99_ms": None} for row in old]
    before, after = evaluate_phase(phase(old), SloSpec()), evaluate_phase(phase(measured), SloSpec())
    assert after == before
    assert after.decision == "GO" and after.generator_limited_samples == []


def test_limited_windows_name_the_worst_and_tolerate_missing_lag() -> None:
    rows = [window(2, generator_limited=True, generator_lag_max_ms=None),
            window(5, generator_limited=True, generator_lag_max_ms=30.0)]
    assert [w.sample_num for w in limited_windows(rows)] == [2, 5]
    evaluation = evaluate_phase(phase(rows, FAST), SloSpec())
    assert evaluation.category("latency_p99").rows[1].invalid_reason.startswith(
        "the load generator was delayed 30 ms at 16:50:12 UTC while slots were free (2 of 2 windows")
    only_unknown = evaluate_phase(phase(rows[:1], FAST), SloSpec())
    assert only_unknown.category("latency_p99").rows[1].invalid_reason.startswith(
        "the load generator fell behind its schedule in the window ending 16:20:12 UTC")


def test_a_percentile_on_a_dropped_request_is_censored_and_fails() -> None:
    sent = sorted(40.0 + i * 0.01 for i in range(760))
    rows = [window(1, client_requests=1000, client_ok=760, client_4xx=0, client_5xx=0,
                   client_transport_errors=0, dropped=240, client_p95_ms=1611.0, client_p99_ms=1611.0)]
    data = PhaseData("baseline", rows, rows, sent, client_dropped_waits_ms=[1611.0] * 240)
    evaluation = evaluate_phase(data, SloSpec())
    p95 = evaluation.category("latency_p95")
    client = p95.rows[1]
    assert (client.pooled, client.censored, client.dropped, client.verdict) == (1611.0, True, 240, "FAIL")
    assert client.worst_censored, "the window's own P95 fell on a drop too"
    assert client.interval is not None and client.interval.high is None, "no upper bound is known"
    assert p95.reason == "client >= 1611 ms (censored: 240 dropped) breaks <= 150"
    success = evaluation.category("success_rate").rows[1]
    assert success.pooled == pytest.approx(0.76)


def test_a_censored_percentile_under_the_target_still_fails() -> None:
    sent = sorted([20.0] * 900)
    data = PhaseData("baseline", [], [], sent, client_dropped_waits_ms=[5.0] * 100)  # dropped at phase end
    client = evaluate_phase(data, SloSpec()).category("latency_p95").rows[1]
    assert (client.pooled, client.censored, client.verdict) == (20.0, True, "FAIL")
    assert evaluate_phase(data, SloSpec()).category("latency_p95").reason == (
        "client >= 20 ms (censored: 100 dropped): a lower bound cannot show <= 150")


def test_drops_below_the_percentile_rank_leave_it_uncensored() -> None:
    data = PhaseData("baseline", [], [], FAST, client_dropped_waits_ms=[3000.0] * 4)
    client = evaluate_phase(data, SloSpec()).category("latency_p95").rows[1]
    assert (client.pooled, client.censored, client.dropped, client.verdict) == (100.0, False, 4, "PASS")
