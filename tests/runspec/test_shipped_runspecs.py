"""The three shipped run specs validate and say what the issue asks of them."""

from __future__ import annotations

from pathlib import Path

from phase5site.runspec import load_spec

RUNSPECS = Path(__file__).parents[2] / "runspecs"
ENV = {
    "LOAD_BASE_URL": "https://metasheet.example.internal",
    "PROD_JWT": "eyJgenerated.test.token",
    "PROD_JWT_2": "eyJgenerated.second.user",
    "PROD_ADMIN_JWT": "eyJgenerated.admin.user",
    "SNAPSHOT_VIEW_ID": "0b6c1a52-5c1e-4d7e-9a51-3f4f1c7d2e10",
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


PRODUCTION_SHARES = {  # the live-service notes' recommended mix, in % of requests
    "attendance_records": 20, "attendance_leave_types": 15, "multitable_sheets": 15, "after_sales_health": 4,
    "after_sales_manifest": 4, "plugins": 8, "auth_me": 5, "snapshots_list": 5, "health": 5, "hello": 3,
    "snapshot_create": 0.25, "no_token": 4, "unknown_path": 4,
}
NOT_MOVABLE = ("cache_hit_rate", "effective_fallback", "plugin_reload_success")


def test_day1_and_day2_carry_the_production_like_mix() -> None:
    env = {**ENV, "PROD_JWT_2": "eyJgenerated.second", "PROD_ADMIN_JWT": "eyJgenerated.admin",
           "SNAPSHOT_VIEW_ID": "0b6c1a52-5c1e-4d7e-9a51-3f4f1c7d2e10"}
    for name in ("day1.yaml", "day2.yaml"):
        loaded = load_spec(RUNSPECS / name, env)
        requests = {r.name: r for r in loaded.spec.target.requests}
        assert {n: r.weight for n, r in requests.items()} == PRODUCTION_SHARES, name
        assert not any(r.synthetic for r in requests.values()), "production traffic only"
        assert (requests["no_token"].auth, requests["no_token"].timed, requests["no_token"].expect_status) == (
            "none", False, [401])
        assert requests["unknown_path"].expect_status == [404]
        create = requests["snapshot_create"]
        assert (create.method, create.path, create.json_body["view_id"]) == (
            "POST", "/api/snapshots", env["SNAPSHOT_VIEW_ID"])
        assert create.headers["Authorization"] == f"Bearer {env['PROD_ADMIN_JWT']}" and create.auth == "none"
        assert requests["multitable_sheets"].headers["Authorization"] == f"Bearer {env['PROD_JWT_2']}"
        assert env["PROD_ADMIN_JWT"] not in str(loaded.redacted())
        for category in NOT_MOVABLE:
            policy = loaded.spec.slo.policy(category)
            assert policy.required is False and len(policy.justification or "") > 80, (name, category)


def test_metasheet_dev_is_synthetic_and_reaches_the_diagnostics_routes() -> None:
    env = {"DEV_JWT": "eyJgenerated.dev", "DEV_ADMIN_JWT": "eyJgenerated.devadmin",
           "DEV_SNAPSHOT_VIEW_ID": "0b6c1a52-5c1e-4d7e-9a51-3f4f1c7d2e10",
           "METRICS_SCRAPE_TOKEN": "generated-metrics-token-0001"}
    spec = load_spec(RUNSPECS / "metasheet-dev.yaml", env).spec
    assert spec.metrics.auth.headers() == {"X-Metrics-Token": "generated-metrics-token-0001"}
    synthetic = {r.name: r for r in spec.target.requests if r.synthetic}
    assert set(synthetic) == {"cache_warm", "cache_simulate", "fallback_http_error", "fallback_http_timeout",
                              "fallback_message_error", "fallback_cache_miss"}
    assert synthetic["cache_warm"].path == "/api/cache-test/warm?count=2" and synthetic["cache_warm"].method == "POST"
    assert synthetic["fallback_http_error"].json_body == {"mode": "http_error"}
    assert spec.target.base_url == "http://127.0.0.1:7778" and spec.metrics.source == "scrape"
    assert spec.slo.policy("cache_hit_rate").required is None, "the dev run must exercise the cache"


def test_metasheet_dev_cache_mix_passes_the_hit_rate_on_its_own_draw() -> None:
    """The dev run's cache hit rate is the mix's arithmetic: a warm request makes 20 hits,
    a simulate request 215 hits and 158 misses (the real service, fixture README and a
    measured run). The draw is a pure function of the spec's name and the request number
    (engine.mix), so the rate this spec will read is known before it runs: with 8 : 0.3 a
    short real run read 76.8 % (9 simulate requests drawn where 6 were expected)."""
    from phase5site.engine.mix import RequestMix, mix_seed, prepare

    env = {"DEV_JWT": "eyJgenerated.dev", "DEV_ADMIN_JWT": "eyJgenerated.devadmin",
           "DEV_SNAPSHOT_VIEW_ID": "0b6c1a52-5c1e-4d7e-9a51-3f4f1c7d2e10",
           "METRICS_SCRAPE_TOKEN": "generated-metrics-token-0001"}
    spec = load_spec(RUNSPECS / "metasheet-dev.yaml", env).spec
    baseline = next(p for p in spec.phases if p.name == "baseline")
    per_sample = round(baseline.rate * baseline.interval)
    requests = spec.target.requests
    mix = RequestMix(prepare(requests, base_url="http://x", bearer=None), [r.weight for r in requests],
                     seed=mix_seed(spec.name, "baseline"))
    yields = {"cache_warm": (20, 0), "cache_simulate": (215, 158)}
    shares, hits, lookups = [], 0, 0
    for sample in range(baseline.samples):
        h = m = 0
        for seq in range(sample * per_sample, (sample + 1) * per_sample):
            got, missed = yields.get(mix.entry(seq).name, (0, 0))
            h, m = h + got, m + missed
        shares.append(h / (h + m))
        hits, lookups = hits + h, lookups + h + m
    assert hits / lookups >= 0.85, hits / lookups
    assert min(shares) >= 0.80, shares
