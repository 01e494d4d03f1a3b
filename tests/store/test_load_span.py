"""Achieved and intended rates are over the span a phase could send in.

Found on the real service in Prometheus mode: a 45 s phase at 10 req/s sent its 450
requests on time, then waited ~3 s for the first scrape after its last window; the report
said "9.35 req/s achieved of 10". The rows here are written through the real RunWriter
into a real DuckDB file and the rates are checked against a count of those rows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phase5site.reporting import evaluate_run
from phase5site.store import RequestRows, RunReader, RunWriter, load_span_s

T0 = 1_796_220_817.0
RATE = 10.0


def phase_run(root: Path, *, planned_s: float, sent_for_s: float, ended_after_s: float) -> Path:
    """One phase at RATE req/s that sent for ``sent_for_s`` and ended ``ended_after_s`` after its start."""
    run_dir = root / "span-run"
    writer = RunWriter.create(
        run_dir, run_id=run_dir.name, name="span", spec_path=None, spec_sha256=None,
        spec_redacted={"name": "span", "phases": [{"name": "baseline"}]}, environment={},
        tool_version="test", started_at=T0,
    )
    count = int(sent_for_s * RATE)
    with writer:
        writer.begin_phase("baseline", ordinal=1, rate=RATE, concurrency=4, planned_duration_s=planned_s,
                           samples=0, interval_s=None, observe=False, flags={}, started_at=T0)
        rows = RequestRows()
        for seq in range(count):
            at = T0 + (seq + 0.5) / RATE
            rows.append("baseline", seq, "health" if seq % 2 else "hello", at, at, 3.0, 3.0, 200, "ok", 10)
        writer.append_requests(rows)
        writer.end_phase("baseline", ended_at=T0 + ended_after_s, status="completed", requests_sent=count, dropped=0)
        writer.finish("completed", ended_at=T0 + ended_after_s)
    return run_dir


def test_a_phase_that_waited_for_a_scrape_after_its_load_reports_the_rate_it_sent_at(tmp_path: Path) -> None:
    run_dir = phase_run(tmp_path, planned_s=45.0, sent_for_s=45.0, ended_after_s=48.1)
    evaluation = evaluate_run(run_dir)
    throughput = evaluation.phases[0].throughput
    assert throughput.requests_sent == 450
    assert throughput.achieved_rate == pytest.approx(450 / 45.0)
    assert throughput.duration_s == pytest.approx(48.1)  # the wall time stays what it was
    with RunReader(run_dir) as reader:
        stats = {row["name"]: row for row in reader.endpoint_stats()}
    for name in ("health", "hello"):
        assert stats[name]["achieved_rate"] == pytest.approx(stats[name]["sent"] / 45.0)
        assert stats[name]["intended_rate"] == pytest.approx(stats[name]["count"] / 45.0)


def test_a_phase_stopped_early_keeps_its_measured_span(tmp_path: Path) -> None:
    run_dir = phase_run(tmp_path, planned_s=45.0, sent_for_s=12.0, ended_after_s=12.0)
    throughput = evaluate_run(run_dir).phases[0].throughput
    assert throughput.achieved_rate == pytest.approx(120 / 12.0)


def test_load_span_without_a_plan_or_an_end() -> None:
    assert load_span_s(T0, T0 + 48.0, None) == pytest.approx(48.0)
    assert load_span_s(T0, None, 45.0) is None
    assert load_span_s(T0, T0, 45.0) is None


def test_the_run_page_phase_table_shows_the_rate_the_load_sent_at(tmp_path: Path) -> None:
    from phase5site.site.page_run import phase_table
    from phase5site.site.rundata import read_run

    run_dir = phase_run(tmp_path, planned_s=45.0, sent_for_s=45.0, ended_after_s=48.1)
    html = phase_table(read_run(run_dir, None))
    cells = [cell.split(">", 1)[1] if ">" in cell else cell for cell in html.split("<td")[1:]]
    values = [c.split("<", 1)[0].strip() for c in cells]
    # Phase, Status, Target, Offered, Achieved, ...: offered and achieved are 450 / 45 s
    assert values[:5] == ["baseline", "completed", "10", "10", "10"], values
