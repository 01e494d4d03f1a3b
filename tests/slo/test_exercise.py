"""NOT-EXERCISED and required: false (issue 12): counters that never moved are no evidence,
and only a category the spec does not require, with a justification, may stay unjudged."""

from __future__ import annotations

from typing import Any

import pytest

from phase5site.runspec.models import SLO_CATEGORY_NAMES, CategoryPolicySpec, SloSpec
from phase5site.slo import PhaseData, evaluate_phase
from phase5site.slo.categories import CATEGORIES
from phase5site.slo.reconcile import WindowCounts, beyond_noise, reconcile

from .test_evaluate import sample

CACHE_HINT = "POST /api/cache-test/warm?count=N"
WHY = "no production request path touches the cache (fixture README): only dev routes move it"


def _phase(rows: list[dict[str, Any]]) -> PhaseData:
    return PhaseData("baseline", rows, rows, sorted([20.0] * 950 + [100.0] * 50),
                     moved_by={"cache_hit_rate": CACHE_HINT + " (development only)"})


def _idle_cache(num: int, **over: Any) -> dict[str, Any]:
    return sample(num, cache_hits_raw=0, cache_misses_raw=0, **over)


def test_category_lists_agree() -> None:
    assert SLO_CATEGORY_NAMES == tuple(category.name for category in CATEGORIES)


def test_cache_counters_that_never_moved_are_not_exercised_and_no_go() -> None:
    evaluation = evaluate_phase(_phase([_idle_cache(i) for i in range(1, 7)]), SloSpec())
    cache = evaluation.category("cache_hit_rate")
    assert cache.verdict == "NOT-EXERCISED" and cache.verdict_label == "NOT-EXERCISED"
    assert cache.required is True and cache.justification is None
    assert cache.rows[0].na_reason == (
        "not exercised by this load: cache_hits_raw, cache_misses_raw did not move over the 6 samples that measured them")
    assert evaluation.decision == "NO-GO"
    (reason,) = evaluation.reasons
    assert reason.startswith("cache_hit_rate: not exercised by this load (server: cache_hits_raw")
    assert reason.endswith(f"what would exercise it: {CACHE_HINT} (development only)")


def test_not_required_with_justification_does_not_block_go_and_is_printed() -> None:
    slo = SloSpec(categories={"cache_hit_rate": CategoryPolicySpec(required=False, justification=WHY)})
    evaluation = evaluate_phase(_phase([_idle_cache(i) for i in range(1, 13)]), slo)
    cache = evaluation.category("cache_hit_rate")
    assert (cache.verdict, cache.required, cache.justification) == ("NOT-EXERCISED", False, WHY)
    assert evaluation.decision == "GO", evaluation.reasons
    assert f"Cache hit rate: NOT-EXERCISED, not required by the spec: {WHY}" in evaluation.caveats


def test_not_required_still_fails_on_evidence() -> None:
    slo = SloSpec(categories={"cache_hit_rate": CategoryPolicySpec(required=False, justification=WHY)})
    rows = [sample(i, cache_hits_raw=10, cache_misses_raw=90) for i in range(1, 4)]
    evaluation = evaluate_phase(_phase(rows), slo)
    assert evaluation.category("cache_hit_rate").verdict == "FAIL"
    assert evaluation.decision == "NO-GO"


def test_zero_fallback_where_nothing_could_fall_back_proves_nothing() -> None:
    idle = dict(raw_fallback_total=0, effective_fallback_total=0, http_adapter_ops=0,
                message_bus_rpc_attempts=None, cache_get_attempts=None)
    evaluation = evaluate_phase(_phase([sample(i, **idle) for i in range(1, 4)]), SloSpec())
    fallback = evaluation.category("effective_fallback")
    assert fallback.verdict == "NOT-EXERCISED"
    assert fallback.rows[0].pooled == 0.0, "the 0 % stays visible beside the verdict"
    assert "nothing that could move it ran" in fallback.rows[0].notes[-1]
    # One adapter call is enough: the fallback path ran, 0 % is evidence.
    moved = [sample(i, **{**idle, "http_adapter_ops": 1}) for i in range(1, 4)]
    assert evaluate_phase(_phase(moved), SloSpec()).category("effective_fallback").verdict == "PASS"


def test_counters_never_measured_stay_na_not_not_exercised() -> None:
    rows = [sample(i, cache_hits_raw=None, cache_misses_raw=None) for i in range(1, 4)]
    cache = evaluate_phase(_phase(rows), SloSpec()).category("cache_hit_rate")
    assert cache.verdict == "NA" and cache.reason.startswith("insufficient data")  # type: ignore[union-attr]


def test_optional_category_made_required_blocks_go() -> None:
    rows = [sample(i, snapshot_create_success=0, snapshot_restore_success=0) for i in range(1, 4)]
    assert evaluate_phase(_phase(rows), SloSpec()).category("snapshot_success").verdict == "NOT-EXERCISED"
    assert evaluate_phase(_phase(rows), SloSpec()).decision == "GO", "optional: neutral"
    required = SloSpec(categories={"snapshot_success": CategoryPolicySpec(required=True)})
    evaluation = evaluate_phase(_phase(rows), required)
    assert evaluation.decision == "NO-GO"
    assert evaluation.reasons[0].startswith("snapshot_success: not exercised by this load")


def test_server_histogram_without_counts_is_not_exercised_client_still_judges() -> None:
    rows = [sample(i, server_requests=0, server_ok=0, server_4xx=0, server_5xx=0,
                   latency_buckets=[[0.05, 0], ["+Inf", 0]]) for i in range(1, 4)]
    evaluation = evaluate_phase(_phase(rows), SloSpec())
    p95 = evaluation.category("latency_p95")
    assert [row.verdict for row in p95.rows] == ["NOT-EXERCISED", "PASS"]
    assert p95.verdict == "PASS", "the client measured it"
    assert "the latency histogram's count did not move" in (p95.rows[0].na_reason or "")


@pytest.mark.parametrize("justification", [None, "", "   "])
def test_required_false_needs_a_justification(justification: str | None) -> None:
    with pytest.raises(ValueError, match="required: false needs a justification"):
        CategoryPolicySpec(required=False, justification=justification)


def test_unknown_category_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown category 'cache_rate'"):
        SloSpec.model_validate({"categories": {"cache_rate": {"required": False, "justification": "x"}}})


def test_reconciliation_of_the_issue_run() -> None:
    """167 of 300 counted, 0.000 % server errors, 44.3 % client errors: a warning, and the
    caveat beside the server's rates."""
    windows = [WindowCounts(1, 150, 150, 84, 66, 0, 84.0, 0.0), WindowCounts(2, 150, 150, 83, 67, 0, 83.0, 0.0)]
    result = reconcile(windows, ["no_token", "unknown_page"])
    total = result.phase
    assert total is not None
    assert (total.client_answered, total.client_timed, total.server_requests, total.count_gap) == (300, 167, 167.0, 0.0)
    assert not total.count_warning and total.error_warning
    assert result.warnings[0] == (
        "client-seen error rate 44.333 % vs server-seen 0.000 %: the service counted 167 of 300 requests and "
        "0 errors, the client saw 133 errors; 401s from its auth gate, unmatched 404s and untimed routers are "
        "not in its metrics")
    assert result.warnings[1] == "windows with a gap beyond counting noise: #1, #2"
    assert result.caveat == ("the service counted 167 of 300 requests (not timed: no_token, unknown_page): its "
                             "success and error rates describe only the requests it counts (timed routes)")


def test_declared_untimed_requests_with_expected_answers_are_a_caveat_not_a_warning() -> None:
    # day1's gate 401s and unknown 404s, declared untimed and expected (outcome ok)
    result = reconcile([WindowCounts(1, 100, 100, 92, 0, 0, 92.0, 0.0)], ["no_token", "unknown"])
    assert result.warnings == []
    assert result.caveat is not None and result.caveat.startswith("the service counted 92 of 100 requests")


def test_timed_requests_the_service_did_not_count_are_a_warning() -> None:
    result = reconcile([WindowCounts(1, 100, 100, 100, 0, 0, 60.0, 0.0)])
    assert result.warnings[0].startswith("the service counted 60 of the 100 requests the client got an answer to")


def test_reconciliation_within_counting_noise_is_quiet() -> None:
    # a request or two shift between windows at their edges: not a warning
    windows = [WindowCounts(1, 600, 600, 600, 3, 3, 598.0, 3.0), WindowCounts(2, 600, 600, 600, 0, 0, 602.0, 0.0)]
    result = reconcile(windows)
    assert result.warnings == [] and result.caveat is None
    assert not beyond_noise(5, 10_000) and beyond_noise(101, 10_000)


def test_server_counting_more_than_the_timed_requests_is_a_warning() -> None:
    result = reconcile([WindowCounts(1, 100, 100, 50, 0, 0, 100.0, 0.0)], ["sheets"])
    assert any("50 more requests than the client sent to routes declared timed" in w for w in result.warnings)


def test_slo_document_prints_the_justification_and_keeps_the_release_criterion() -> None:
    from phase5site.slo.documents.markdown import slo_markdown
    from phase5site.slo.draft import draft_document, targets_from_draft
    from phase5site.slo.recommend import recommend

    slo = SloSpec(categories={"cache_hit_rate": CategoryPolicySpec(required=False, justification=WHY)})
    idle = dict(raw_fallback_total=0, effective_fallback_total=0, http_adapter_ops=0)
    draft = recommend([("run / baseline", _phase([_idle_cache(i, **idle) for i in range(1, 13)]))], slo=slo)
    proposals = {p.category: p for p in draft.proposals}
    assert (proposals["cache_hit_rate"].required, proposals["cache_hit_rate"].justification) == (False, WHY)
    assert proposals["cache_hit_rate"].proposed_target is None
    assert proposals["effective_fallback"].observed_pooled is None, "a 0 % nobody exercised is no basis"
    document = draft_document(draft, service="metasheet", selector="", first_start=None, last_end=None)
    document["categories"] = [{**c, "proposed_target": c["proposed_target"] or c["current_threshold"]}
                              if c["category"] == "effective_fallback" else c for c in document["categories"]]
    targets = targets_from_draft(document, "v1")
    cache = targets.objective("cache_hit_rate")
    assert (cache.target, cache.required) == (0.8, False)
    text = slo_markdown(targets, [])
    assert f"| no: {WHY} |" in text
    assert f"- Cache hit rate: not required for a release: {WHY}" in text


# --- NOT-EXERCISED is a verdict on the phase: it needs the coverage a PASS needs ----------

COVERAGE = "only 1 of 6 samples valid (a server verdict needs all of them, or 80% with every other sample's NA explained)"


def _cache_gap(num: int, reason: str | None) -> dict[str, Any]:
    row = sample(num, cache_hits_raw=None, cache_misses_raw=None)
    row["na_reasons"] = {"cache_hits_raw": reason, "cache_misses_raw": reason} if reason else {}
    return row


@pytest.mark.parametrize("reason", [None, "scrape: cache_hits_total absent from the page"])
def test_counters_that_did_not_move_in_one_of_six_samples_are_insufficient_not_unexercised(reason: str | None) -> None:
    rows = [_idle_cache(1)] + [_cache_gap(i, reason) for i in range(2, 7)]
    evaluation = evaluate_phase(_phase(rows), SloSpec())
    cache = evaluation.category("cache_hit_rate")
    assert cache.verdict == "NA"
    (row,) = cache.rows
    assert row.insufficient is True
    assert (row.na_reason or "").startswith(
        f"{COVERAGE}; cache_hits_raw, cache_misses_raw did not move over the 1 sample that measured them, "
        "too few to call the category not exercised")
    if reason:
        assert (row.na_reason or "").endswith(f"cache_hits_raw: {reason}")
    assert evaluation.decision == "NO-GO"
    assert any(r.startswith(f"cache_hit_rate: insufficient data (server: {COVERAGE}") for r in evaluation.reasons)


def test_five_idle_samples_and_one_explained_gap_are_not_exercised() -> None:
    rows = [_idle_cache(i) for i in range(1, 6)] + [_cache_gap(6, "prometheus: unreachable")]
    cache = evaluate_phase(_phase(rows), SloSpec()).category("cache_hit_rate")
    assert cache.verdict == "NOT-EXERCISED"
    assert cache.rows[0].na_reason == (
        "not exercised by this load: cache_hits_raw, cache_misses_raw did not move over the 5 samples that measured them")
    # the sixth gap unexplained: 5 of 6 is not all of them, and the rest is not explained
    unexplained = evaluate_phase(_phase(rows[:5] + [_cache_gap(6, None)]), SloSpec()).category("cache_hit_rate")
    assert unexplained.verdict == "NA" and unexplained.rows[0].insufficient


def test_the_spec_share_decides_as_for_a_pass() -> None:
    rows = [_idle_cache(i) for i in range(1, 4)] + [_cache_gap(i, "prometheus: unreachable") for i in range(4, 7)]
    assert evaluate_phase(_phase(rows), SloSpec()).category("cache_hit_rate").verdict == "NA"
    lenient = SloSpec(min_valid_sample_share=0.5)
    assert evaluate_phase(_phase(rows), lenient).category("cache_hit_rate").verdict == "NOT-EXERCISED"


def _not_exported_reasons() -> dict[str, str]:
    """The NA reasons a metasheet sample stores for the columns of families the service does
    not export, as the metrics profile words them."""
    from phase5site.metrics.profile import get_profile

    return {name: measured.reason or "" for name, measured in get_profile("metasheet").not_exported().items()}


def test_not_exported_counters_are_not_named_among_those_that_did_not_move() -> None:
    gone = _not_exported_reasons()
    assert {"http_adapter_ops", "message_bus_rpc_attempts", "cache_get_attempts"} <= set(gone)
    idle = dict(raw_fallback_total=0, effective_fallback_total=0, **dict.fromkeys(gone))
    rows = [{**sample(i, **idle), "na_reasons": dict(gone)} for i in range(1, 7)]
    fallback = evaluate_phase(_phase(rows), SloSpec()).category("effective_fallback")
    assert fallback.verdict == "NOT-EXERCISED"
    assert fallback.rows[0].na_reason == (
        "not exercised by this load: raw_fallback_total did not move over the 6 samples that measured them")


def test_a_not_exported_reason_does_not_explain_a_gap() -> None:
    """Samples lacking raw_fallback_total whose only stored reasons say "not exported" have an
    unexplained gap: the service's families say nothing about why this window is missing."""
    gone = _not_exported_reasons()
    idle = dict(raw_fallback_total=0, effective_fallback_total=0, **dict.fromkeys(gone))
    rows = [{**sample(i, **idle), "na_reasons": dict(gone)} for i in range(1, 6)]
    rows.append({**sample(6, **{**idle, "raw_fallback_total": None, "effective_fallback_total": None}),
                 "na_reasons": dict(gone)})
    fallback = evaluate_phase(_phase(rows), SloSpec()).category("effective_fallback")
    assert fallback.verdict == "NA"
    assert "only 5 of 6 samples valid" in (fallback.reason or "")
    assert "not exported" not in (fallback.rows[0].na_reason or "")
