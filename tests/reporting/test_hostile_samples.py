"""A stored run may hold anything DuckDB can store (an older version, another tool, a
damaged file): report, summary, JUnit, JSON, the site pages and ``slo recommend`` never
crash on it, and an
impossible value is NA with a reason naming it (issue 13 item 2: "+Inf" and 1e400 made
``ratio_row`` raise OverflowError, -5 gave an error rate of 200 %).

The samples are written through the real writer (which gates them), then overwritten
with hostile values in DuckDB directly, as another writer could have left them.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phase5site.columns import COLUMN_RANGES, gate_value
from phase5site.reporting import evaluate_run, evaluation_json, render_junit, render_report
from phase5site.reporting.evidence_gate import REASONS
from phase5site.reporting.slo_files import recommend_runs
from phase5site.site.charts import build_charts
from phase5site.site.page_run import render_run_page
from phase5site.site.rundata import read_run
from phase5site.store import RunReader
from phase5site.store.schema import INTEGER_SAMPLE_COLUMNS, JSON_SAMPLE_COLUMNS

from .runbuilder import good_sample, make_run
from .test_reports import latencies

FLOATS = [math.inf, -math.inf, math.nan, 1e300, -1e300, 1e16, -5.0, 2.0, -0.0, 5e-324, 0.5]
JSON_TEXTS = ['[[0.1, "x"]]', '{"a": 1}', "null", "[[1]]", '[["+Inf", 1e308]]', "not json",
              '[[0.1, -5]]', '"text"', "[]", '[[0.1, 1e400], ["+Inf", 3]]', '[["nan", 1]]', "[[true, 1]]"]
REASON_TEXTS = ["not json", "[1, 2]", '{"rss_mb": 5}', "null", '"a string"', "{}"]
CORRUPTIBLE = sorted(set(COLUMN_RANGES) | {"na_reasons"})


def _value(column: str) -> st.SearchStrategy[Any]:
    if column == "na_reasons":
        return st.sampled_from(REASON_TEXTS)
    if column in JSON_SAMPLE_COLUMNS:
        return st.sampled_from(JSON_TEXTS)
    if column in INTEGER_SAMPLE_COLUMNS:
        return st.one_of(st.sampled_from([-5, -(2**63), 2**63 - 1, 0]), st.integers(-(2**63), 2**63 - 1))
    return st.one_of(st.sampled_from(FLOATS), st.floats(allow_nan=True, allow_infinity=True))


def _corruptions() -> st.SearchStrategy[list[dict[str, Any]]]:
    one_sample = st.lists(st.sampled_from(CORRUPTIBLE), min_size=1, max_size=8, unique=True).flatmap(
        lambda columns: st.fixed_dictionaries({c: _value(c) for c in columns}))
    return st.lists(one_sample, min_size=3, max_size=3)


def _overwrite(run_dir: Path, sample_num: int, values: dict[str, Any]) -> None:
    con = duckdb.connect(str(run_dir / "run.duckdb"))
    try:
        for column, value in values.items():
            con.execute(f'UPDATE samples SET "{column}" = ? WHERE sample_num = ?', [value, sample_num])
    finally:
        con.close()


def _hostile_run(root: Path, corruptions: list[dict[str, Any]]) -> Path:
    run_dir = make_run(root, samples=[good_sample("baseline", i) for i in (1, 2, 3)], latencies_ms=latencies())
    for sample_num, values in enumerate(corruptions, start=1):
        _overwrite(run_dir, sample_num, values)
    return run_dir


def _assert_everything_renders(run_dir: Path) -> None:
    evaluation = evaluate_run(run_dir)
    render_report(evaluation)
    render_report(evaluation, partial=True)
    render_junit(evaluation)
    evaluation_json(evaluation)
    for phase in evaluation.evaluated_phases():
        for category in phase.evaluation.categories:  # type: ignore[union-attr]
            for row in category.rows:
                assert row.pooled is None or math.isfinite(row.pooled), (category.category, row)
                assert row.verdict != "NA" or row.na_reason, (category.category, row)
    run = read_run(run_dir, evaluate_run)
    assert run.verdicts.unavailable is None, run.verdicts.unavailable
    render_run_page(run, build_charts(run), {})
    # a hostile run is usually NO-GO: allow every reason, the draft must still be written
    recommend_runs([run_dir], out=run_dir / "slo-draft.yaml", allow=REASONS)


@settings(max_examples=30)
@given(corruptions=_corruptions())
def test_hostile_sample_rows_never_crash_report_summary_junit_json_or_site(corruptions: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run_dir = _hostile_run(Path(folder), corruptions)
        _assert_everything_renders(run_dir)
        # Every stored value the gate refuses is NA in what the evaluator and the site read,
        # with a reason quoting it.
        from phase5site.columns import gate_sample

        with RunReader(run_dir) as reader:
            for stored in reader.samples():
                gated = gate_sample(stored)
                for column in COLUMN_RANGES:
                    if gate_value(column, stored.get(column)) is not None:
                        assert gated[column] is None
                        assert "raw value" in gated["na_reasons"][column] or "bucket" in gated["na_reasons"][column]


@pytest.mark.parametrize(
    ("columns", "category", "source", "shown"),
    [
        # The crash of issue 13: +Inf and 1e400 (parsed as inf) requests and successes.
        ({"server_requests": math.inf, "server_ok": math.inf}, "success_rate", "server", "raw value inf"),
        ({"server_requests": 1e300, "server_ok": 1e300}, "success_rate", "server", "raw value 1e+300"),
        # -5 errors gave an error rate of 200 %.
        ({"server_5xx": -5.0}, "error_rate", "server", "raw value -5.0"),
        ({"server_ok": 1050.0}, "success_rate", "server", "exceeds server_requests"),
        ({"rss_mb": -5.0}, "memory", "server", "raw value -5.0"),
        ({"cache_hits_raw": math.nan, "cache_hit_rate": math.nan}, "cache_hit_rate", "server", "raw value nan"),
        ({"latency_buckets": '[[0.1, 1e400], ["+Inf", 3]]', "p95_latency": math.inf}, "latency_p95", "server",
         "raw value inf"),
        ({"client_requests": -5, "client_success_rate": 2.0}, "success_rate", "client", "raw value -5"),
        # Impossible counts beside a ratio column that looks valid: the ratio was read instead
        # of the refused counts, and passed. 995 ok + 30 + 2 errors of 1000 requests:
        ({"server_4xx": 30.0}, "success_rate", "server", "made of server_ok, which is impossible in this "
         "sample (raw server_ok + server_4xx + server_5xx = 1027.0 exceeds server_requests = 1000.0"),
        ({"server_4xx": 30.0}, "error_rate", "server", "exceeds server_requests = 1000.0"),
        ({"server_4xx": -3.0, "error_rate": 0.002}, "error_rate", "server",
         "made of server_4xx, which is impossible in this sample (raw value -3.0 is below 0"),
        ({"cache_misses_raw": -10.0}, "cache_hit_rate", "server", "raw value -10.0"),
        ({"server_requests": -1000.0, "request_rate": 16.7, "effective_fallback_ratio": 0.01}, "effective_fallback",
         "server", "raw value -1000.0"),
        ({"client_4xx": 30}, "success_rate", "client", "exceeds client_requests = 1000"),
        ({"dropped": -4, "client_error_rate": 0.002}, "error_rate", "client", "raw value -4"),
    ],
)
def test_impossible_values_in_every_sample_are_na_naming_the_value(
    tmp_path: Path, columns: dict[str, Any], category: str, source: str, shown: str
) -> None:
    run_dir = _hostile_run(tmp_path, [columns] * 3)
    _assert_everything_renders(run_dir)
    evaluation = evaluate_run(run_dir)
    judged = evaluation.phases[0].evaluation.category(category)  # type: ignore[union-attr]
    row = next(r for r in judged.rows if r.source == source)
    assert row.verdict == "NA" and row.pooled is None, row
    assert shown in (row.na_reason or ""), row.na_reason
    assert evaluation.decision == "NO-GO" if judged.mandatory and source == "server" and category in (
        "memory", "cache_hit_rate") else True
