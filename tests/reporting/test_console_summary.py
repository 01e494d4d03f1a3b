"""The end-of-run console summary (issue 14): its content for a GO, a NO-GO, an aborted and
an imported run, read from real stored runs; and per-request thresholds in the report, the
JSON and JUnit."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from phase5site.cli import EXIT_GO, EXIT_NO_GO, cli
from phase5site.reporting import evaluate_run, render_junit, render_report
from phase5site.reporting.console import mark, render_plain, summary_blocks
from phase5site.reporting.render import fmt_pooled, fmt_value

from .runbuilder import good_sample, make_run
from .test_reports import FIXTURES, latencies


def squeeze(text: str) -> list[str]:
    """Each line with runs of spaces made one (the plain table pads columns)."""
    return [re.sub(r" {2,}", " | ", line.strip()) for line in text.splitlines()]


TIMEOUT_TEXT = "no complete answer within 2 s: the request was written, no byte of the answer came"
HEALTH_BYTES_SENT = 140  # what the client wrote for each health request


def mixed() -> list[tuple]:
    """(name, latency, status, outcome, body bytes, error message, bytes sent) rows."""
    rows: list[tuple] = []
    rows += [("hello", 10.0 + i % 50, 200, "ok", 120, None, 150) for i in range(400)]
    rows += [("plugins", 30.0 + i % 90, 200, "ok", 800, None, 161) for i in range(200)]
    rows += [("plugins", 20.0, 503, "http_5xx", 15, None, 161) for _ in range(4)]
    rows += [("plugins", 2000.0, None, "timeout", None, TIMEOUT_TEXT, 161) for _ in range(2)]
    return rows


def go_run(tmp_path: Path, bytes_sent: int | None = HEALTH_BYTES_SENT, **spec: object) -> Path:
    return make_run(tmp_path, samples=[good_sample("baseline", i) for i in range(1, 13)],
                    latencies_ms=latencies(), mixed_requests=mixed(), spec=spec or None, bytes_sent=bytes_sent)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout


def test_go_run_summary_shows_every_row_the_load_and_the_endpoints(tmp_path: Path) -> None:
    run_dir = go_run(tmp_path)
    code, out = invoke("report", str(run_dir))
    assert code == EXIT_GO
    lines = squeeze(out)
    evaluation = evaluate_run(run_dir)
    phase = evaluation.evaluated_phases()[0].evaluation
    # every source row of every category, with its pooled value, threshold and mark
    for category in phase.categories:
        for row in category.rows:
            start = f"baseline | {category.category} | {row.source} | {fmt_pooled(row)} | {row.comparison} "
            line = next((item for item in lines if item.startswith(start)), None)
            assert line is not None, (start, out)
            assert f"| {mark(row.verdict, row.verdict_label)} |" in line
            worst = "NA" if row.worst_sample is None else f"#{row.worst_sample} {fmt_value(row.worst_value, row.unit)}"
            assert line.endswith(f"| {worst}"), (line, worst)
    load = next(item for item in lines if item.startswith("baseline | completed |"))
    sends = evaluation.phases[0].throughput.requests_sent
    assert f"| {sends:,} | 0 |" in load  # sent, dropped
    received = 3000 * 10 + 400 * 120 + 200 * 800 + 4 * 15  # bytes of every answered request
    written = len(latencies()) * HEALTH_BYTES_SENT + sum(row[6] for row in mixed())  # every sent request
    assert load.endswith(f"| {written:,} B | {received:,} B")
    assert "data sent" in squeeze(out)[squeeze(out).index(load) - 1]  # the column's header
    # the transport errors, with their kind, count and example message
    assert f"transport errors: baseline plugins timeout 2: {TIMEOUT_TEXT}" in lines
    # the busiest names first, with their counts and status codes
    names = [item.split(" | ")[1] for item in lines if item.startswith("baseline | ") and item.count(" | ") == 10]
    assert names[:3] == ["health", "hello", "plugins"]
    plugins = next(item for item in lines if item.startswith("baseline | plugins | 206 |"))
    assert plugins.endswith("| 200: 200, 503: 4")
    assert lines[-1] == "exit code 0: GO: every mandatory category PASSes and no optional one FAILs"


def test_data_sent_is_na_with_its_reason_when_rows_lack_it(tmp_path: Path) -> None:
    # health rows without a count (as the httpx client writes them): NA, saying how many
    run_dir = go_run(tmp_path, bytes_sent=None)
    _, out = invoke("report", str(run_dir))
    load = next(item for item in squeeze(out) if item.startswith("baseline | completed |"))
    missing = len(latencies())
    sent = missing + sum(1 for row in mixed() if row[3] != "dropped")
    assert (f"| NA (not recorded for {missing:,} of {sent:,} sent requests (the httpx client does not "
            "report the bytes it writes; rows from before schema 4 have none)) |") in load


def test_a_schema_3_run_keeps_data_sent_and_messages_na(tmp_path: Path) -> None:
    import gzip

    run_dir = tmp_path / "schema3-run"
    run_dir.mkdir()
    fixture = Path(__file__).parents[1] / "store" / "fixtures" / "schema3-run.duckdb.gz"
    (run_dir / "run.duckdb").write_bytes(gzip.decompress(fixture.read_bytes()))
    _, out = invoke("summary", str(run_dir), "--partial")
    load = next(item for item in squeeze(out) if item.startswith("baseline | completed |"))
    assert "| NA (not recorded (a run file before schema 4)) |" in load
    assert any(line.startswith("transport errors: baseline ") and line.endswith(
        "NA: not recorded (a run file before schema 4 kept the kind of a transport error only)")
        for line in squeeze(out))


def test_no_go_summary_marks_the_failure_and_ends_with_exit_3(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, samples=[good_sample("baseline", 1, cache_hits_raw=10, cache_misses_raw=90)],
                       latencies_ms=latencies())
    code, out = invoke("report", str(run_dir))
    assert code == EXIT_NO_GO
    lines = squeeze(out)
    assert "baseline | cache_hit_rate | server | 10.000% | >= 80.000% | ✗ FAIL | #1 10.000%" in lines
    assert any(line.startswith("run synthetic-run: NO-GO (status completed") for line in lines)
    assert any(line.startswith("- baseline: cache_hit_rate") for line in lines)
    assert lines[-1].startswith("exit code 3: NO-GO: a category FAILs on valid evidence")


def test_aborted_run_summary_names_the_status(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, samples=[good_sample("baseline", i) for i in (1, 2)], planned_samples=12,
                       status="aborted", latencies_ms=latencies())
    code, out = invoke("summary", str(run_dir), "--partial")
    assert code == EXIT_NO_GO
    lines = squeeze(out)
    assert any(line.startswith("run synthetic-run: NO-GO (status aborted") for line in lines)
    # the breaker trips only on the service's own errors: NO-GO, though every row passed so far;
    # the phase itself, cut short with nothing failing, is not evaluated and its rows say so
    assert "- run aborted: no reason recorded (the breaker stops the load only when the service suffers)" in lines
    assert "phase baseline: NOT-EVALUATED" in lines
    assert any(line.startswith("baseline (so far) | success_rate | client |") for line in lines)
    assert any(line.startswith("baseline: ended aborted after 120 s of 720 s planned, 2 of 12 samples")
               for line in lines)
    assert any(line.startswith("baseline | aborted | ") for line in lines)
    # `run` exits 4 for the same run: the summary says what that code means
    text = render_plain(summary_blocks(evaluate_run(run_dir), exit_code=4))
    assert text.splitlines()[-1] == "exit code 4: aborted by the circuit breaker: the service suffered, the load was stopped"


def test_imported_run_summary_has_no_client_figures(tmp_path: Path) -> None:
    source = FIXTURES / "phase5-20251124-200917"
    folder = tmp_path / source.name
    folder.mkdir()
    for name in ("metrics.csv", "metadata.json"):
        (folder / name).write_bytes((source / name).read_bytes())
    code, out = invoke("report", str(folder / "metrics.csv"))
    assert code == EXIT_NO_GO
    assert "imported legacy CSV: no request rows, so no client figures, drops or bytes" in out
    assert "Per request" not in out  # no request rows, no per-request table
    lines = squeeze(out)
    assert any(" | server | " in line and line.split(" | ")[1] == "success_rate" for line in lines)
    assert lines[-1].startswith("exit code 3: NO-GO")


def test_verdict_states_have_marks_and_unknown_ones_print_by_name() -> None:
    assert mark("NOT-EXERCISED") == "○ NOT-EXERCISED"
    assert mark("SOMETHING-NEW") == "? SOMETHING-NEW"
    assert mark("PASS", "PASS, not significant") == "✓ PASS, not significant"


def test_summary_defaults_to_the_latest_run(tmp_path: Path) -> None:
    older = make_run(tmp_path / "a", samples=[good_sample("baseline", 1)], latencies_ms=latencies(), name="older")
    newer = make_run(tmp_path / "b", samples=[good_sample("baseline", 1)], latencies_ms=latencies(), name="newer")
    results = tmp_path / "results"
    results.mkdir()
    for index, run_dir in enumerate((older, newer)):
        target = results / run_dir.name
        run_dir.rename(target)
        (target / "status.json").write_text(json.dumps({"status": "completed"}))
        import os
        os.utime(target / "status.json", (1_700_000_000 + index, 1_700_000_000 + index))
    code, out = invoke("summary", "--results-dir", str(results), "--partial")
    assert out.startswith("GO: newer-run"), out
    assert (results / "newer-run" / "summary.md").exists() and not (results / "older-run" / "summary.md").exists()


def test_request_thresholds_are_judged_in_report_json_and_junit(tmp_path: Path) -> None:
    spec = {"name": "synthetic", "phases": [{"name": "baseline"}],
            "target": {"requests": [{"name": "hello", "slo": {"p95": 0.1}},  # 100 ms: passes
                                    {"name": "plugins", "slo": {"p95": 0.05, "p99": 0.5}}]}}  # 50 ms: fails
    run_dir = go_run(tmp_path, **spec)
    evaluation = evaluate_run(run_dir)
    assert evaluation.decision == "NO-GO"
    verdicts = {(e.name, t.quantile): t for e in evaluation.endpoints for t in e.thresholds}
    assert verdicts[("hello", "p95")].verdict == "PASS"
    plugins = next(e for e in evaluation.endpoints if e.name == "plugins")
    # plugins p95 is a timeout (2000 ms) or a slow ok answer, well above 50 ms
    assert verdicts[("plugins", "p95")].verdict == "FAIL" and plugins.p95_ms > 50.0
    assert f"baseline: request plugins p95 {plugins.p95_ms:.1f} ms breaks <= 50.0 ms" in evaluation.reasons
    report = render_report(evaluation)
    assert f"| baseline | plugins | P95 | {plugins.p95_ms:.1f} ms | <= 50.0 ms | **FAIL** |" in report
    assert "| baseline | hello | P95 |" in report
    junit = render_junit(evaluation)
    assert '<testsuite name="endpoints.baseline" tests="3" failures="1" errors="0" skipped="0">' in junit
    assert '<testcase classname="endpoints.baseline" name="plugins.p95">' in junit
    data = json.loads(CliRunner().invoke(cli, ["report", str(run_dir), "--json"]).stdout)
    by_name = {e["name"]: e for e in data["endpoints"]}
    assert by_name["plugins"]["thresholds"][0]["verdict"] == "FAIL"
    assert by_name["plugins"]["status_counts"] == {"200": 200, "503": 4}
    (timeouts,) = by_name["plugins"]["transport"]
    assert (timeouts["kind"], timeouts["count"], timeouts["message"], timeouts["distinct_messages"]) == (
        "timeout", 2, TIMEOUT_TEXT, 1)
    plugins_sent = sum(row[6] for row in mixed() if row[0] == "plugins")
    assert (by_name["plugins"]["bytes_sent"], by_name["plugins"]["bytes_sent_na"]) == (plugins_sent, None)
    assert f"| timeout | 2 | seq {timeouts['example_seq']}, after 2000.0 ms | {TIMEOUT_TEXT} |" in report
    assert f"| {plugins_sent:,} B | {200 * 800 + 4 * 15:,} B |" in report  # sent, then received bytes
    code, out = invoke("report", str(run_dir))
    assert code == EXIT_NO_GO
    assert "baseline | request plugins p95 | client |" in "\n".join(squeeze(out))
