"""The release decision the site shows: which runs count, how they combine, 'not evaluated'
for placeholder-only imports (a real legacy file through the real importer and evaluator),
grouped caveats, the one-file report from the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from phase5site.site.charts import chart_table
from phase5site.site.decision import (
    NOT_EVALUATED,
    SiteOptions,
    release_decision,
    row_class,
    run_tags,
    shown_decision,
)
from phase5site.site.fmt import table
from phase5site.site.pages import caveat_kind, run_caveats
from phase5site.site.rundata import RunData, read_run
from phase5site.site.verdicts import RunVerdicts, VerdictRow, default_evaluator

LEGACY = Path("/work/shared/fixtures/metasheet2")


def _row(verdict: str) -> VerdictRow:
    return VerdictRow(phase="baseline", category="Latency P95 (server)", pooled="NA", worst_sample="NA",
                      target="<= 150 ms", verdict=verdict)


def _run(name: str, started: float, decision: str | None, *, source: str = "run", tags: list[str] | None = None,
         rows: list[VerdictRow] | None = None, caveats: list[str] | None = None) -> RunData:
    spec: dict[str, Any] = {"name": name, **({"tags": tags} if tags is not None else {})}
    verdicts = RunVerdicts(decision, reasons=[f"{name} reason"] if decision not in (None, "GO") else [],
                           rows=rows if rows is not None else [_row("PASS")], caveats=caveats or [],
                           unavailable=None if decision else "the SLO evaluation failed: boom")
    return RunData(run_dir=Path(f"results/{name}-{int(started)}"), slug=f"{name}-{int(started)}",
                   run={"name": name, "started_at": started, "source": source, "status": "completed",
                        "spec_redacted": spec, "environment": {}},
                   phases=[], samples=[], events=[], per_second={}, request_count=0, outcome_counts={},
                   primary_source=None, verdicts=verdicts)


def test_tagged_and_imported_runs_are_listed_apart_and_the_latest_run_per_spec_stands() -> None:
    runs = [_run("day1", 100, "NO-GO"), _run("day1", 200, "GO"), _run("day2", 300, "GO"),
            _run("drill", 400, "NO-GO", tags=["test"]), _run("old", 50, "NO-GO", source="import")]
    release = release_decision(runs, SiteOptions())
    assert release.decision == "GO"
    assert [(r.name, r.started_at) for r in release.standing] == [("day1", 200), ("day2", 300)]
    assert [(r.name, r.started_at) for r in release.superseded] == [("day1", 100)]
    assert [(r.name, why) for r, why in release.left_out] == [("drill", "tagged test"), ("old", "tagged import")]


@pytest.mark.parametrize(("decisions", "expected"), [
    (["GO", "GO"], "GO"),
    (["GO", "INVALID"], "INVALID"),
    (["INVALID", "NO-GO"], "NO-GO"),
    (["GO", None], "NO-GO"),  # a run that could not be evaluated is missing evidence, not a pass
    (["GO", "NOT-EXERCISED"], "NO-GO"),  # a state this site does not know never passes
])
def test_standing_runs_combine_no_go_first_then_invalid(decisions: list[str | None], expected: str) -> None:
    runs = [_run(f"spec{i}", 100 + i, decision) for i, decision in enumerate(decisions)]
    release = release_decision(runs, SiteOptions())
    assert release.decision == expected
    if expected != "GO":
        assert any(f"spec{i}" in reason for reason in release.reasons for i in range(len(decisions)))


def test_named_runs_replace_the_tag_rule() -> None:
    runs = [_run("day1-baseline", 100, "GO"), _run("drill", 200, "NO-GO", tags=["test"]),
            _run("demo", 300, "NO-GO")]
    release = release_decision(runs, SiteOptions(("day1-*", "drill")))
    assert release.named and release.decision == "NO-GO"  # the drill was named: it counts
    assert [r.name for r in release.standing] == ["day1-baseline", "drill"]
    assert [(r.name, why) for r, why in release.left_out] == [("demo", "not named by --release-run (day1-*, drill)")]
    assert release_decision([], SiteOptions()).decision is None


def test_the_evaluators_not_evaluated_is_shown_as_such_and_the_site_judges_nothing_itself() -> None:
    unjudged = _run("legacy", 100, "NOT-EVALUATED", source="import", rows=[_row("NA"), _row("NA")])
    assert shown_decision(unjudged).state == NOT_EVALUATED
    assert shown_decision(unjudged).reason == "legacy reason"  # the evaluator's words
    assert run_tags(unjudged) == ["import"]
    # the site does not second-guess a NO-GO, even of an import with NA rows only
    no_go = _run("legacy", 100, "NO-GO", source="import", rows=[_row("NA"), _row("NA")])
    assert shown_decision(no_go).state == "NO-GO"
    assert release_decision([_run("day1", 100, "GO"), _run("day2", 200, "NOT-EVALUATED")],
                            SiteOptions()).decision == "NO-GO"  # missing evidence is not a pass


def test_a_real_placeholder_only_legacy_file_is_not_evaluated(tmp_path: Path) -> None:
    """phase5-20251122-150047 (11 columns): success 0.99 and p99 0.5 s in every row."""
    from phase5site.store import import_legacy_run

    folder = LEGACY / "phase5-20251122-150047"
    imported = import_legacy_run(folder / "metrics.csv", folder / "metadata.json", tmp_path)
    run = read_run(imported.run_dir, default_evaluator())
    assert run.verdicts.decision == "NOT-EVALUATED"  # the evaluator's rule: nothing to judge
    assert run.verdicts.rows and all(row.verdict == "NA" for row in run.verdicts.rows)
    assert shown_decision(run).state == NOT_EVALUATED
    assert "no category has a value to judge" in shown_decision(run).reason
    assert "placeholder of the old observer" in shown_decision(run).reason
    release = release_decision([run], SiteOptions())
    assert release.decision is None and release.left_out[0][1] == "tagged import"
    groups = run_caveats(run)
    assert groups["not evaluated"] and "warning" in groups  # the importer's findings, grouped


def test_caveats_are_grouped_by_kind_and_repeats_counted() -> None:
    run = _run("day1", 100, "GO", caveats=["warning: column x unknown", "warning: column x unknown",
                                          "baseline: PASS, not significant", "breaker_trip: 3% > 2%"])
    assert run_caveats(run) == {"warning": ["warning: column x unknown (x2)"],
                                "evaluation": ["baseline: PASS, not significant"],
                                "breaker_trip": ["breaker_trip: 3% > 2%"]}
    assert caveat_kind("plugin: x") == "evaluation"


@pytest.mark.parametrize(("state", "css"), [("PASS", ""), ("GO", ""), ("FAIL", "p5-row-fail"),
                                            ("NO-GO", "p5-row-fail"), ("NA", "p5-row-na"),
                                            (NOT_EVALUATED, "p5-row-na"), ("INVALID", "p5-row-invalid"),
                                            ("NOT-EXERCISED", "p5-row-other")])
def test_row_classes(state: str, css: str) -> None:
    assert row_class(state) == css
    html = str(table(["a"], [["x"]], css="p5-x", row_css=[css]))
    assert ('<tr class="' + css + '">' in html) if css else "<tr><td>x</td></tr>" in html
    assert html.startswith('<div class="p5-table p5-x">')


def test_chart_table_lines_series_up_by_instant_and_skips_marks() -> None:
    spec = {"layer": [{"data": {"values": [{"at": 2000, "client p95": 40.0}, {"at": 1000, "client p95": None}]}},
                      {"data": {"values": [{"at": 1000, "target": 80}]}},
                      {"data": {"values": [{"t_s": 0, "phase": "warmup", "at": 1000}]}},  # phase mark
                      {"data": {"values": [{"label": "P95 SLO", "y": 150}]}}]}  # SLO line
    assert chart_table(spec) == (["client p95", "target"], [[1000, None, 80], [2000, 40.0, None]])


def test_report_html_writes_one_self_contained_file(built_site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from phase5site.cli import cli

    run_dir = next(built_site.results.glob("day1-*"))
    out = tmp_path / "day1.html"
    result = CliRunner().invoke(cli, ["report", str(run_dir), "--html", str(out)])
    assert result.exit_code == 0, result.output  # day1 is GO
    assert f"html: {out}" in result.output
    text = out.read_text(encoding="utf-8")
    assert text.count("<svg") > 5 and "<script" not in text.lower() and "<link rel=\"stylesheet\"" not in text
    assert "src=" not in text and 'href="http' not in text
    assert "<details><summary>Data table</summary>" in text and "p5-verdicts" in text
    refused = CliRunner().invoke(cli, ["report", str(run_dir / "metrics.csv"), "--html", str(out)])
    assert refused.exit_code == 2 and "--html needs a run folder" in refused.output


def test_run_page_rows_label_a_stopped_phase_and_carry_the_per_request_thresholds(tmp_path: Path) -> None:
    """A real aborted run file through the real evaluator: its rows read "(so far)", its phase
    row says how it stopped, and each requests[].slo threshold is a row of the verdict table."""
    from phase5site.site.page_run import verdict_section

    from reporting.runbuilder import good_sample, make_run  # tests/ is on sys.path (rootdir)
    from reporting.test_console_summary import mixed
    from reporting.test_reports import latencies

    spec = {"name": "synthetic", "phases": [{"name": "baseline"}],
            "target": {"requests": [{"name": "hello", "slo": {"p95": 0.1}},
                                    {"name": "plugins", "slo": {"p95": 0.05}}]}}
    run_dir = make_run(tmp_path, samples=[good_sample("baseline", i) for i in (1, 2)], planned_samples=12,
                       status="aborted", latencies_ms=latencies(), mixed_requests=mixed(), spec=spec)
    run = read_run(run_dir, default_evaluator())
    phases = {row.phase for row in run.verdicts.rows}
    assert "baseline (so far)" in phases  # the categories, measured before the stop
    assert run.verdicts.phases[0].decision == "NOT-EVALUATED"
    assert run.verdicts.phases[0].stopped == "ended aborted after 120 s of 720 s planned, 2 of 12 samples"
    requests = {row.category: row for row in run.verdicts.rows if row.category.startswith("request ")}
    assert set(requests) == {"request hello P95 (client)", "request plugins P95 (client)"}
    assert requests["request plugins P95 (client)"].verdict == "FAIL"
    assert requests["request hello P95 (client)"].target == "<= 100 ms"
    html = verdict_section(run)
    assert "measured so far: the phase ended aborted after 120 s of 720 s planned" in html
    assert "request plugins P95 (client)" in html and "p5-row-fail" in html
    assert shown_decision(run).state == "NO-GO"  # the breaker aborted it: the service suffered
