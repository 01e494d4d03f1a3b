"""Enough evidence for a verdict (issue 13 item 4): a server-side PASS needs every sample
valid, or the spec's share (default 80 %) with the rest explained; a PASS whose interval
crosses the threshold is "PASS, not significant" and `slo recommend` says so."""

from __future__ import annotations

from typing import Any

import pytest

from phase5site.runspec.models import SloSpec
from phase5site.slo import PhaseData, evaluate_phase
from phase5site.slo.recommend import recommend

from .test_evaluate import sample

DOWN = "prometheus: Prometheus unreachable at http://127.0.0.1:9: ConnectError('refused')"
SERVER_COLUMNS = ("server_requests", "server_ok", "server_4xx", "server_5xx", "latency_buckets",
                  "effective_fallback_total", "rss_mb", "cache_hits_raw", "cache_misses_raw",
                  "plugin_reload_success", "plugin_reload_failure", "snapshot_create_success",
                  "snapshot_create_failure", "snapshot_restore_success", "snapshot_restore_failure")


def unreachable(num: int, *, explained: bool = True) -> dict[str, Any]:
    """A server sample taken while Prometheus was down: every server column NA."""
    row = sample(num, **dict.fromkeys(SERVER_COLUMNS))
    row["na_reasons"] = dict.fromkeys(SERVER_COLUMNS, DOWN) if explained else {}
    return row


def evaluated(server: list[dict[str, Any]], client: list[dict[str, Any]] | None = None, **slo: Any):
    client = client if client is not None else [sample(i) for i in range(1, 7)]
    data = PhaseData("baseline", server, client, sorted([20.0] * 950 + [100.0] * 50), server_source="prometheus")
    return evaluate_phase(data, SloSpec(**slo))


def test_prometheus_killed_mid_baseline_is_insufficient_data_and_no_go() -> None:
    # The run: 1 of 6 server samples valid. Before: every category PASS, GO.
    evaluation = evaluated([sample(1)] + [unreachable(i) for i in range(2, 7)])
    assert evaluation.decision == "NO-GO"
    for name in ("effective_fallback", "memory", "cache_hit_rate"):  # judged by the server only
        category = evaluation.category(name)
        assert category.verdict == "NA", name
        assert category.reason.startswith("insufficient data (server: only 1 of 6 samples valid"), category.reason
        assert DOWN in category.reason
        (row,) = category.rows
        assert row.insufficient and row.pooled is not None and (row.n_measured, row.n_expected) == (1, 6)
    success = evaluation.category("success_rate")  # the client measured every window: it still judges
    assert success.verdict == "PASS"
    assert [r.verdict for r in success.rows] == ["NA", "PASS"]


def test_five_of_six_with_the_sixth_explained_is_enough() -> None:
    evaluation = evaluated([sample(i) for i in range(1, 6)] + [unreachable(6)])
    assert evaluation.category("memory").verdict == "PASS"
    assert evaluation.category("memory").rows[0].n_measured == 5


@pytest.mark.parametrize(
    ("server", "slo", "why"),
    [
        ([sample(i) for i in range(1, 6)] + [unreachable(6, explained=False)], {}, "unexplained NA"),
        ([sample(i) for i in range(1, 6)], {}, "sample 6 has no server row at all"),
        ([sample(i) for i in range(1, 6)] + [unreachable(6)], {"min_valid_sample_share": 1.0}, "spec asks for all"),
    ],
)
def test_short_coverage_is_insufficient(server: list[dict[str, Any]], slo: dict[str, Any], why: str) -> None:
    memory = evaluated(server, **slo).category("memory")
    assert memory.verdict == "NA", why
    assert "only 5 of 6 samples valid" in (memory.reason or ""), memory.reason


def test_a_failure_on_the_valid_samples_stands() -> None:
    evaluation = evaluated([sample(1, rss_mb=900.0)] + [unreachable(i) for i in range(2, 7)])
    assert evaluation.category("memory").verdict == "FAIL"


def test_pass_whose_interval_crosses_the_threshold_is_not_significant() -> None:
    # 3 effective fallbacks in 120 requests: 2.5 %, but the exact 95 % interval reaches 7.1 %.
    rows = [sample(i, server_requests=20, server_ok=20, server_4xx=0, server_5xx=0,
                   effective_fallback_total=1 if i <= 3 else 0) for i in range(1, 7)]
    evaluation = evaluated(rows, rows)
    fallback = evaluation.category("effective_fallback")
    assert fallback.verdict == "PASS" and fallback.significant is False
    assert fallback.verdict_label == "PASS, not significant"
    assert fallback.rows[0].exact_interval.high > 0.05  # type: ignore[union-attr]
    assert evaluation.decision == "GO"  # a label, not a new verdict
    assert any(c.startswith("Effective fallback ratio: PASS, not significant: server 95% CI [")
               and "reaches past <= 5%" in c for c in evaluation.caveats), evaluation.caveats
    memory = evaluation.category("memory")
    assert memory.significant is None and memory.verdict_label == "PASS"  # no interval, nothing to say


def test_recommend_warns_about_a_pass_that_is_not_significant_and_leaves_out_short_coverage() -> None:
    rows = [sample(i, server_requests=20, server_ok=20, server_4xx=0, server_5xx=0,
                   effective_fallback_total=1 if i <= 3 else 0) for i in range(1, 7)]
    data = PhaseData("baseline", rows, rows, sorted([20.0] * 950 + [100.0] * 50), server_source="prometheus")
    short = PhaseData("extended", [sample(1)] + [unreachable(i) for i in range(2, 7)],
                      [sample(i) for i in range(1, 7)], sorted([20.0] * 100), server_source="prometheus")
    draft = recommend([("run-a / baseline", data), ("run-b / extended", short)])
    fallback = next(p for p in draft.proposals if p.category == "effective_fallback")
    assert fallback.confidence == "low"
    assert any("run-a / baseline: server PASS, not significant" in w for w in fallback.warnings), fallback.warnings
    memory = next(p for p in draft.proposals if p.category == "memory")
    assert any(w.startswith("run-b / extended: server left out: only 1 of 6 samples valid") for w in memory.warnings)
    assert memory.worst_sample is not None and memory.worst_sample.label.startswith("run-a")
