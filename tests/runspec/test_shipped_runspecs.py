"""The three shipped run specs validate and say what the issue asks of them."""

from __future__ import annotations

from pathlib import Path

from phase5site.runspec import load_spec

RUNSPECS = Path(__file__).parents[2] / "runspecs"
ENV = {
    "LOAD_BASE_URL": "https://metasheet.example.internal",
    "PROD_JWT": "eyJgenerated.test.token",
    "METRICS_URL": "http://prometheus.example.internal:9090",
}


def test_day1() -> None:
    spec = load_spec(RUNSPECS / "day1.yaml", ENV).spec
    warmup, baseline = spec.phases
    assert (warmup.name, warmup.rate, warmup.concurrency, warmup.planned_duration_s, warmup.observe) == (
        "warmup", 20, 5, 600, False)
    assert (baseline.rate, baseline.concurrency, baseline.samples, baseline.interval) == (80, 20, 12, 600)
    assert spec.metrics.source == "prometheus"
    assert spec.metrics.selector == '{job="metasheet-api"}'
    assert spec.slo.latency_p95_ms == 150 and spec.slo.latency_p99_ms == 250


def test_day2() -> None:
    spec = load_spec(RUNSPECS / "day2.yaml", ENV).spec
    names = [phase.name for phase in spec.enabled_phases()]
    assert names == ["warmup", "extended"]
    extended = spec.phases[1]
    assert (extended.samples, extended.interval, extended.rate, extended.concurrency) == (4, 900, 80, 20)
    fallback = spec.phases[2]
    assert fallback.enabled is False and (fallback.samples, fallback.interval) == (2, 900)
    assert spec.effective_flags(fallback).COUNT_CACHE_MISS_AS_FALLBACK is True
    assert spec.effective_flags(extended).COUNT_CACHE_MISS_AS_FALLBACK is False


def test_demo_needs_no_environment() -> None:
    spec = load_spec(RUNSPECS / "demo.yaml", {}).spec
    assert spec.target.embedded is not None
    total = sum(phase.planned_duration_s for phase in spec.enabled_phases())
    assert 30 <= total <= 90  # "the whole day in about a minute"
    baseline = spec.phases[1]
    assert baseline.samples == 12
