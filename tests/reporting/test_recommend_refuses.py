"""`slo recommend` refuses weak evidence (issue 14): a NO-GO, aborted, generator-limited or
short run is refused with the reason named unless `--allow REASON`; the draft then says what
was allowed, and the SLO document carries it. The demo writes no draft from such a run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from phase5site.cli import EXIT_GO, EXIT_USAGE, cli
from phase5site.reporting import evaluate_run
from phase5site.reporting.evidence_gate import refusals
from phase5site.workflow import WorkflowResult, _demo_slo

from .runbuilder import T0, good_sample, make_run
from .test_generator_reports import limited_samples
from .test_reports import latencies


def stalled_run(tmp_path: Path) -> Path:
    """Demo-like: 12 samples, one stalled window (client P99 1100 ms) that makes P99 fail."""
    samples = [good_sample("baseline", i) for i in range(1, 13)]
    samples[6] = good_sample("baseline", 7, client_p95_ms=1050.0, client_p99_ms=1100.0)
    slow = sorted(latencies(2900) + [1100.0] * 100)  # 3.3% at 1.1 s: pooled P99 = 1100 ms
    return make_run(tmp_path, samples=samples, latencies_ms=slow, name="demo")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_no_go_run_is_refused_naming_the_reason(tmp_path: Path) -> None:
    run_dir = stalled_run(tmp_path)
    assert evaluate_run(run_dir).decision == "NO-GO"
    draft = tmp_path / "slo" / "slo-draft.yaml"
    code, _, err = invoke("slo", "recommend", str(run_dir), "--out", str(draft))
    assert code == EXIT_USAGE != 0
    assert "refusing to draft SLO targets from weak evidence: demo-run: no-go: baseline: latency_p99" in err
    assert "--allow no-go" in err
    assert not draft.exists()


def test_with_allow_the_draft_says_what_was_allowed(tmp_path: Path) -> None:
    run_dir = stalled_run(tmp_path)
    draft = tmp_path / "slo" / "slo-draft.yaml"
    code, out, err = invoke("slo", "recommend", str(run_dir), "--out", str(draft), "--allow", "no-go")
    assert code == EXIT_GO, err
    assert "warning: allowed (no-go): demo-run: baseline: latency_p99" in err
    document = YAML(typ="safe").load(draft.read_text())
    (allowed,) = document["evidence_allowed"]
    assert allowed["reason"] == "no-go" and allowed["run"] == "demo-run"
    assert any(note.startswith("evidence allowed with --allow no-go: demo-run: no-go:") for note in document["notes"])
    # the stalled window is named as an outlier, with the robust choice beside the worst
    p99 = next(c for c in document["categories"] if c["category"] == "latency_p99")
    assert p99["worst_sample"]["value"] == 1100.0 and p99["proposed_target"] == 1350.0
    assert p99["robust_k"] == 2 and p99["robust_sample"]["value"] == 89.0 and p99["robust_target"] == 150.0
    assert "robust: <= 150 from demo-run / baseline #" in out
    assert any("an outlier" in w for w in p99["warnings"])
    # the span is that of the samples used: 12 windows of 60 s from T0
    assert document["measurement"]["first_start_epoch_s"] == T0
    assert document["measurement"]["last_end_epoch_s"] == T0 + 720.0
    code, _, err = invoke("slo", "finalize", "--version", "2.5.0", "--from", str(draft), "--out-dir", str(draft.parent))
    assert code == EXIT_GO, err
    markdown = (draft.parent / "SLO_v2.5.0.md").read_text()
    assert "**Weak evidence allowed** (`slo recommend --allow`): demo-run: no-go: baseline: latency_p99" in markdown
    start = dt.datetime.fromtimestamp(T0, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    end = dt.datetime.fromtimestamp(T0 + 720, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"whose samples span {start} to {end} (12.0 min of sampled windows)" in markdown


@pytest.mark.parametrize("reason", ["aborted", "short", "invalid"])
def test_other_weak_evidence_is_refused(tmp_path: Path, reason: str) -> None:
    if reason == "aborted":
        run_dir = make_run(tmp_path, samples=[good_sample("baseline", i) for i in range(1, 13)],
                           status="aborted", latencies_ms=latencies())
    elif reason == "short":
        run_dir = make_run(tmp_path, samples=[good_sample("baseline", i) for i in range(1, 4)],
                           planned_samples=12, latencies_ms=latencies())
    else:
        run_dir = make_run(tmp_path, samples=limited_samples(), latencies_ms=latencies())
    assert reason in {r.reason for r in refusals(evaluate_run(run_dir))}
    code, _, err = invoke("slo", "recommend", str(run_dir), "--out", str(tmp_path / "d.yaml"))
    assert code == EXIT_USAGE and f": {reason}: " in err and f"--allow {reason}" in err
    allow = [arg for r in refusals(evaluate_run(run_dir)) for arg in ("--allow", r.reason)]
    code, _, err = invoke("slo", "recommend", str(run_dir), "--out", str(tmp_path / "d.yaml"), *allow)
    assert code == EXIT_GO, err


def test_a_clean_run_passes_and_a_typo_in_allow_is_refused(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, samples=[good_sample("baseline", i) for i in range(1, 13)], latencies_ms=latencies())
    assert refusals(evaluate_run(run_dir)) == []
    code, _, err = invoke("slo", "recommend", str(run_dir), "--out", str(tmp_path / "d.yaml"), "--allow", "nogo")
    assert code == EXIT_USAGE and "'nogo' is not one of" in err


def test_the_demo_writes_no_draft_from_a_no_go_run_and_says_so(tmp_path: Path) -> None:
    run_dir = stalled_run(tmp_path)
    lines: list[str] = []
    result = WorkflowResult(run_dir=run_dir, status="completed", decision="NO-GO")
    _demo_slo(result, tmp_path / "slo", "2.5.0", lambda text, err=False: lines.append(text))
    assert not (tmp_path / "slo" / "slo-draft.yaml").exists()
    assert not (tmp_path / "slo" / "SLO_v2.5.0.md").exists()
    assert lines[0].startswith("slo recommend: no SLO draft written: refusing to draft SLO targets")
    assert lines[1] == f"slo recommend: to draft anyway: phase5site slo recommend {run_dir} --allow no-go"
    assert result.problems == ["no SLO draft: the run is weak evidence (see above)"]
