"""Pure helpers of the site: escaping, bucketing, verdict flattening, secret scrubbing."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from phase5site.site.decision import row_class
from phase5site.site.escape import html_text, json_attribute, md_text
from phase5site.site.icons import icon
from phase5site.site.pages import ci_overlap, embed_markdown
from phase5site.site.rundata import run_slug, scrub_secrets
from phase5site.site.series import bucket_seconds, per_second_rows
from phase5site.site.verdicts import VerdictRow, evaluate, flatten, value_text


class _Attr(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.value: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.value = dict(attrs)["data-vega-spec"]


@pytest.mark.parametrize("payload", [{"a": "<script>alert('x')</script>"}, {"b": "it's & \"q\""},
                                     {"c": [1.5, None, "</div>"]}])
def test_json_attribute_round_trips_through_an_html_parser(payload: object) -> None:
    markup = f"<div data-vega-spec='{json_attribute(payload)}'></div>"
    assert "<script" not in markup and "</div>\"" not in markup
    parser = _Attr()
    parser.feed(markup)
    assert json.loads(parser.value or "") == payload


def test_html_and_markdown_text() -> None:
    assert html_text('<b>"x"</b>') == "&lt;b&gt;&quot;x&quot;&lt;/b&gt;"
    assert html_text(None) == ""
    assert md_text("a_b <i>") == "a\\_b &lt;i&gt;"
    assert html_text("GET http://u:s3cr3t@h:9/m and http://h:9090/x") == "GET http://u:***@h:9/m and http://h:9090/x"


@pytest.mark.parametrize(("total_s", "bucket_s"), [(0, 1), (900, 1), (901, 2), (7800, 9), (62_500, 70)])
def test_bucket_seconds(total_s: float, bucket_s: int) -> None:
    assert bucket_seconds(total_s) == bucket_s


def test_per_second_rows_pool_counts_and_keep_the_worst_second() -> None:
    def second(n: int, intended: int, http_5xx: int, p95: float | None) -> dict[str, object]:
        return {"second": n, "intended": intended, "sends": intended, "ok": intended - http_5xx,
                "http_4xx": 0, "http_5xx": http_5xx, "timeout": 0, "connect_error": 0, "dropped": 0,
                "p50_ms": 10.0, "p95_ms": p95, "p99_ms": None}

    rows = per_second_rows({"baseline": [second(0, 10, 1, 40.0), second(1, 30, 1, 90.0), second(2, 5, 0, None)]},
                           {"baseline": 100.0}, bucket_s=2)
    assert [r["t_s"] for r in rows] == [100.0, 102.0]
    assert rows[0]["achieved_rate"] == 20.0 and rows[0]["share_5xx"] == 0.05 and rows[0]["p95_ms"] == 90.0
    assert rows[1]["p95_ms"] is None and rows[1]["p99_ms"] is None


def test_last_bucket_of_a_phase_is_divided_by_the_seconds_it_covers() -> None:
    """A 20 s phase at 80 req/s in 9 s buckets: 9 + 9 + 2 s, every bucket at 80 req/s."""
    full = [{"second": n, "intended": 80, "sends": 80, "ok": 80} for n in range(20)]
    rows = per_second_rows({"warmup": full}, {"warmup": 0.0}, bucket_s=9, phase_lengths_s={"warmup": 20.0})
    assert [(r["t_s"], r["achieved_rate"]) for r in rows] == [(0.0, 80.0), (9.0, 80.0), (18.0, 80.0)]


def test_ci_overlap() -> None:
    def row(low: float | None, high: float | None) -> VerdictRow:
        return VerdictRow(None, "x", "", "", "", "PASS", ci_low=low, ci_high=high)

    assert ci_overlap(row(0.10, 0.20), row(0.15, 0.30)) == "yes"
    assert ci_overlap(row(0.10, 0.12), row(0.15, 0.30)) == "no"
    assert ci_overlap(row(None, 0.12), row(0.15, 0.30)) == "NA"
    assert ci_overlap(None, row(0.15, 0.30)) == "NA"


def test_scrub_secrets_and_slug() -> None:
    spec = {"target": {"auth": {"bearer": "eyJabc"}, "requests": [
        {"name": "x", "headers": {"X-Key": "k1", "Accept": "json"}, "secret_headers": ["X-Key"]}]},
        "env": {"PROD_JWT": "***", "api_key": "zz", "host": "a"}}
    clean = scrub_secrets(spec)
    assert clean["target"]["auth"]["bearer"] == "***"
    assert clean["target"]["requests"][0]["headers"] == {"X-Key": "***", "Accept": "json"}
    assert clean["env"] == {"PROD_JWT": "***", "api_key": "***", "host": "a"}
    from pathlib import Path

    assert run_slug(Path("results/day1 <x>-20261127T033000Z")) == "day1-x-20261127T033000Z"


def test_flatten_reads_the_reporting_shape_and_never_invents_a_pass() -> None:
    evaluation = {"decision": "NO-GO", "reasons": ["latency p95 breaks"], "caveats": ["few samples"],
                  "phases": [{"phase": "baseline", "evaluation": {"decision": "NO-GO",
                                                                  "reasons": ["p95 over"], "categories": [
                      {"category": "latency_p95", "title": "Latency P95", "mandatory": True, "rows": [
                          {"source": "client", "unit": "ms", "pooled": 180.0, "threshold": 150.0,
                           "comparison": "<=", "verdict": "FAIL", "worst_sample": 3, "worst_value": 240.0,
                           "interval": {"low": 170.0, "high": 190.0}},
                          {"source": "server", "unit": "ms", "pooled": None, "threshold": 150.0,
                           "comparison": "<=", "verdict": "maybe", "na_reason": "no histogram"}]}]}}]}
    verdicts = flatten(evaluation)
    assert verdicts.decision == "NO-GO" and verdicts.caveats == ["few samples"]
    assert [(p.phase, p.decision, p.reasons) for p in verdicts.phases] == [("baseline", "NO-GO", ["p95 over"])]
    first, second = verdicts.rows
    assert (first.phase, first.category, first.pooled, first.worst_sample, first.target, first.verdict) == (
        "baseline", "Latency P95 (client)", "180 ms", "240 ms (sample 3)", "<= 150 ms", "FAIL")
    assert (first.ci_low, first.ci_high, first.key) == (170.0, 190.0, "latency_p95/client")
    # A state the site does not know (a newer evaluator's) keeps its name and is never a pass.
    assert second.verdict == "MAYBE" and second.pooled == "NA" and "no histogram" in second.note
    assert row_class(second.verdict) == "p5-row-other"
    assert "MAYBE</span>" in icon(second.verdict) and "p5-other" in icon(second.verdict)


def test_flatten_keeps_invalid_censored_values_and_generator_health() -> None:
    health = {"intended": 3240, "dropped": 240, "dropped_share": 240 / 3240, "limited_samples": [4],
              "measured": True, "windows": []}
    evaluation = {"decision": "INVALID", "reasons": ["baseline: latency_p95: client: busy host"],
                  "phases": [{"phase": "baseline", "generator": health, "evaluation": {
                      "decision": "INVALID", "reasons": ["latency_p95: client: busy host"], "categories": [
                          {"category": "latency_p95", "title": "Latency P95", "mandatory": True, "rows": [
                              {"source": "client", "unit": "ms", "pooled": 1611.0, "threshold": 150.0,
                               "comparison": "<=", "verdict": "INVALID", "invalid_reason": "busy host",
                               "censored": True, "dropped": 240, "worst_sample": 4, "worst_value": 1611.0,
                               "worst_censored": True}]}]}}]}
    verdicts = flatten(evaluation)
    assert verdicts.decision == "INVALID" and verdicts.phases[0].decision == "INVALID"
    (row,) = verdicts.rows
    assert (row.verdict, row.pooled, row.worst_sample) == ("INVALID", "≥ 1611 ms", "≥ 1611 ms (sample 4)")
    assert row.note.startswith("INVALID: busy host; censored: the percentile fell on one of 240 dropped")
    assert [(h.phase, h.health["limited_samples"]) for h in verdicts.health] == [("baseline", [4])]


def test_per_second_shares_are_of_every_request_intended_drops_included() -> None:
    row = {"second": 0, "intended": 100, "sends": 80, "ok": 78, "http_4xx": 0, "http_5xx": 2, "timeout": 0,
           "connect_error": 0, "dropped": 20, "p50_ms": 10.0, "p95_ms": 1611.0, "p99_ms": 1611.0,
           "send_lag_max_ms": 900.0, "generator_lag_max_ms": 3.0}
    (merged,) = per_second_rows({"baseline": [row]}, {"baseline": 0.0}, bucket_s=1)
    assert (merged["share_5xx"], merged["share_dropped"]) == (0.02, 0.2)
    assert (merged["send_lag_max_ms"], merged["generator_lag_max_ms"]) == (900.0, 3.0)


def test_evaluate_reports_a_failing_evaluator_as_unavailable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    def broken(run_dir: object) -> object:
        raise RuntimeError("disk on fire")

    verdicts = evaluate(tmp_path, broken)
    assert verdicts.decision is None and "disk on fire" in (verdicts.unavailable or "")
    assert evaluate(tmp_path, None).unavailable


def test_value_text_and_embedded_markdown() -> None:
    assert value_text(0.98765, "ratio") == "98.77%"
    assert value_text(120.5, "ms") == "120.5 ms"
    assert value_text(None, "ms") == "NA"
    assert embed_markdown("# SLO\n<b>x</b>\n```\n<keep>\n```") == "## SLO\n&lt;b>x&lt;/b>\n```\n<keep>\n```"


def test_slo_documents_sort_by_release_number() -> None:
    from pathlib import Path

    from phase5site.site.build import version_key

    names = ["SLO_v2.9.1.md", "SLO_v2.10.0.md", "SLO_v1.0.0.md"]
    assert sorted(names, key=lambda n: version_key(Path(n)), reverse=True) == [
        "SLO_v2.10.0.md", "SLO_v2.9.1.md", "SLO_v1.0.0.md"]
