from __future__ import annotations

import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from phase5site.slo.documents.markdown import slo_markdown
from phase5site.slo.documents.openslo import openslo_documents, validate_openslo
from phase5site.slo.documents.prometheus import WINDOWS, prometheus_rules, record_name
from phase5site.slo.draft import targets_from_draft, targets_from_release_criteria
from phase5site.errors import UsageError

SCHEMA_DIR = Path("/work/shared/schemas/openslo-v1")
PROMTOOL = Path("/usr/bin/promtool")


@pytest.fixture(scope="module")
def schemas() -> list[dict]:
    files = sorted(SCHEMA_DIR.rglob("*.json"))
    assert files, f"OpenSLO schemas missing under {SCHEMA_DIR}"
    return [json.loads(f.read_text()) for f in files]


def targets(selector: str = '{job="metasheet-api"}'):
    return targets_from_release_criteria("2.5.0", selector=selector)


def test_openslo_documents_validate(schemas: list[dict]) -> None:
    documents = openslo_documents(targets())
    assert validate_openslo(documents, schemas) == []
    kinds = [d["kind"] for d in documents]
    assert kinds[0] == "Service"
    assert kinds.count("SLO") == kinds.count("SLI") == 8  # every category but memory
    slos = {d["metadata"]["name"]: d for d in documents if d["kind"] == "SLO"}
    assert slos["metasheet-success-rate"]["spec"]["objectives"][0]["target"] == 0.98
    assert slos["metasheet-error-rate"]["spec"]["objectives"][0]["target"] == pytest.approx(0.99)
    latency = slos["metasheet-latency-p95"]["spec"]["objectives"][0]
    assert (latency["op"], latency["value"]) == ("lte", 0.15)
    sli = next(d for d in documents if d["metadata"]["name"] == "metasheet-success-rate-sli")
    assert 'job="metasheet-api"' in sli["spec"]["ratioMetric"]["good"]["metricSource"]["spec"]["query"]


def test_openslo_validation_finds_problems(schemas: list[dict]) -> None:
    documents = openslo_documents(targets())
    broken = dict(documents[2])
    broken["spec"] = {**broken["spec"], "budgetingMethod": "Sometimes"}
    broken_name = dict(documents[1], metadata={"name": "Not A Valid Name!"})
    problems = validate_openslo([broken, broken_name], schemas)
    assert len(problems) >= 2
    assert problems[0].startswith("document 1 (SLO")


def test_rules_pass_promtool(tmp_path: Path) -> None:
    assert PROMTOOL.exists(), "promtool is required: apt-get install prometheus"
    rules, _ = prometheus_rules(targets())
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    result = subprocess.run([str(PROMTOOL), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rules_cover_every_window_and_burn_rate() -> None:
    rules, _ = prometheus_rules(targets())
    records = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    for window in WINDOWS:
        assert record_name("metasheet", "success_rate", window) in records
        assert record_name("metasheet", "latency_p95", window) in records
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    page = alerts["MetasheetSuccessRateErrorBudgetBurnPage"]
    # budget 1 - 0.98 = 0.02: 14.4x -> 0.288, 6x -> 0.12 (SRE Workbook ch. 5)
    assert "ratio_rate1h > 0.288 and" in page["expr"] and "ratio_rate5m > 0.288" in page["expr"]
    assert "ratio_rate6h > 0.12 and" in page["expr"]
    ticket = alerts["MetasheetSuccessRateErrorBudgetBurnTicket"]
    assert "ratio_rate1d > 0.06" in ticket["expr"] and "ratio_rate3d > 0.02" in ticket["expr"]
    assert page["labels"]["severity"] == "page" and ticket["labels"]["severity"] == "ticket"


def test_impossible_alerts_are_omitted_with_a_warning() -> None:
    rules, warnings = prometheus_rules(targets())
    # cache hit >= 80%: budget 0.2; 14.4 x 0.2 = 2.88 and 6 x 0.2 = 1.2 can never be reached
    assert len([w for w in warnings if w.startswith("cache_hit_rate")]) == 2
    assert any("2.88 > 1" in w for w in warnings)
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert "MetasheetCacheHitRateErrorBudgetBurnPage" not in alerts
    assert "MetasheetCacheHitRateErrorBudgetBurnTicket" in alerts


def _draft(rate: float | None = 80.0) -> dict:
    categories = []
    values = {"success_rate": 0.995, "error_rate": 0.005, "latency_p95": 200.0, "latency_p99": 300.0,
              "effective_fallback": 0.02, "memory": 400.0, "cache_hit_rate": 0.9,
              "plugin_reload_success": 0.95, "snapshot_success": 0.99}
    for name, value in values.items():
        categories.append({"category": name, "proposed_target": value, "observed_pooled": value,
                           "confidence": "low", "confidence_note": "5 valid samples: the worst ..."})
    return {"kind": "phase5site/slo-draft", "service": "metasheet", "selector": "", "headroom": 0.2,
            "sources": ["run-a / baseline"], "categories": categories,
            "measurement": {"request_rate_per_s": rate, "measured_seconds": 7200.0,
                            "first_start_epoch_s": 1764000000.0, "last_end_epoch_s": 1764007200.0}}


def test_markdown_has_layout_worked_budget_and_no_placeholders() -> None:
    parsed = targets_from_draft(_draft(), "2.5.0")
    _, warnings = prometheus_rules(parsed)
    text = slo_markdown(parsed, warnings)
    for heading in ("# SLO: metasheet 2.5.0", "## Service overview", "## SLIs and SLOs", "## Rationale",
                    "## Error budget", "## Clarifications and caveats"):
        assert heading in text
    assert "**[fill in: Draft / In review / Approved]**" in text
    assert "Approvers" in text
    # 80 req/s x 2,592,000 s = 207,360,000 requests; 0.5% of them = 1,036,800
    assert "1,036,800 of 207,360,000 requests" in text
    assert "216 minutes" in text  # 0.5% of 43,200 minutes
    assert "2025-11-24 16:00:00 UTC" in text  # to the second: a demo's evidence spans under a minute
    assert re.search(r"\bTODO\b|\bTBD\b", text) is None
    assert "low confidence" in text


def test_markdown_without_measured_rate_says_na() -> None:
    text = slo_markdown(targets_from_draft(_draft(rate=None), "2.5.0"), [])
    assert "NA (no measured rate of these events)" in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "other"}, "not a phase5site SLO draft"),
        ({"categories": []}, "is missing"),
    ],
)
def test_bad_drafts_are_usage_errors(change: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        targets_from_draft({**_draft(), **change}, "2.5.0")


def test_null_target_is_a_usage_error() -> None:
    draft = _draft()
    draft["categories"][6]["proposed_target"] = None
    with pytest.raises(UsageError, match="cache_hit_rate.proposed_target is null"):
        targets_from_draft(draft, "2.5.0")


def test_an_optional_category_never_measured_keeps_its_release_criterion() -> None:
    # MetaSheet exports no plugin reload sample at all: the draft has nothing to propose.
    draft = _draft()
    entry = next(e for e in draft["categories"] if e["category"] == "plugin_reload_success")
    entry["proposed_target"] = None
    objective = next(o for o in targets_from_draft(draft, "2.5.0").objectives
                     if o.category == "plugin_reload_success")
    assert objective.target == 0.95 and objective.confidence == "none"
    assert "not measured" in objective.confidence_note


def test_memory_alert_and_selector() -> None:
    parsed = replace(targets_from_draft(_draft(), "2.5.0"), selector='{job="x"}')
    rules, _ = prometheus_rules(parsed)
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert alerts["MetasheetMemoryRssHigh"]["expr"].endswith("> 400")
    assert 'process_resident_memory_bytes{job="x"}' in alerts["MetasheetMemoryRssHigh"]["expr"]


def _promtool_test(tmp_path: Path, rules: dict, tests: list[dict]) -> subprocess.CompletedProcess:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    (tmp_path / "test.yml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}, sort_keys=False))
    return subprocess.run([str(PROMTOOL), "test", "rules", "test.yml"], capture_output=True, text=True, cwd=tmp_path)


def test_snapshot_error_ratio_with_only_create_series(tmp_path: Path) -> None:
    # prom-client exports a labelled counter only after its first increment: a service whose
    # snapshot creates fail but that never restored anything has no restore series at all.
    # The error ratio (and so the burn-rate alert) must still be computed: 1 failure per
    # minute of 4 creates -> 0.25, which breaks the 14.4 x 1% page threshold.
    assert PROMTOOL.exists(), "promtool is required: apt-get install prometheus"
    rules, _ = prometheus_rules(targets(selector=""))
    record = record_name("metasheet", "snapshot_success", "5m")
    result = _promtool_test(tmp_path, rules, [{
        "interval": "1m",
        "input_series": [
            {"series": 'metasheet_snapshot_create_total{result="failure"}', "values": "0+1x90"},
            {"series": 'metasheet_snapshot_create_total{result="success"}', "values": "0+3x90"},
        ],
        "promql_expr_test": [
            {"expr": record, "eval_time": "30m", "exp_samples": [{"labels": record, "value": 0.25}]},
            {"expr": 'ALERTS{alertname="MetasheetSnapshotSuccessErrorBudgetBurnPage"}', "eval_time": "30m",
             "exp_samples": [{"labels": 'ALERTS{alertname="MetasheetSnapshotSuccessErrorBudgetBurnPage",'
                                        'alertstate="firing",service="metasheet",severity="page",'
                                        'slo="snapshot_success"}', "value": 1}]},
        ],
    }])
    assert result.returncode == 0, result.stdout + result.stderr


def test_openslo_snapshot_queries_with_only_create_series(tmp_path: Path) -> None:
    # Evaluated by Prometheus' own engine (promtool): no restore has ever happened, so no
    # restore series exists; good and total must still be the create counts.
    assert PROMTOOL.exists(), "promtool is required: apt-get install prometheus"
    sli = next(d for d in openslo_documents(targets(selector=""))
               if d["metadata"]["name"] == "metasheet-snapshot-success-sli")
    good = sli["spec"]["ratioMetric"]["good"]["metricSource"]["spec"]["query"]
    total = sli["spec"]["ratioMetric"]["total"]["metricSource"]["spec"]["query"]
    result = _promtool_test(tmp_path, {"groups": []}, [{
        "interval": "1m",
        "input_series": [
            {"series": 'metasheet_snapshot_create_total{result="failure"}', "values": "0+1x10"},
            {"series": 'metasheet_snapshot_create_total{result="success"}', "values": "0+3x10"},
        ],
        "promql_expr_test": [
            {"expr": good, "eval_time": "10m", "exp_samples": [{"labels": "{}", "value": 30}]},
            {"expr": total, "eval_time": "10m", "exp_samples": [{"labels": "{}", "value": 40}]},
        ],
    }])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(measurement="oops"), "measurement must be a mapping"),
        (lambda d: d["categories"][2].update(proposed_target=-5), "latency_p95.proposed_target must be > 0 ms"),
        (lambda d: d["categories"][5].update(proposed_target=0), "memory.proposed_target must be > 0 MiB"),
    ],
)
def test_hand_edited_draft_mistakes_are_usage_errors(edit, message: str) -> None:
    # the draft is meant to be edited by hand: a slip must be a clear error, not a traceback
    # and never a latency SLO of -5 ms
    draft = _draft()
    edit(draft)
    with pytest.raises(UsageError, match=message):
        targets_from_draft(draft, "2.5.0")
