from __future__ import annotations

import json
import random
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phase5site.errors import StoreError, UsageError
from phase5site.reporting import evaluate_run, evaluation_json, render_junit, write_report

from .runbuilder import good_sample, make_run

FIXTURES = Path("/work/shared/fixtures/metasheet2")
FIXTURE_CSVS = sorted(FIXTURES.glob("*/metrics.csv"))
FORBIDDEN = re.compile(r"\bTODO\b|\bTBD\b|\bFIXME\b|\bXXX\b")


def latencies(n: int = 3000, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return sorted(rng.uniform(2.0, 90.0) for _ in range(n))


def test_healthy_run_is_go_with_report(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, samples=[good_sample("baseline", i) for i in range(1, 13)], latencies_ms=latencies())
    result = write_report(run_dir, junit=tmp_path / "slo.xml")
    assert result.evaluation.decision == "GO"
    text = result.report_path.read_text()
    assert result.report_path == run_dir / "production-report.md"
    assert text.splitlines()[2] == "**Verdict: GO**"  # verdict first
    for heading in ("## Throughput: offered vs achieved", "### SLO verdicts", "### Client vs server latency",
                    "### Plugin reload and snapshot", "### NA and not-exercised reasons", "## How the values are combined", "## Caveats"):
        assert heading in text
    assert FORBIDDEN.search(text) is None
    suite = ET.parse(tmp_path / "slo.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "9" and suite.get("failures") == "0"
    assert [case.get("name") for case in suite.iter("testcase")][:2] == ["success_rate", "error_rate"]


def test_failing_run_is_no_go_and_junit_fails(tmp_path: Path) -> None:
    samples = [good_sample("baseline", i, server_ok=900, server_5xx=97) for i in range(1, 4)]
    run_dir = make_run(tmp_path, samples=samples, latencies_ms=latencies())
    evaluation = evaluate_run(run_dir)
    assert evaluation.decision == "NO-GO"
    assert any(reason.startswith("baseline: success_rate") for reason in evaluation.reasons)
    root = ET.fromstring(render_junit(evaluation))
    failed = {case.get("name") for case in root.iter("testcase") if case.find("failure") is not None}
    assert {"success_rate", "error_rate"} <= failed


def test_evaluation_json_round_trips(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, samples=[good_sample("baseline", i) for i in (1, 2)], latencies_ms=latencies())
    data = json.loads(evaluation_json(evaluate_run(run_dir)))
    categories = data["phases"][0]["evaluation"]["categories"]
    assert [c["category"] for c in categories][:3] == ["success_rate", "error_rate", "latency_p95"]
    assert categories[0]["rows"][0]["interval"]["method"] == "wilson"


def test_metrics_source_none_is_no_go_insufficient_data(tmp_path: Path) -> None:
    client_keys = {"phase", "sample_num", "window_start", "window_end", "window_s", "timestamp"}
    samples = []
    for i in (1, 2, 3):
        row = good_sample("baseline", i, source="none")
        samples.append({k: v for k, v in row.items() if k.startswith("client_") or k in client_keys} | {"source": "none"})
    spec = {"name": "x", "metrics": {"source": "none"}, "phases": [{"name": "baseline"}]}
    run_dir = make_run(tmp_path, samples=samples, latencies_ms=latencies(), spec=spec)
    evaluation = evaluate_run(run_dir)
    phase = evaluation.phases[0].evaluation
    assert phase is not None
    assert phase.category("success_rate").verdict == "PASS"
    assert phase.category("memory").verdict == "NA"
    assert evaluation.decision == "NO-GO"
    assert any("insufficient data" in r and "cache_hit_rate" in r for r in evaluation.reasons)
    text = write_report(run_dir).report_path.read_text()
    assert "no server metrics" in text


def test_partial_summary_lists_what_is_missing(tmp_path: Path) -> None:
    spec = {"name": "x", "phases": [{"name": "warmup"}, {"name": "baseline"}, {"name": "extended"}]}
    run_dir = make_run(
        tmp_path, samples=[good_sample("baseline", i) for i in (1, 2, 3)], planned_samples=12,
        latencies_ms=latencies(), spec=spec, finish=False,
    )
    with pytest.raises(UsageError, match="use `phase5site summary RUN_DIR --partial`"):
        write_report(run_dir)
    result = write_report(run_dir, partial=True)
    assert result.report_path == run_dir / "summary.md"
    text = result.report_path.read_text()
    assert "# Partial summary" in text
    assert "phase 'warmup' was not run" in text and "phase 'extended' was not run" in text
    assert "9 of 12 samples missing" in text
    assert "run status is interrupted" in text


def test_run_without_samples_is_not_evaluated(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, samples=[], latencies_ms=None)
    evaluation = evaluate_run(run_dir)
    assert evaluation.decision == "NOT-EVALUATED"  # nothing to judge: no verdict, never GO
    assert evaluation.reasons == ["no phase has samples: nothing to judge"]
    assert evaluation.phases[0].evaluation is None
    root = ET.fromstring(render_junit(evaluation))
    error = root.find("testsuite/testcase/error")
    assert error is not None and error.get("type") == "NOT-EVALUATED"
    assert root.find("testsuite/testcase/failure") is None


def test_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no run.duckdb"):
        write_report(tmp_path)
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(UsageError):
        write_report(other)


def test_every_fixture_is_present() -> None:
    assert len(FIXTURE_CSVS) >= 40, f"fixtures missing under {FIXTURES}"


@pytest.mark.parametrize("csv_path", FIXTURE_CSVS, ids=lambda p: p.parent.name)
def test_report_from_every_fixture(csv_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / csv_path.parent.name
    shutil.copytree(csv_path.parent, folder)
    result = write_report(folder / "metrics.csv", junit=tmp_path / "junit.xml")
    text = result.report_path.read_text()
    assert result.report_path == folder / "production-report.md"
    assert FORBIDDEN.search(text) is None
    assert "**Verdict: " in text
    # legacy files lack latency histograms and client requests: never a made-up percentile,
    # never GO; a file in which nothing could be judged (placeholders, NA) is not evaluated
    judged = [c for p in result.evaluation.evaluated_phases() for c in p.evaluation.categories  # type: ignore[union-attr]
              if c.verdict in ("PASS", "FAIL", "INVALID")]
    assert result.evaluation.decision == ("NO-GO" if judged else "NOT-EVALUATED")
    assert "NA" in text
    ET.parse(tmp_path / "junit.xml")
    for phase in result.evaluation.evaluated_phases():
        assert phase.evaluation is not None
        for category in phase.evaluation.categories:
            for row in category.rows:
                if row.pooled is None:
                    assert row.verdict in ("NA", "NOT-EXERCISED") and row.na_reason


def test_placeholder_success_rate_is_never_judged(tmp_path: Path) -> None:
    # phase5-20251122-150037 has http_success_rate 0.99 in every row: the old placeholder
    folder = tmp_path / "legacy"
    shutil.copytree(FIXTURES / "phase5-20251122-150037", folder)
    evaluation = write_report(folder / "metrics.csv").evaluation
    phase = evaluation.phases[0].evaluation
    assert phase is not None
    success = phase.category("success_rate")
    assert success.verdict == "NA"
    assert "placeholder" in (success.rows[0].na_reason or "")
    assert all(row.pooled is None for row in success.rows)
