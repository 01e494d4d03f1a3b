from __future__ import annotations

from typing import Any

import pytest

from phase5site.slo import PhaseData
from phase5site.slo.recommend import ceil_step, confidence_note, floor_step, recommend
from .test_evaluate import sample


def proposal(draft: Any, category: str) -> Any:
    return next(p for p in draft.proposals if p.category == category)


@pytest.mark.parametrize(
    ("value", "step", "down", "up"),
    [(0.99568, 0.001, 0.995, 0.996), (0.995, 0.001, 0.995, 0.995), (187.3, 50.0, 150.0, 200.0), (200.0, 50.0, 200.0, 200.0)],
)
def test_rounding(value: float, step: float, down: float, up: float) -> None:
    assert floor_step(value, step) == pytest.approx(down)
    assert ceil_step(value, step) == pytest.approx(up)


def test_targets_follow_the_rules() -> None:
    # 996 ok + 2 + 2 errors of 1000 (ok + 4xx + 5xx cannot exceed the requests)
    rows = [sample(i, server_ok=996, server_4xx=2, server_5xx=2, client_p95_ms=100.0 + i, rss_mb=300.0 + i)
            for i in range(1, 13)]
    rows[4]["client_p95_ms"] = 187.0
    data = PhaseData("baseline", rows, rows, sorted([20.0] * 1000))
    draft = recommend([("run-a / baseline", data)], headroom=0.2)
    success = proposal(draft, "success_rate")
    # server pooled 0.996 and client pooled 0.998: the lower (stricter to meet) one is used
    assert success.observed_pooled == pytest.approx(0.996)
    # headroom: max(half of 0.996 - 0.98, the Wilson width) = 0.008 -> 0.988
    assert success.proposed_target == pytest.approx(0.988)
    p95 = proposal(draft, "latency_p95")
    assert p95.worst_sample.value == 187.0 and p95.worst_sample.label == "run-a / baseline #5"
    assert p95.proposed_target == 250.0  # 187 * 1.2 = 224.4 -> next 50 ms
    memory = proposal(draft, "memory")
    assert memory.proposed_target == 400.0  # 312 * 1.2 = 374.4 -> next 50 MiB
    errors = proposal(draft, "error_rate")
    # server (2 + 2)/1000 = 0.004; headroom max(half of 0.01 - 0.004 = 0.003, Wilson width 0.0023)
    # -> 0.007
    assert errors.proposed_target == pytest.approx(0.007)
    assert success.n_valid_samples == 12 and success.coverage == 1.0 and success.confidence == "adequate"


def test_perfect_availability_keeps_headroom_and_an_error_budget() -> None:
    rows = [sample(i, server_ok=1000, server_4xx=0, server_5xx=0, client_ok=1000, client_4xx=0, client_5xx=0) for i in (1, 2)]
    draft = recommend([("r / p", PhaseData("p", rows, rows, [10.0]))])
    assert proposal(draft, "success_rate").proposed_target == pytest.approx(0.99)  # 1 - (1 - 0.98) / 2
    assert proposal(draft, "error_rate").proposed_target == pytest.approx(0.005)  # 0 + (0.01 - 0) / 2


def test_ratio_targets_keep_headroom_below_the_measured_value() -> None:
    # The issue: cache hit >= 89.70% against a measured 89.73% (no room for chance).
    rows = [sample(i, cache_hits_raw=8973, cache_misses_raw=1027) for i in (1, 2)]
    draft = recommend([("r / p", PhaseData("p", rows, rows, [10.0]))])
    cache = proposal(draft, "cache_hit_rate")
    assert cache.observed_pooled == pytest.approx(0.8973)
    assert cache.proposed_target == pytest.approx(0.848)  # 0.8973 - (0.8973 - 0.80) / 2 = 0.84865, floored
    assert "half the distance" in cache.rule


def test_a_wide_interval_gives_more_headroom_than_half_the_distance() -> None:
    # 19 of 20 plugin reloads: Wilson interval about [0.76, 0.99], wider than (0.95 - 0.95) / 2 = 0.
    rows = [sample(1, plugin_reload_success=19, plugin_reload_failure=1)]
    draft = recommend([("r / p", PhaseData("p", rows, rows, [10.0]))])
    reload = proposal(draft, "plugin_reload_success")
    assert reload.observed_pooled == pytest.approx(0.95)
    assert reload.proposed_target < 0.95 - 0.2


def test_an_outlier_window_is_named_with_a_robust_choice() -> None:
    # One stalled window (1021 ms) among windows of 80-91 ms: the worst sample is not the level.
    rows = [sample(i, client_p95_ms=80.0 + i) for i in range(1, 13)]
    rows[6]["client_p95_ms"] = 1021.0
    draft = recommend([("run / baseline", PhaseData("baseline", rows, rows, sorted([20.0] * 1000)))])
    p95 = proposal(draft, "latency_p95")
    assert p95.worst_sample.value == 1021.0 and p95.proposed_target == 1250.0  # 1021 x 1.2 -> 1250
    assert p95.robust_k == 2 and p95.robust_sample.label == "run / baseline #12"
    assert p95.robust_sample.value == 92.0 and p95.robust_target == 150.0  # 92 x 1.2 = 110.4 -> 150
    assert any("client worst window run / baseline #7 (1021.0 ms) is" in w and "an outlier" in w
               for w in p95.warnings), p95.warnings
    assert p95.confidence == "low"


def test_no_outlier_no_robust_choice() -> None:
    rows = [sample(i, client_p95_ms=80.0 + i) for i in range(1, 13)]
    draft = recommend([("r / p", PhaseData("p", rows, rows, sorted([20.0] * 1000)))])
    assert proposal(draft, "latency_p95").robust_sample is None
    assert not [w for w in proposal(draft, "latency_p95").warnings if "outlier" in w]


def test_few_samples_low_confidence_and_coverage() -> None:
    rows = [sample(i) for i in range(1, 6)]
    rows[0]["rss_mb"] = None
    draft = recommend([("r / p", PhaseData("p", rows, rows, [10.0]))])
    memory = proposal(draft, "memory")
    assert memory.n_valid_samples == 4 and memory.n_samples == 5
    assert memory.coverage == pytest.approx(0.8)
    assert memory.confidence == "low"
    assert "1 - q^n" in memory.confidence_note


def test_confidence_note_numbers() -> None:
    level, note = confidence_note(12)
    assert level == "adequate"
    assert "77.9%" in note  # 0.05 ** (1/12)
    assert "71.8%" in note  # 1 - 0.9 ** 12
    assert confidence_note(0)[0] == "none"


def test_multiple_runs_are_pooled() -> None:
    first = [sample(i, server_requests=100, server_ok=100, server_4xx=0, server_5xx=0) for i in (1, 2)]
    second = [sample(i, server_requests=1000, server_ok=980) for i in (1, 2)]
    draft = recommend([("a / p", PhaseData("p", first, [])), ("b / p", PhaseData("p", second, []))])
    success = proposal(draft, "success_rate")
    assert success.observed_pooled == pytest.approx((200 + 1960) / 2200)
    assert success.worst_sample.label.startswith("b / p")
    assert success.n_valid_samples == 4
    assert draft.measured_request_rate == pytest.approx(2200 / 240)


def test_nothing_measured_gives_no_target() -> None:
    rows = [sample(1, cache_hits_raw=None, cache_misses_raw=None)]
    draft = recommend([("r / p", PhaseData("p", rows, rows, [10.0]))])
    cache = proposal(draft, "cache_hit_rate")
    assert cache.proposed_target is None and cache.observed_pooled is None


def test_rounding_to_the_grid_never_crosses_the_value() -> None:
    # 950 * 0.001 == 0.9500000000000001 in floating point: a pooled 0.95 must give the
    # target 0.95 exactly, never one above the measured value (the baseline would fail it).
    for permille in range(0, 1001):
        value = permille / 1000
        assert floor_step(value, 0.001) == value, permille
        assert ceil_step(value, 0.001) == value, permille
        assert floor_step(value + 0.0004, 0.001) == value, permille


def test_pooled_value_on_the_grid_is_the_target() -> None:
    rows = [sample(i, cache_hits_raw=950, cache_misses_raw=50) for i in (1, 2)]
    draft = recommend([("r / p", PhaseData("p", rows, rows, [10.0]))])
    cache = proposal(draft, "cache_hit_rate")
    assert cache.observed_pooled == 0.95
    assert cache.proposed_target == 0.875  # 0.95 - 0.075, on the grid: not 0.8750000000000001
