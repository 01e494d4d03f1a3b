"""Issue 13 item 2, end to end (tests/reporting/test_hostile_samples.py feeds the same kind
of rows to the library functions; this one goes through the CLI and MkDocs): a stored run whose sample rows hold what no gate would let
through (NaN, +-inf, 1e308, negatives, None, huge counts, ratios out of range) still reports,
summarises and builds its site: never a traceback, every value NA with its reason.

On an older main +Inf/1e400 stored as inf made run/report/summary crash with OverflowError in
ratio_row, and -5 read as a 200 % error rate. The gate now sits at the sources and the
writer, so these rows are written past it, straight into DuckDB, as a file from an older
version or another tool could hold them; the readers must gate them again.

Hypothesis draws which columns of which samples are hostile and how (no deadline: nothing
here is about speed). Each example is a real run folder (RunWriter, DuckDB) read by the real
``report`` and ``summary`` commands (and, for some, the site's page generation); one
example-based test runs the whole ``build`` (MkDocs) on the worst case.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phase5site.cli import cli
from phase5site.columns import COLUMN_RANGES
from phase5site.site.build import generate_pages
from phase5site.site.verdicts import default_evaluator
from phase5site.store.schema import INTEGER_SAMPLE_COLUMNS

from reporting.runbuilder import good_sample, make_run  # tests/ is on sys.path (rootdir)

HOSTILE = [math.nan, math.inf, -math.inf, 1e308, -1e308, 1e300, -5.0, -0.5, 2.0, 1.5, float(2**62),
           None, 0.0]
HOSTILE_INTEGERS = [-5, 2**62, -(2**63), 2**63 - 1, None]
NUMERIC = sorted(c for c, r in COLUMN_RANGES.items() if r.kind != "buckets")
BUCKETS = sorted(c for c, r in COLUMN_RANGES.items() if r.kind == "buckets")
HOSTILE_BUCKETS = [
    '[[0.1, "NaN"], ["+Inf", 4.0]]', '[[0.1, 5.0], ["+Inf", -1e308]]', '[[0.1, 1e400], ["+Inf", 1.0]]',
    '[[0.5, 9.0], [0.1, 3.0], ["+Inf", 2.0]]', '[["x", 1.0]]', '{"le": 1}', '[]',
]
SAMPLES = 4
EXIT_OK = {0, 3, 5}  # GO, NO-GO, INVALID: a verdict, never a runtime error (1) or usage (2)

edit = st.tuples(st.integers(1, SAMPLES), st.sampled_from(NUMERIC), st.sampled_from(HOSTILE))
bucket_edit = st.tuples(st.integers(1, SAMPLES), st.sampled_from(BUCKETS), st.sampled_from(HOSTILE_BUCKETS))


def _hostile_run(root: Path, edits: list[tuple[int, str, Any]], bucket_edits: list[tuple[int, str, str]],
                 latencies_ms: list[float]) -> Path:
    """A completed run of SAMPLES healthy samples, then ``edits`` written past every gate."""
    samples = [good_sample("baseline", num) for num in range(1, SAMPLES + 1)]
    run_dir = make_run(root, samples=samples, latencies_ms=latencies_ms)
    with duckdb.connect(str(run_dir / "run.duckdb")) as con:
        for num, column, value in edits:
            if column in INTEGER_SAMPLE_COLUMNS:  # the column's own type: an integer
                value = HOSTILE_INTEGERS[HOSTILE.index(value) % len(HOSTILE_INTEGERS)] \
                    if value is not None and not (isinstance(value, float) and math.isnan(value)) \
                    else None
            con.execute(f'UPDATE samples SET "{column}" = ? WHERE sample_num = ?', [value, num])
        for num, column, text in bucket_edits:
            con.execute(f'UPDATE samples SET "{column}" = ? WHERE sample_num = ?', [text, num])
        # Request rows past the gate too: latencies no clock can give.
        con.execute("UPDATE requests SET latency_ms = 'NaN'::DOUBLE WHERE seq = 1")
        con.execute("UPDATE requests SET latency_ms = -3.0, service_ms = 'inf'::DOUBLE WHERE seq = 2")
    return run_dir


def _no_non_finite_json(text: str) -> None:
    for token in ("NaN", "Infinity"):
        assert token not in text.replace('"', " ").split() and f": {token}" not in text, token


def _check_report_and_summary(run_dir: Path) -> dict[str, Any]:
    runner = CliRunner()
    report = runner.invoke(cli, ["report", str(run_dir), "--json"])
    assert report.exit_code in EXIT_OK, (report.exit_code, report.output[-3000:], report.exception)
    assert "Traceback" not in report.output
    assert (run_dir / "production-report.md").is_file()
    summary = runner.invoke(cli, ["summary", str(run_dir), "--partial", "--json"])
    assert summary.exit_code in EXIT_OK, (summary.exit_code, summary.output[-3000:], summary.exception)
    assert "Traceback" not in summary.output
    start = report.output.index("{")
    text = report.output[start:]
    _no_non_finite_json(text)
    return json.loads(text)


def _check_rows(document: dict[str, Any]) -> None:
    """Every category row is a finite value or NA with a reason."""
    for phase in document["phases"]:
        evaluation = phase.get("evaluation")
        if not evaluation:
            continue
        for category in evaluation["categories"]:
            for row in category["rows"]:
                pooled = row["pooled"]
                if pooled is None:
                    assert row["verdict"] == "NA" and (row["na_reason"] or row["insufficient"]), row
                else:
                    assert math.isfinite(pooled), row
                for key in ("sample_min", "sample_max", "sample_mean", "worst_value"):
                    assert row[key] is None or math.isfinite(row[key]), (key, row)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(edit, min_size=1, max_size=12), bucket_edits=st.lists(bucket_edit, max_size=3))
def test_item2_hostile_sample_rows_in_a_stored_run_report_summary_and_site_never_crash(
        tmp_path: Path, edits: list[tuple[int, str, Any]], bucket_edits: list[tuple[int, str, str]]) -> None:
    root = tmp_path / "ex"
    shutil.rmtree(root, ignore_errors=True)
    results = root / "results"
    run_dir = _hostile_run(results, edits, bucket_edits, [float(10 + i % 50) for i in range(200)])
    document = _check_report_and_summary(run_dir)
    _check_rows(document)
    # A count made impossible is NA, its reason quoting the raw value: the server rows of
    # the success and error rates pool server_requests.
    for num, column, value in edits:
        if column == "server_requests" and value is not None and not (0 <= value <= 2**53) and \
                any(e[:2] == (num, "http_success_rate") and (e[2] is None or not 0 <= e[2] <= 1) for e in edits):
            assert "raw value" in json.dumps(document), (column, value)
    # The site's pages of the same run (SVG charts included): built for a few examples only,
    # each takes seconds; test_hostile_samples renders the run page for many more.
    if len(edits) % 4 == 0:
        generate_pages(results, root / "docs", default_evaluator(), None, ())
        assert list((root / "docs").rglob("*.md"))


def test_item2_the_worst_hostile_run_builds_its_whole_site(tmp_path: Path) -> None:
    edits = [(num, column, HOSTILE[(num + index) % len(HOSTILE)])
             for num in range(1, SAMPLES + 1) for index, column in enumerate(NUMERIC)]
    bucket_edits = [(num, column, HOSTILE_BUCKETS[num % len(HOSTILE_BUCKETS)])
                    for num in range(1, SAMPLES + 1) for column in BUCKETS]
    results = tmp_path / "results"
    run_dir = _hostile_run(results, edits, bucket_edits, [12.0] * 100)
    document = _check_report_and_summary(run_dir)
    _check_rows(document)
    assert document["decision"] != "GO"  # nothing valid enough to rest a GO on
    repo = tmp_path / "repo"
    shutil.copytree(Path(__file__).resolve().parents[2] / "site_src", repo / "site_src")
    shutil.copy(Path(__file__).resolve().parents[2] / "mkdocs.yml", repo / "mkdocs.yml")
    result = CliRunner().invoke(cli, ["build", "--results-dir", str(results), "--repo-root", str(repo)])
    assert result.exit_code == 0, (result.output[-3000:], result.exception)
    assert "Traceback" not in result.output
    pages = list((repo / "site").rglob("*.html"))
    assert pages and any("synthetic" in page.read_text(errors="replace") for page in pages)


@pytest.mark.parametrize("value", [math.nan, math.inf, -5.0, 1e308])
def test_item2_one_hostile_request_count_is_na_quoting_it(tmp_path: Path, value: float) -> None:
    # Both the count and the ratio column of sample 2: nothing of it is left to judge by.
    run_dir = _hostile_run(tmp_path, [(2, "server_requests", value), (2, "http_success_rate", value)],
                           [], [12.0] * 50)
    document = _check_report_and_summary(run_dir)
    text = json.dumps(document)
    shown = {math.inf: "inf", -5.0: "-5.0", 1e308: "1e+308"}.get(value, "nan")
    assert f"raw value {shown}" in text, text[:3000]
