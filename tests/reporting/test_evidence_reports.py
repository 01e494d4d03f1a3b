"""'PASS, not significant' and 'insufficient data' wherever a verdict is printed: the
Markdown report, the CLI, JSON, JUnit, the site's run page and `slo recommend`
(issue 13 item 4)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from phase5site.cli import EXIT_GO, EXIT_NO_GO, cli
from phase5site.reporting import evaluate_run, evaluation_json, render_junit, render_report
from phase5site.site.charts import build_charts
from phase5site.site.page_run import render_run_page
from phase5site.site.rundata import read_run

from .runbuilder import good_sample, make_run
from .test_reports import latencies

LABEL = "PASS, not significant"


def _few_fallbacks(tmp_path: Path) -> Path:
    """3 effective fallbacks in 120 requests: 2.5 % passes <= 5 %, but the exact 95 %
    interval reaches 7.1 %. Everything else is plentiful."""
    rows = [good_sample("baseline", i, effective_fallback_total=1 if i <= 3 else 0,
                        effective_fallback_ratio=None) for i in range(1, 7)]
    for row in rows:
        row.update(server_requests=20, server_ok=20, server_4xx=0, server_5xx=0)
    return make_run(tmp_path, samples=rows, latencies_ms=latencies())


def test_not_significant_is_printed_in_report_json_junit_cli_and_site(tmp_path: Path) -> None:
    run_dir = _few_fallbacks(tmp_path)
    evaluation = evaluate_run(run_dir)
    assert evaluation.decision == "GO"
    report = render_report(evaluation)
    assert f"| Effective fallback ratio | **{LABEL}** |" in report
    assert f"**{LABEL}** | #" in report  # the row of the verdict table
    categories = json.loads(evaluation_json(evaluation))["phases"][0]["evaluation"]["categories"]
    fallback = next(c for c in categories if c["category"] == "effective_fallback")
    assert (fallback["verdict"], fallback["significant"], fallback["verdict_label"]) == ("PASS", False, LABEL)
    assert fallback["rows"][0]["verdict_label"] == LABEL
    assert f"{LABEL}: server" in render_junit(evaluation)
    result = CliRunner().invoke(cli, ["report", str(run_dir)])
    assert result.exit_code == EXIT_GO, result.output
    assert f"  note: baseline: effective_fallback: {LABEL}\n" in result.stdout
    run = read_run(run_dir, evaluate_run)
    page = render_run_page(run, build_charts(run), {})
    assert f"{LABEL}</span>" in page
    assert "the 95% confidence interval reaches past the threshold" in page


def test_slo_recommend_warns_about_it(tmp_path: Path) -> None:
    run_dir = _few_fallbacks(tmp_path)
    result = CliRunner().invoke(cli, ["slo", "recommend", str(run_dir), "--out", str(tmp_path / "draft.yaml")])
    assert result.exit_code == 0, result.output
    assert f"warning: effective_fallback: synthetic-run / baseline: server {LABEL}" in result.stderr, result.stderr
    assert "warnings:" in (tmp_path / "draft.yaml").read_text()


def test_a_server_source_lost_mid_phase_is_insufficient_data_in_the_report(tmp_path: Path) -> None:
    down = "prometheus: Prometheus unreachable at http://127.0.0.1:9: ConnectError('refused')"
    server_columns = ("server_requests", "server_ok", "server_4xx", "server_5xx", "latency_buckets", "rss_mb",
                      "effective_fallback_total", "effective_fallback_ratio", "cache_hits_raw", "cache_misses_raw",
                      "cache_hit_rate", "http_success_rate", "error_rate")
    rows = [good_sample("baseline", 1)] + [
        good_sample("baseline", i, **dict.fromkeys(server_columns), na_reasons=dict.fromkeys(server_columns, down))
        for i in range(2, 7)]
    run_dir = make_run(tmp_path, samples=rows, latencies_ms=latencies())
    result = CliRunner().invoke(cli, ["report", str(run_dir)])
    assert result.exit_code == EXIT_NO_GO, result.output
    assert "memory: insufficient data (server: only 1 of 6 samples valid" in result.stdout
    report = (run_dir / "production-report.md").read_text()
    assert "only 1 of 6 samples valid" in report and down in report
