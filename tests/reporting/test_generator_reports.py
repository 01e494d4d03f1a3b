"""Drops, generator health and INVALID through real run folders: evaluation, Markdown, JSON,
JUnit and the CLI's exit code 5."""

from __future__ import annotations

import json
import signal
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from phase5site.cli import EXIT_ABORTED, EXIT_GO, EXIT_INVALID, EXIT_NO_GO, EXIT_SIGTERM, cli, workflow_exit_code
from phase5site.reporting import evaluate_run, evaluation_json, render_junit, write_report
from phase5site.store.legacy import import_legacy
from phase5site.workflow import WorkflowResult

from .runbuilder import T0, good_sample, make_run
from .test_reports import FIXTURES, latencies

GOLDEN = Path(__file__).parent / "golden" / "schema1_evaluations.json"
REASON = ("the load generator was delayed 612 ms at 16:04:00 UTC while slots were free "
          "(1 of 12 windows generator-limited): the machine was busy; rerun on a quieter host or "
          "with more workers")


def healthy_generator(num: int, **over: Any) -> dict[str, Any]:
    row = good_sample("baseline", num, generator_lag_p99_ms=0.4, generator_lag_max_ms=2.0,
                      generator_cpu_ratio=0.06, loop_lag_max_ms=1.2, generator_limited=False, dropped=0)
    row.update(over)
    return row


def limited_samples(**over: Any) -> list[dict[str, Any]]:
    rows = [healthy_generator(i, **over) for i in range(1, 13)]
    rows[3] = healthy_generator(4, generator_lag_p99_ms=40.0, generator_lag_max_ms=612.0,
                                generator_cpu_ratio=0.97, loop_lag_max_ms=580.0, generator_limited=True, **over)
    return rows


def test_a_run_with_drops_shows_the_censored_wait_and_fails_success(tmp_path: Path) -> None:
    # A 3 s stall: 240 requests dropped after waiting 1611 ms, beside 3000 fast ones.
    run_dir = make_run(tmp_path, samples=[good_sample("baseline", i) for i in range(1, 13)],
                       latencies_ms=latencies(), dropped_waits_ms=[1611.0] * 240, client_from_requests=True)
    phase = evaluate_run(run_dir).phases[0]
    evaluation = phase.evaluation
    assert evaluation is not None
    p95 = evaluation.category("latency_p95").rows[1]
    assert p95.pooled is not None and p95.pooled >= 1611.0 and p95.censored and p95.verdict == "FAIL"
    success = evaluation.category("success_rate").rows[1]
    assert (success.good, success.total) == (3000, 3240) and success.pooled < 1.0
    assert evaluation.category("error_rate").rows[1].breakdown["dropped"] == 240 / 3240
    assert phase.generator is not None
    assert (phase.generator.intended, phase.generator.dropped) == (3240, 240)
    text = write_report(run_dir).report_path.read_text()
    assert "| Latency P95 | yes | client | ≥ 1611.0 ms (censored: 240 dropped) | <= 150.0 ms | **FAIL** |" in text
    assert "client >= 1611 ms (censored: 240 dropped) breaks <= 150" in text
    assert "| baseline | 3,240 | 240 (7.41%) | 0.0 ms / 0.0 ms / 0.0 ms | not measured |" in text


def test_generator_limited_run_is_invalid_and_report_exits_5(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, samples=limited_samples(), latencies_ms=latencies(), name="busy")
    result = CliRunner().invoke(cli, ["report", str(run_dir), "--junit", str(tmp_path / "slo.xml")])
    assert result.exit_code == EXIT_INVALID == 5
    assert result.stdout.startswith(
        "INVALID: busy-run\n"
        f"  - baseline: latency_p95, latency_p99: client: {REASON}\n"
        # 3 samples of 2 reloads / 2 snapshots each cannot show >= 95 % / 99 % at 95 %:
        "  note: baseline: plugin_reload_success: PASS, not significant\n"
        "  note: baseline: snapshot_success: PASS, not significant\n"
        # the synthetic samples say the server counted 1,000 requests a window, far more than
        # the request rows the run holds: the reconciliation says so (issue 12)
        "  warning: baseline: the service counted 9,000 more requests than the client sent to routes "
        "declared timed: check requests[].timed in the spec (or another client loads the service)\n"
        "  warning: baseline: windows with a gap beyond counting noise: #1, #2, #3, #4, #5, #6, #7, #8, #9, #10, #11, #12\n"
        f"report: {run_dir / 'production-report.md'}\n"
        f"junit: {tmp_path / 'slo.xml'}\n"
    )
    # then the console summary, whose last line says what the exit code means
    assert "baseline  latency_p95            client  " in result.stdout and "! INVALID" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("exit code 5: INVALID: nothing FAILs")
    text = (run_dir / "production-report.md").read_text()
    assert text.splitlines()[2] == "**Verdict: INVALID**"
    assert "## Phase `baseline`: INVALID" in text and "INVALID because:" in text
    assert "| Latency P99 | yes | client |" in text and "| **INVALID** |" in text
    assert "| 4 | 2025-11-24 16:04:00 UTC | 1,000 | 0 | 40.0 ms | 612.0 ms | 97.0% of a core | 580.0 ms | **yes** |" in text
    assert "| baseline | 3,000 | 0 (0.00%) |" in text and "| 97.0% of a core | 580.0 ms | #4 |" in text
    suite = ET.parse(tmp_path / "slo.xml").getroot().find("testsuite")
    assert suite is not None and (suite.get("errors"), suite.get("failures")) == ("2", "0")
    errors = [case.get("name") for case in suite.iter("testcase") if case.find("error") is not None]
    assert errors == ["latency_p95", "latency_p99"]
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["generator_limited_samples"] == "4" and properties["dropped"] == "0"
    assert (properties["generator_cpu_ratio_max"], properties["loop_lag_max_ms"]) == ("0.97", "580")
    data = json.loads(CliRunner().invoke(cli, ["report", str(run_dir), "--json"]).stdout)
    assert data["decision"] == "INVALID"
    assert data["phases"][0]["generator"]["limited_samples"] == [4]
    assert data["phases"][0]["evaluation"]["categories"][2]["rows"][1]["invalid_reason"] == REASON


def test_summary_exits_5_too(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, samples=limited_samples(), latencies_ms=latencies())
    result = CliRunner().invoke(cli, ["summary", str(run_dir)])
    assert result.exit_code == EXIT_INVALID
    assert (run_dir / "summary.md").read_text().splitlines()[2] == "**Verdict: INVALID**"


def test_server_failure_is_no_go_even_with_invalid_client_latency(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, samples=limited_samples(server_ok=900, server_5xx=97), latencies_ms=latencies())
    result = CliRunner().invoke(cli, ["report", str(run_dir)])
    assert result.exit_code == EXIT_NO_GO == 3
    lines = result.stdout.splitlines()
    assert lines[0] == "NO-GO: synthetic-run"
    assert [line.split(":")[1].strip() for line in lines[1:3]] == ["success_rate", "error_rate"]
    latency = evaluate_run(run_dir).phases[0].evaluation.category("latency_p95")  # type: ignore[union-attr]
    assert latency.verdict == "INVALID", "still told apart from the service's failures"


def _project(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The parts of an evaluation that existed before generator health (the golden file's shape)."""
    row_keys = ("source", "verdict", "pooled", "good", "total", "share_within", "na_reason",
                "worst_sample", "worst_value", "interval")
    phases = []
    for phase in evaluation["phases"]:
        judged = phase["evaluation"]
        phases.append({"phase": phase["phase"], "throughput": phase["throughput"], "decision": judged["decision"],
                       "reasons": judged["reasons"],
                       "categories": [[c["category"], c["verdict"], c["reason"], [[r.get(k) for k in row_keys] for r in c["rows"]]]
                                      for c in judged["categories"]]})
    # Issue 13 added caveat lines for a PASS that is not significant; verdicts are unchanged.
    # Issue 12 added the reconciliation's caveat on the server's rates (the synthetic samples'
    # server counts are not the request rows'); verdicts are unchanged.
    caveats = [c for c in evaluation["caveats"] if "not significant" not in c
               and "describe only the requests it counts" not in c]
    return {"decision": evaluation["decision"], "reasons": evaluation["reasons"],
            "caveats": caveats, "phases": phases}


def test_schema_1_shaped_runs_evaluate_exactly_as_before(tmp_path: Path) -> None:
    """Runs without generator columns or slot_free (and without drops), judged by the code
    before issue 11, recorded in golden/schema1_evaluations.json."""
    keys = {"phase", "sample_num", "window_start", "window_end", "window_s", "timestamp"}
    none_rows = [{k: v for k, v in good_sample("baseline", i, source="none").items()
                  if k.startswith("client_") or k in keys} | {"source": "none"} for i in (1, 2, 3)]
    failing = [good_sample("baseline", i, server_ok=900, server_5xx=97, client_ok=950, client_5xx=49)
               for i in range(1, 4)]
    csv = sorted(FIXTURES.glob("*/metrics.csv"))[0]
    legacy_metadata = csv.with_name("metadata.json")
    runs = {
        "healthy": make_run(tmp_path / "a", samples=[good_sample("baseline", i) for i in range(1, 13)],
                            latencies_ms=latencies()),
        "failing": make_run(tmp_path / "b", samples=failing,
                            latencies_ms=latencies(n=500, seed=3) + [400.0] * 20),
        "none": make_run(tmp_path / "c", samples=none_rows, latencies_ms=latencies(),
                         spec={"name": "x", "metrics": {"source": "none"}, "phases": [{"name": "baseline"}]}),
        "legacy": import_legacy(csv, legacy_metadata if legacy_metadata.exists() else None, tmp_path / "imp"),
    }
    golden = json.loads(GOLDEN.read_text())
    for name, run_dir in runs.items():
        evaluation = json.loads(evaluation_json(evaluate_run(run_dir)))
        assert _project(evaluation) == golden[name], name
        # no generator health stored: nothing is INVALID (a NOT-EVALUATED phase, the
        # placeholder import, has its own error type)
        assert render_junit(evaluate_run(run_dir)).count('type="INVALID"') == 0


def test_old_runs_say_generator_health_was_not_measured(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, samples=[good_sample("baseline", i) for i in range(1, 13)], latencies_ms=latencies())
    health = evaluate_run(run_dir).phases[0].generator
    assert health is not None and not health.measured and health.limited_samples == []
    assert (health.free_slot_sends, health.generator_lag_p99_ms) == (0, None)
    text = write_report(run_dir).report_path.read_text()
    assert "| not measured | NA | NA | not measured |" in text
    assert T0 == 1_764_000_000.0


@pytest.mark.parametrize(
    ("status", "decision", "code"),
    [("completed", "GO", EXIT_GO), ("completed", "NO-GO", EXIT_NO_GO), ("completed", "INVALID", EXIT_INVALID),
     ("aborted", None, EXIT_ABORTED)],
)
def test_run_and_demo_exit_codes(status: str, decision: str | None, code: int) -> None:
    assert workflow_exit_code(WorkflowResult(run_dir=None, status=status, decision=decision)) == code
    interrupted = WorkflowResult(run_dir=None, status="interrupted", signal=signal.SIGTERM)
    assert workflow_exit_code(interrupted) == EXIT_SIGTERM


def test_help_documents_exit_code_5() -> None:
    for command in ("run", "report", "summary", "demo"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert "5 INVALID" in result.stdout, command
