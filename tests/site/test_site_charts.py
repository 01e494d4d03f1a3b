"""Charts from stored aggregates: which charts exist, bucketing of long phases, SLO lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from phase5site.site.charts import build_charts
from phase5site.site.page_run import chart_div
from phase5site.site.rundata import RunData
from phase5site.site.verdicts import RunVerdicts

T0 = 1_795_000_000.0


def _second(n: int, rate: int = 80) -> dict[str, Any]:
    return {"second": n, "intended": rate, "sends": rate, "ok": rate - 1, "http_4xx": 0, "http_5xx": 1,
            "timeout": 0, "connect_error": 0, "dropped": 0, "p50_ms": 20.0, "p95_ms": 60.0 + n % 7,
            "p99_ms": 90.0}


def _run(seconds: int, samples: list[dict[str, Any]]) -> RunData:
    phase = {"name": "baseline", "started_at": T0, "ended_at": T0 + seconds, "rate": 80.0,
             "planned_duration_s": float(seconds), "requests_sent": 80 * seconds, "dropped": 0}
    return RunData(run_dir=Path("r"), slug="r", run={"started_at": T0, "ended_at": T0 + seconds,
                   "spec_redacted": {"slo": {"latency_p95_ms": 150.0, "latency_p99_ms": 250.0}},
                   "environment": {}}, phases=[phase], samples=samples, events=[],
                   per_second={"baseline": [_second(n) for n in range(seconds)]}, request_count=80 * seconds,
                   outcome_counts={}, primary_source="prometheus" if samples else None, verdicts=RunVerdicts(None))


def _values(spec: dict[str, Any]) -> int:
    return sum(len(layer.get("data", {}).get("values", [])) for layer in spec["layer"])


def test_client_only_run_has_only_client_charts() -> None:
    charts = build_charts(_run(120, []))
    assert [c.name for c in charts] == ["latency", "rate", "errors"]
    latency = charts[0]
    rules = [v for layer in latency.spec["layer"] for v in layer.get("data", {}).get("values", []) if "label" in v]
    assert {r["y"] for r in rules} == {150.0, 250.0}
    assert "per second" in latency.title


def test_long_phase_is_bucketed_and_says_so() -> None:
    run = _run(7200, [])
    latency = build_charts(run)[0]
    assert "per 8-s bucket, worst second" in latency.title
    assert _values(latency.spec) < 1000  # 7200 seconds folded into 900 points (+ SLO and phase marks)
    html = chart_div(latency)
    attribute = html.split("data-vega-spec='", 1)[1].split("'></div>", 1)[0]
    assert len(html) < 200_000 and "'" not in attribute
    assert 'data-chart="chart-latency"' in html  # its data table, one click away


def test_sample_charts_appear_with_their_columns_and_skip_all_na_ones() -> None:
    sample = {"phase": "baseline", "sample_num": 1, "source": "prometheus", "window_end": T0 + 60,
              "p95_latency": 0.08, "cache_hit_rate": 0.9, "rss_mb": 200.0, "cpu_percent": None}
    names = [c.name for c in build_charts(_run(120, [sample]))]
    assert names == ["latency", "rate", "errors", "cache", "memory"]
    cache = next(c for c in build_charts(_run(120, [sample])) if c.name == "cache")
    text = json.dumps(cache.spec)
    assert '"cache_hit_rate"' not in text and '"hit rate": 0.9' in text  # legend labels, not column names


def test_rate_chart_has_no_false_dip_in_a_phase_short_last_bucket() -> None:
    run = _run(7205, [])  # 9 s buckets: the last one covers 5 s
    rate = next(c for c in build_charts(run) if c.name == "rate")
    achieved = [v["achieved (client)"] for layer in rate.spec["layer"]
                for v in layer.get("data", {}).get("values", []) if "achieved (client)" in v]
    assert len(achieved) == 801 and set(achieved) == {80.0}
