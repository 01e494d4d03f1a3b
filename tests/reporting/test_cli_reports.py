"""report, summary, slo recommend, slo finalize through CliRunner: exit codes and files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from phase5site.cli import EXIT_GO, EXIT_NO_GO, EXIT_NOT_EVALUATED, EXIT_RUNTIME_ERROR, EXIT_USAGE, cli

from .runbuilder import good_sample, make_run
from .test_reports import FIXTURES, latencies

SCHEMA_DIR = Path("/work/shared/schemas/openslo-v1")
PROMTOOL = Path("/usr/bin/promtool")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def go_run(tmp_path: Path, name: str = "go") -> Path:
    return make_run(tmp_path, samples=[good_sample("baseline", i) for i in range(1, 13)],
                    latencies_ms=latencies(), name=name)


def test_report_go_exits_zero(tmp_path: Path) -> None:
    run_dir = go_run(tmp_path)
    code, out, _ = invoke("report", str(run_dir), "--junit", str(tmp_path / "j.xml"))
    assert code == EXIT_GO
    assert out.startswith("GO: go-run")
    assert (run_dir / "production-report.md").exists() and (tmp_path / "j.xml").exists()


def test_report_no_go_exits_three_and_json(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, samples=[good_sample("baseline", 1, cache_hits_raw=10, cache_misses_raw=90)],
                       latencies_ms=latencies())
    code, out, _ = invoke("report", str(run_dir), "--json")
    assert code == EXIT_NO_GO
    data = json.loads(out)
    assert data["decision"] == "NO-GO"
    assert data["reasons"][0].startswith("baseline: cache_hit_rate")


def test_report_legacy_csv(tmp_path: Path) -> None:
    source = FIXTURES / "phase5-20251124-200917"
    folder = tmp_path / source.name
    folder.mkdir()
    for name in ("metrics.csv", "metadata.json"):
        (folder / name).write_bytes((source / name).read_bytes())
    code, out, _ = invoke("report", str(folder / "metrics.csv"))
    assert code == EXIT_NO_GO
    assert (folder / "production-report.md").exists()


def test_report_errors(tmp_path: Path) -> None:
    code, _, err = invoke("report", str(tmp_path))
    assert code == EXIT_RUNTIME_ERROR
    assert "no run.duckdb inside" in err
    code, _, err = invoke("report", str(tmp_path / "missing"))
    assert code == EXIT_USAGE  # click: path does not exist


def test_summary_needs_partial_for_an_interrupted_run(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, samples=[good_sample("baseline", i) for i in (1, 2)], planned_samples=12,
                       latencies_ms=latencies(), finish=False)
    code, _, err = invoke("summary", str(run_dir))
    assert code == EXIT_USAGE
    assert "--partial" in err
    code, out, _ = invoke("summary", str(run_dir), "--partial")
    # every category passes so far, but a cut-short run is no verdict: never GO, and no NO-GO
    # on the service's account either
    assert code == EXIT_NOT_EVALUATED
    assert "NOT-EVALUATED" in out and "run interrupted: incomplete evidence" in out
    assert "baseline (so far)" in out
    assert out.rstrip().splitlines()[-1].startswith("exit code 6: NOT-EVALUATED")
    text = (run_dir / "summary.md").read_text()
    assert "10 of 12 samples missing" in text


def test_help_documents_exit_codes() -> None:
    for command in (["report"], ["summary"]):
        code, out, _ = invoke(*command, "--help")
        assert code == 0
        assert "0 GO" in out and "3 NO-GO" in out
        assert "Example:" in out
    for command in (["slo", "recommend"], ["slo", "finalize"]):
        code, out, _ = invoke(*command, "--help")
        assert code == 0 and "Example:" in out


def test_recommend_then_finalize(tmp_path: Path) -> None:
    first, second = go_run(tmp_path / "a", "a"), go_run(tmp_path / "b", "b")
    draft = tmp_path / "slo" / "slo-draft.yaml"
    code, out, _ = invoke("slo", "recommend", str(first), str(second), "--out", str(draft))
    assert code == 0, out
    assert "latency_p95" in out and f"draft: {draft}" in out
    text = draft.read_text()
    assert "proposed_target" in text and "a-run / baseline" in text and "b-run / baseline" in text
    assert SCHEMA_DIR.is_dir(), f"OpenSLO schemas missing under {SCHEMA_DIR}"
    code, out, err = invoke("slo", "finalize", "--version", "2.5.0", "--out-dir", str(draft.parent),
                            "--openslo-schema", str(SCHEMA_DIR))
    assert code == 0, out + err
    assert "warning: cache_hit_rate" in err  # 90% hit target: 14.4 x 0.1 > 1
    for name in ("SLO_v2.5.0.md", "openslo.yaml", "prometheus-rules.yml"):
        assert (draft.parent / name).exists()
    assert PROMTOOL.exists(), "promtool is required"
    check = subprocess.run([str(PROMTOOL), "check", "rules", str(draft.parent / "prometheus-rules.yml")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    markdown = (draft.parent / "SLO_v2.5.0.md").read_text()
    assert "a baseline draft" in markdown and "Alert omitted: cache_hit_rate" in markdown


def test_finalize_without_draft_uses_release_criteria(tmp_path: Path) -> None:
    code, out, _ = invoke("slo", "finalize", "--version", "2.5.0", "--out-dir", str(tmp_path))
    assert code == 0
    assert "release criteria" in out
    assert ">= 98.00%" in (tmp_path / "SLO_v2.5.0.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "v2"], "is not a release version"),
        (["--version", "2.5.0", "--from", "nope.yaml"], "does not exist"),
    ],
)
def test_finalize_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, err = invoke("slo", "finalize", *args, "--out-dir", str(tmp_path))
    assert code == EXIT_USAGE
    assert message in err


def test_recommend_needs_samples(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, samples=[], latencies_ms=None)
    code, _, err = invoke("slo", "recommend", str(run_dir), "--out", str(tmp_path / "d.yaml"))
    assert code == EXIT_RUNTIME_ERROR
    assert "nothing to recommend from" in err
