"""Real runs on 127.0.0.1 (issue 12): a mix that never reaches the cache is NO-GO "not
exercised" unless the spec says, with a justification, that the cache is not required; a
service that does not count the gate's 401s and unknown paths is caught by the client/server
reconciliation. The decisions asserted here depend on the logic, not on the machine: latency,
success and error thresholds are set where no load can reach them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from phase5site.cli import EXIT_GO, EXIT_NO_GO, cli
from phase5site.engine import run_spec
from phase5site.reporting import evaluate_run, render_junit, render_report
from phase5site.runspec import parse_spec_text
from phase5site.store import RunReader

from .timed_service import TimedService

WHY = "no production request path touches the cache; only development routes move cache_hits_total"
NO_CACHE_MIX = """\
version: 1
name: no-cache
target:
  embedded: {profile: metasheet, seed: 5}
  timeout: 10s
  max_generator_lag: 60s
  requests:
    - {name: health, path: /health, weight: 1}
    - {name: hello, path: /api/v2/hello, weight: 2}
    - {name: fallback, method: POST, path: /internal/test/fallback, weight: 1, json: {mode: cache_miss}}
metrics: {source: scrape}
slo:
  latency_p95_ms: 600000
  latency_p99_ms: 600000
  success_rate_min: 0.01
  error_rate_max: 0.99
  effective_fallback_max: 1
  rss_mean_mb_max: 100000
__CATEGORIES__
phases:
  - {name: baseline, rate: 20, concurrency: 20, samples: 2, interval: 1s}
"""


def _no_cache_run(tmp_path: Path, categories: str) -> Path:
    text = NO_CACHE_MIX.replace("__CATEGORIES__", categories)
    outcome = run_spec(parse_spec_text(text, "no-cache.yaml", {}), results_dir=tmp_path)
    assert outcome.status == "completed", outcome.exit_reason
    return outcome.run_dir


def test_cache_not_exercised_is_no_go_and_says_what_would_exercise_it(tmp_path: Path) -> None:
    run_dir = _no_cache_run(tmp_path, "")
    evaluation = evaluate_run(run_dir)
    cache = evaluation.phases[0].evaluation.category("cache_hit_rate")  # type: ignore[union-attr]
    assert cache.verdict == "NOT-EXERCISED", cache
    assert evaluation.decision == "NO-GO"
    reason = next(r for r in evaluation.reasons if "cache_hit_rate" in r)
    assert "not exercised" in reason and "what would exercise it: cache lookups happen only on the dev diagnostics routes POST /api/cache-test/warm" in reason
    result = CliRunner().invoke(cli, ["report", str(run_dir)])
    assert result.exit_code == EXIT_NO_GO, result.output
    assert "baseline: cache_hit_rate: not exercised by this load" in result.output
    report = (run_dir / "production-report.md").read_text()
    assert "**NOT-EXERCISED**" in report and "what would exercise it: cache lookups happen only on the dev diagnostics routes POST /api/cache-test/warm" in report
    failure = ET.fromstring(render_junit(evaluation)).find(".//testcase[@name='cache_hit_rate']/failure")
    assert failure is not None and "not exercised" in failure.get("message", "")


def test_cache_not_required_with_justification_can_go_and_prints_it(tmp_path: Path) -> None:
    run_dir = _no_cache_run(tmp_path, f"  categories:\n    cache_hit_rate: {{required: false, justification: \"{WHY}\"}}")
    evaluation = evaluate_run(run_dir)
    phase = evaluation.phases[0].evaluation
    assert phase is not None
    cache = phase.category("cache_hit_rate")
    assert (cache.verdict, cache.required, cache.justification) == ("NOT-EXERCISED", False, WHY)
    assert not any("cache_hit_rate" in reason for reason in evaluation.reasons)
    # Everything else is judged on thresholds no measurement can miss; what the engine
    # measured decides the rest (the simulator's background reloads and snapshots are optional).
    blocking = [c.category for c in phase.categories if c.verdict == "FAIL" or (c.required and c.verdict in ("NA", "NOT-EXERCISED"))]
    assert blocking == [], phase.reasons
    assert evaluation.decision == "GO", evaluation.reasons
    result = CliRunner().invoke(cli, ["report", str(run_dir)])
    assert result.exit_code == EXIT_GO, result.output
    assert f"not required: cache_hit_rate (NOT-EXERCISED): {WHY}" in result.output
    report = (run_dir / "production-report.md").read_text()
    assert f"| {WHY} |" in report, "printed next to the category"
    skipped = ET.fromstring(render_junit(evaluation)).find(".//testcase[@name='cache_hit_rate']/skipped")
    assert skipped is not None and WHY in skipped.get("message", "")


MIXED = """\
version: 1
name: gate-mix
target:
  base_url: ${BASE}
  allow_hosts: [127.0.0.1]
  auth: {bearer: "${JWT}"}
  timeout: 10s
  max_generator_lag: 60s
  requests:
    - {name: health, path: /health, weight: 2}
    - {name: records, path: /api/attendance/records, weight: 2}
    - {name: no_token, path: /api/attendance/records, auth: none, timed: false, weight: 1}
    - {name: unknown, path: /no-such-page, weight: 1, expect_status: [404]}
metrics: {source: scrape, scrape_url: "${BASE}/metrics/prom"}
circuit_breaker: {enabled: false}
phases:
  - {name: baseline, rate: 20, concurrency: 2, samples: 2, interval: 2s}
"""


def test_untimed_gate_401s_and_404s_are_reconciled(tmp_path: Path) -> None:
    with TimedService() as service:
        env = {"BASE": service.base_url, "JWT": "generated-test-token-0123456789"}
        outcome = run_spec(parse_spec_text(MIXED, "gate.yaml", env), results_dir=tmp_path)
    assert outcome.status == "completed", outcome.exit_reason
    evaluation = evaluate_run(outcome.run_dir)
    assert evaluation.untimed == ["no_token", "unknown"]
    reconciliation = evaluation.phases[0].reconciliation
    assert reconciliation is not None and reconciliation.phase is not None
    total = reconciliation.phase
    with RunReader(outcome.run_dir) as reader:
        ((untimed, answered, errors),) = reader.con.execute(
            "SELECT count(*) FILTER (WHERE request_name IN ('no_token', 'unknown') AND status IS NOT NULL), "
            "count(status), count(*) FILTER (WHERE outcome <> 'ok') FROM requests").fetchall()
    assert untimed > 0
    with RunReader(outcome.run_dir) as reader:
        unknown = reader.con.execute("SELECT DISTINCT status, outcome FROM requests WHERE request_name = 'unknown'").fetchall()
    assert unknown == [(404, "ok")], "an expected 404 is the request's correct answer"
    # every request of the phase lies in one of its two windows
    assert (total.client_answered, total.client_answered - total.client_timed, total.client_failures) == (answered, untimed, errors)
    assert total.server_errors == 0, "the service counted none of the 401s and 404s"
    # What the service counted is what the engine measured; the gap is there by design.
    assert total.server_requests is not None and total.server_requests <= total.client_answered
    caveat = (f"baseline: the service counted {total.server_requests:,.0f} of {total.client_answered:,} requests "
              "(not timed: no_token, unknown): its success and error rates describe only the requests it counts")
    assert any(c.startswith(caveat) for c in evaluation.caveats), evaluation.caveats
    if errors > 5:  # the gate's 401s: the client saw them, the service did not count them
        assert any("client-seen error rate" in w and "vs server-seen 0.000 %" in w
                   and f"the service counted {total.server_requests:,.0f} of {total.client_answered:,} requests" in w
                   for w in evaluation.warnings), evaluation.warnings
    report = render_report(evaluation)
    assert "## Warnings: client and server disagree" in report
    assert "### Client vs server counts" in report and "⚠ timed routes only" in report
    junit = ET.fromstring(render_junit(evaluation))
    assert junit.find(".//property[@name='reconciliation_warning']") is not None
    result = CliRunner().invoke(cli, ["report", str(outcome.run_dir)])
    assert "  warning: baseline: " in result.output
