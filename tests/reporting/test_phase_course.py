"""Item 4 of issue 14: a phase cut short reads NOT-EVALUATED (what it measured shown "so
far"), a FAIL in it still counts; a phase with nothing to judge is NOT-EVALUATED; pooled
client percentiles cover the same requests as the samples, the rest counted apart.

Real run files (RunWriter into DuckDB) with request rows 12.5 ms apart; each sample's client
columns are the store's own window over those rows, as the engine writes them."""

from __future__ import annotations

import math
import random
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phase5site.quantiles import nearest_rank, rank_is_censored
from phase5site.reporting.evaluate import evaluate_run
from phase5site.reporting.junit import render_junit

from .runbuilder import T0, good_sample, make_run

STEP = 0.0125  # make_run's spacing of request rows


def _windows_sample(num: int, start_index: int, end_index: int, **over: object) -> dict[str, object]:
    """A sample whose client window covers request rows [start_index, end_index)."""
    start, end = T0 + start_index * STEP - STEP / 2, T0 + end_index * STEP - STEP / 2
    return good_sample("baseline", num, window_start=start, window_end=end, window_s=end - start, **over)


def _client_row(evaluation: object, category: str) -> object:
    phase = evaluation.phases[0].evaluation  # type: ignore[attr-defined]
    return next(row for row in phase.category(category).rows if row.source == "client")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    latencies=st.lists(st.floats(0.1, 900.0, allow_nan=False), min_size=30, max_size=260),
    cuts=st.lists(st.integers(0, 1000), min_size=2, max_size=8, unique=True),
    drops=st.lists(st.floats(0.0, 2000.0, allow_nan=False), max_size=12),
)
def test_pooled_percentiles_are_over_the_samples_requests_and_never_above_the_worst(
    latencies: list[float], cuts: list[int], drops: list[float]
) -> None:
    """Windows with gaps between them: requests in a gap are outside every sample. Pooled
    P95/P99 equal nearest rank over the requests inside the windows (computed here from the
    rows written), and never exceed the worst sample's unless a sample is censored; if the
    pooled value is censored, some sample is (at most 5 % of each window above its P95 means
    at most 5 % of their union). A censored sample's value is only a lower bound, so it does
    not bound the pooled one (a drop ranks at the largest sent latency of its own set)."""
    rows = list(latencies) + []  # sent rows first, then drops (make_run's order)
    n_rows = len(rows) + len(drops)
    edges = sorted({min(c, 1000) * n_rows // 1000 for c in cuts})
    pairs = [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b > a]
    if not pairs:
        return
    with TemporaryDirectory() as tmp:
        samples = [_windows_sample(i + 1, a, b) for i, (a, b) in enumerate(pairs)]
        run_dir = make_run(Path(tmp), samples=samples, latencies_ms=rows, dropped_waits_ms=drops or None,
                           client_from_requests=True)
        evaluation = evaluate_run(run_dir)
    inside = {i for a, b in pairs for i in range(a, b)}
    sent_in = sorted(rows[i] for i in inside if i < len(rows))
    drops_in = [drops[i - len(rows)] for i in inside if i >= len(rows)]
    top = sent_in[-1] if sent_in else None
    ranking = sent_in + sorted(max(w, top) if top is not None else w for w in drops_in)
    for category, q in (("latency_p95", 0.95), ("latency_p99", 0.99)):
        row = _client_row(evaluation, category)
        assert row.pooled == nearest_rank(ranking, q)
        # a window's percentile is censored when its rank falls on one of its drops
        censored = [rank_is_censored(q, b - a, sum(1 for i in range(a, b) if i >= len(rows))) for a, b in pairs]
        if not any(censored):
            assert row.pooled <= row.worst_value
        if row.censored:
            assert any(censored)
    outside = evaluation.phases[0].evaluation.outside
    n_outside = n_rows - len(inside)
    if n_outside == 0:
        assert outside is None
    else:
        assert outside is not None and outside.requests == n_outside
        assert outside.dropped == sum(1 for i in range(len(rows), n_rows) if i not in inside)
        sent_out = sorted(rows[i] for i in range(len(rows)) if i not in inside)
        assert outside.latency_p95_ms == (nearest_rank(sent_out, 0.95) if sent_out else None)


def test_requests_outside_the_windows_are_shown_apart_in_every_report(tmp_path: Path) -> None:
    rng = random.Random(4)
    rows = [rng.uniform(5.0, 40.0) for _ in range(200)] + [900.0] * 40  # a slow tail no sample covers
    run_dir = make_run(tmp_path, samples=[_windows_sample(1, 0, 100), _windows_sample(2, 100, 200)],
                       latencies_ms=rows, client_from_requests=True)
    evaluation = evaluate_run(run_dir)
    phase = evaluation.phases[0].evaluation
    assert phase.outside is not None
    assert (phase.outside.requests, phase.outside.errors, phase.outside.dropped) == (40, 0, 0)
    assert phase.outside.latency_p95_ms == 900.0
    p95 = _client_row(evaluation, "latency_p95")
    assert p95.pooled == nearest_rank(sorted(rows[:200]), 0.95) and p95.pooled < 40.0
    assert any("40 requests (0 errors, 0 dropped; P95 900.0 ms) were intended outside every sample window"
               in caveat for caveat in evaluation.caveats)
    from phase5site.reporting.console import render_plain, summary_blocks
    from phase5site.reporting.render import render_report

    text = render_plain(summary_blocks(evaluation, exit_code=0))
    assert "baseline: 40 requests outside every sample window (0 errors, 0 dropped): not in the pooled figures" in text
    assert "Requests outside every sample window: 40 (40 ok, 0 errors, 0 dropped; P95 900.0 ms" in render_report(evaluation)


def _stopped(tmp_path: Path, status: str, *, failing: bool, finish: bool = True) -> object:
    over = {"client_ok": 900, "client_5xx": 98, "server_ok": 900, "server_5xx": 95} if failing else {}
    samples = [good_sample("baseline", i, **over) for i in (1, 2)]
    run_dir = make_run(tmp_path, samples=samples, planned_samples=12, status=status, finish=finish,
                       latencies_ms=[float(10 + i % 30) for i in range(2000)])
    return evaluate_run(run_dir)


def test_an_interrupted_phase_that_passed_so_far_is_not_evaluated(tmp_path: Path) -> None:
    evaluation = _stopped(tmp_path, "interrupted", failing=False)
    phase = evaluation.phases[0].evaluation
    assert phase.decision == "NOT-EVALUATED"
    assert phase.stopped == "ended interrupted after 120 s of 720 s planned, 2 of 12 samples"
    assert phase.reasons == ["phase ended interrupted after 120 s of 720 s planned, 2 of 12 samples: not "
                             "evaluated; the figures are what was measured so far"]
    assert all(c.verdict != "FAIL" for c in phase.categories)
    assert evaluation.decision == "NOT-EVALUATED"
    assert evaluation.reasons[-1].startswith("run interrupted: incomplete evidence")
    junit = render_junit(evaluation)
    assert 'type="NOT-EVALUATED"' in junit and "<failure" not in junit


def test_an_interrupted_phase_with_a_failure_is_no_go_on_that_failure_only(tmp_path: Path) -> None:
    evaluation = _stopped(tmp_path, "interrupted", failing=True)
    phase = evaluation.phases[0].evaluation
    assert phase.decision == "NO-GO"
    assert [r.split(":")[0] for r in phase.reasons[:-1]] == ["success_rate", "error_rate"]
    assert phase.reasons[-1].endswith("the other figures are as measured so far")
    assert not any("insufficient data" in r for r in phase.reasons)  # an NA there only says it stopped
    assert evaluation.decision == "NO-GO"
    assert "<failure" in render_junit(evaluation)


def test_an_aborted_run_is_no_go_because_the_breaker_tripped(tmp_path: Path) -> None:
    evaluation = _stopped(tmp_path, "aborted", failing=False)
    assert evaluation.phases[0].evaluation.decision == "NOT-EVALUATED"
    assert evaluation.decision == "NO-GO"
    assert evaluation.reasons == ["run aborted: no reason recorded (the breaker stops the load only when the "
                                  "service suffers)"]


def test_a_phase_that_ran_its_course_keeps_its_rules(tmp_path: Path) -> None:
    evaluation = _stopped(tmp_path, "completed", failing=False)
    phase = evaluation.phases[0].evaluation
    assert phase.stopped is None
    assert phase.decision == "GO" and evaluation.decision == "GO"
    assert not math.isnan(_client_row(evaluation, "latency_p95").pooled)


def test_a_placeholder_only_import_reads_not_evaluated_with_exit_code_6(tmp_path: Path) -> None:
    """phase5-20251122-150047: success 0.99 and p99 0.5 s in every row, nothing else."""
    import shutil

    from click.testing import CliRunner

    from phase5site.cli import EXIT_NOT_EVALUATED, cli

    from .test_reports import FIXTURES

    folder = tmp_path / "legacy"
    shutil.copytree(FIXTURES / "phase5-20251122-150047", folder)
    result = CliRunner().invoke(cli, ["report", str(folder / "metrics.csv")])
    assert result.exit_code == EXIT_NOT_EVALUATED, result.output
    assert "NOT-EVALUATED" in result.output
    assert "no category has a value to judge: every one is NA or not exercised" in result.output
    assert "placeholder of the old observer (0.99 in every row)" in result.output
    assert result.output.rstrip().splitlines()[-1].startswith("exit code 6: NOT-EVALUATED")


def _two_phase_run(tmp_path: Path, status: str) -> Path:
    """baseline ran its course (GO); the run was stopped (``status``) while ``extended`` was
    being set up, before it sent anything: that phase has no samples to show."""
    from phase5site.store import RequestRows, RunWriter

    from .runbuilder import T0
    from .test_reports import latencies

    run_dir = tmp_path / f"{status}-run"
    with RunWriter.create(run_dir, run_id=run_dir.name, name="two", spec_path=None, spec_sha256=None,
                          spec_redacted={"name": "two"}, environment={}, tool_version="test",
                          started_at=T0) as writer:
        writer.begin_phase("baseline", ordinal=1, rate=80.0, concurrency=20, planned_duration_s=120.0,
                           samples=2, interval_s=60.0, observe=True, flags={}, started_at=T0)
        rows = RequestRows()
        for seq, latency in enumerate(latencies()):
            at = T0 + seq * STEP
            rows.append("baseline", seq, "health", at, at, latency, latency, 200, "ok", 10)
        writer.append_requests(rows)
        for num in (1, 2):
            writer.add_sample(good_sample("baseline", num))
        writer.end_phase("baseline", ended_at=T0 + 120.0, status="completed", requests_sent=3000, dropped=0)
        writer.begin_phase("extended", ordinal=2, rate=80.0, concurrency=20, planned_duration_s=120.0,
                           samples=2, interval_s=60.0, observe=True, flags={}, started_at=T0 + 120.0)
        writer.end_phase("extended", ended_at=T0 + 121.0, status=status, requests_sent=0, dropped=0)
        writer.finish(status, ended_at=T0 + 121.0, exit_reason=f"{status} in the setup of extended")
    return run_dir


def test_the_junit_of_a_run_cut_short_is_never_all_green(tmp_path: Path) -> None:
    """The stopped phase had no samples, the one before it passed: the JUnit once held only
    that phase's passing cases, so CI read a NOT-EVALUATED (or aborted, NO-GO) run as green."""
    import xml.etree.ElementTree as ET

    interrupted = evaluate_run(_two_phase_run(tmp_path, "interrupted"))
    assert interrupted.decision == "NOT-EVALUATED"
    assert interrupted.phases[0].evaluation.decision == "GO"  # type: ignore[union-attr]
    root = ET.fromstring(render_junit(interrupted))
    assert root.find(".//failure") is None
    errors = root.findall(".//testcase/error")
    assert [e.get("type") for e in errors] == ["NOT-EVALUATED"]
    assert "run interrupted: incomplete evidence (interrupted in the setup of extended)" in errors[0].get("message")
    assert root.find("testsuite[@name='run']").get("errors") == "1"

    aborted = evaluate_run(_two_phase_run(tmp_path, "aborted"))
    assert aborted.decision == "NO-GO"
    root = ET.fromstring(render_junit(aborted))
    failures = root.findall(".//testcase/failure")
    assert len(failures) == 1 and failures[0].get("message").startswith("run aborted: aborted in the setup")
    assert root.find("testsuite[@name='run']").get("failures") == "1"


def test_a_completed_run_has_no_run_status_case(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    evaluation = _stopped(tmp_path, "completed", failing=False)
    assert ET.fromstring(render_junit(evaluation)).find("testsuite[@name='run']") is None


def test_the_junit_of_a_phase_with_nothing_to_judge_has_no_failure(tmp_path: Path) -> None:
    """A placeholder-only import is NOT-EVALUATED: its JUnit said <failure> for every required
    NA, a failure of the service nobody measured."""
    import shutil
    import xml.etree.ElementTree as ET

    from phase5site.store.legacy import import_legacy_run

    from .test_reports import FIXTURES

    folder = tmp_path / "legacy"
    shutil.copytree(FIXTURES / "phase5-20251122-150047", folder)
    imported = import_legacy_run(folder / "metrics.csv", folder / "metadata.json", tmp_path / "results")
    evaluation = evaluate_run(imported.run_dir)
    assert evaluation.decision == "NOT-EVALUATED"
    root = ET.fromstring(render_junit(evaluation))
    assert root.find(".//failure") is None
    suite = root.find("testsuite")
    errors = suite.findall("testcase/error")
    assert errors and {e.get("type") for e in errors} == {"NOT-EVALUATED"}
    assert int(suite.get("errors")) == len(errors) and suite.get("failures") == "0"
    assert int(suite.get("errors")) + int(suite.get("skipped")) == int(suite.get("tests"))
    assert all(e.get("message").startswith("no category has a value to judge") for e in errors)


def test_per_request_thresholds_of_a_stopped_phase_are_not_passes_in_junit(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    from .test_console_summary import mixed
    from .test_reports import latencies

    spec = {"name": "synthetic", "phases": [{"name": "baseline"}],
            "target": {"requests": [{"name": "hello", "slo": {"p95": 0.1}},
                                    {"name": "plugins", "slo": {"p95": 0.05}}]}}
    run_dir = make_run(tmp_path, samples=[good_sample("baseline", i) for i in (1, 2)], planned_samples=12,
                       status="interrupted", latencies_ms=latencies(), mixed_requests=mixed(), spec=spec)
    evaluation = evaluate_run(run_dir)
    verdicts = {e.name: t.verdict for e in evaluation.endpoints for t in e.thresholds}
    assert verdicts == {"hello": "PASS", "plugins": "FAIL"}
    suite = ET.fromstring(render_junit(evaluation)).find("testsuite[@name='endpoints.baseline']")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert cases["plugins.p95"].find("failure") is not None  # a failure seen is a failure
    error = cases["hello.p95"].find("error")
    assert error is not None and error.get("type") == "NOT-EVALUATED"
    assert "so far" in error.get("message")
    assert (suite.get("failures"), suite.get("errors")) == ("1", "1")
