"""The run page shows what the evaluation says about evidence (issue 12): the synthetic
label, the client/server warnings and their table, NOT-EXERCISED with what would exercise
it, and the justification of a category the spec does not require."""

from __future__ import annotations

from pathlib import Path

from phase5site.reporting import evaluate_run, render_report
from phase5site.site.page_run import render_run_page
from phase5site.site.pages import render_completion
from phase5site.site.rundata import read_run
from phase5site.site.verdicts import default_evaluator
from .runbuilder import good_sample, make_run

WHY = "no production request path touches the cache (only development routes move it)"
SPEC = {
    "name": "dev-like", "phases": [{"name": "baseline"}],
    "metrics": {"source": "prometheus", "profile": "metasheet"},
    "target": {"requests": [
        {"name": "health", "path": "/health"},
        {"name": "cache_warm", "path": "/api/cache-test/warm?count=2", "method": "POST", "synthetic": True},
    ]},
    "slo": {"categories": {"cache_hit_rate": {"required": False, "justification": WHY}}},
}


def test_run_page_and_report_show_the_evidence(tmp_path: Path) -> None:
    # the server counted 1,000 requests a window; the client holds 400 rows in the first:
    # far apart, beyond counting noise
    samples = [good_sample("baseline", i, cache_hits_raw=0, cache_misses_raw=0) for i in (1, 2)]
    run_dir = make_run(tmp_path, samples=samples, latencies_ms=[20.0] * 400, spec=SPEC, name="dev-like")
    evaluation = evaluate_run(run_dir)
    assert evaluation.synthetic == ["cache_warm"] and evaluation.untimed == ["cache_warm"]
    assert evaluation.warnings, "the gap is beyond noise"
    report = render_report(evaluation)
    assert "**Synthetic load**" in report and "`cache_warm`" in report
    run = read_run(run_dir, default_evaluator())
    page = render_run_page(run, [], {})
    assert "Synthetic load" in page and "cache_warm" in page
    assert "## Client vs server counts" in page and 'class="p5-table p5-reconciliation"' in page
    assert "NOT-EXERCISED" in page and f"not required: {WHY}" in page
    assert "what would exercise it: cache lookups happen only on the dev diagnostics routes POST /api/cache-test/warm" in page
    assert "the service counted" in page, "the caveat sits beside the server's rates"
    overview = render_completion([run], [])
    assert "synthetic load (diagnostics requests: cache_warm)" in overview
    assert "verdict rows are not exercised by the load" in overview


def test_timed_defaults_follow_the_profile_for_base_url_and_the_embedded_simulator_alike() -> None:
    from phase5site.reporting.mix import mix_facts

    requests = [{"name": "records", "path": "/api/attendance/records?x=1"},
                {"name": "sheets", "path": "/api/multitable/sheets"},
                {"name": "gate", "path": "/api/attendance/records", "timed": False},
                {"name": "warm", "path": "/api/cache-test/warm", "synthetic": True}]
    real = mix_facts({"target": {"base_url": "https://x", "requests": requests}, "metrics": {"profile": "metasheet"}})
    assert real.timed == {"records": True, "sheets": False, "gate": False, "warm": False}
    assert real.synthetic == ["warm"] and "/api/cache-test/warm" in real.moved_by()["cache_hit_rate"]
    embedded = mix_facts({"target": {"embedded": {}, "requests": requests}})
    assert embedded.timed == real.timed, "the simulator times the routes the service times"
    assert mix_facts({}).timed == {"health": True, "hello": True, "plugins": True}, "the default mix"
