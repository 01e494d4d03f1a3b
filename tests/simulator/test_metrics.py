"""The exposition: every MetaSheet profile family with its type, labels and buckets, and
values that match what the service did."""

from __future__ import annotations

import asyncio
import math
import os
import random
import shutil
import subprocess

import pytest

from phase5site.errors import TargetError
from phase5site.runspec.models import EmbeddedSpec
from phase5site.simulator import PROFILE_FAMILIES
from phase5site.simulator.metrics import (
    EFFECTIVE_FALLBACK_REASONS,
    FALLBACK_REASONS,
    HTTP_BUCKETS_S,
    MetasheetMetrics,
    check_disabled_families,
)
from phase5site.simulator.simulator import ROUTE_MEDIAN_MS, ROUTE_SIGMA, lognormal_s

from .helpers import families, get_many, make_app, metrics_of, total, with_client

DESIGN_FAMILIES = {
    "http_requests_total", "http_server_requests_seconds", "process_resident_memory_bytes",
    "process_cpu_seconds_total", "metasheet_fallback_total", "metasheet_fallback_effective_total",
    "metasheet_http_adapter_ops_total", "metasheet_message_bus_rpc_attempts_total",
    "metasheet_cache_get_attempts_total", "cache_hits_total", "cache_miss_total",
    "metasheet_plugin_reload_total", "metasheet_plugin_reload_duration_seconds",
    "metasheet_snapshot_create_total", "metasheet_snapshot_restore_total",
    "metasheet_snapshot_operation_duration_seconds",
}


def _exercised_app():
    """An app after a few requests of each route and one of each background operation."""
    app = make_app()
    with_client(app, get_many(["/health", "/api/v2/hello", "/api/plugins", "/api/sheets/1"] * 3))

    async def background() -> None:
        await app.simulator.reload_plugin()
        await app.simulator.snapshot_create()
        await app.simulator.snapshot_restore()

    asyncio.run(background())
    return app


def test_the_profile_table_is_exactly_designs_list() -> None:
    assert set(PROFILE_FAMILIES) == DESIGN_FAMILIES


def test_every_profile_family_is_exposed_with_its_type_and_labels() -> None:
    parsed = metrics_of(_exercised_app())
    for name, (kind, labels) in PROFILE_FAMILIES.items():
        assert name in parsed, name
        family = parsed[name]
        assert family.type == kind, name
        assert family.samples, f"{name} has no samples"
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == set(labels), (name, sample)


def test_histogram_buckets_are_the_profile_buckets() -> None:
    parsed = metrics_of(_exercised_app())
    http = parsed["http_server_requests_seconds"]
    bounds = sorted({float(s.labels["le"]) for s in http.samples if s.name.endswith("_bucket")})
    assert bounds == [*HTTP_BUCKETS_S, math.inf]
    for name in ("metasheet_plugin_reload_duration_seconds", "metasheet_snapshot_operation_duration_seconds"):
        assert any(s.name == f"{name}_bucket" and s.labels["le"] == "+Inf" for s in parsed[name].samples)


def test_no_created_samples_and_process_values_are_real() -> None:
    text = _exercised_app().metrics.exposition().decode()
    assert "_created" not in text
    parsed = families(text)
    assert total(parsed, "process_resident_memory_bytes") > 10 * 2**20
    assert total(parsed, "process_cpu_seconds_total") > 0


def test_request_counter_and_histogram_count_match_the_requests_sent() -> None:
    app = make_app()
    before = metrics_of(app)
    paths = ["/health", "/api/v2/hello", "/api/plugins", "/api/sheets/5", "/missing"] * 20
    with_client(app, get_many(paths))
    after = metrics_of(app)
    sent = len(paths)
    assert total(after, "http_requests_total") - total(before, "http_requests_total") == sent
    assert total(after, "http_server_requests_seconds", "_count") == sent
    assert total(after, "http_requests_total", status="404") == 20
    assert total(after, "http_server_requests_seconds", "_count", route="/api/sheets/:id") == 20
    assert total(after, "http_server_requests_seconds", "_count", route="unmatched") == 20
    assert app.requests_served == sent


def test_cache_hit_ratio_is_close_to_the_configured_one() -> None:
    app = make_app(EmbeddedSpec(cache_hit_ratio=0.7, seed=11))
    with_client(app, get_many(["/api/plugins"] * 2000))
    parsed = metrics_of(app)
    hits, misses = total(parsed, "cache_hits_total"), total(parsed, "cache_miss_total")
    attempts = total(parsed, "metasheet_cache_get_attempts_total")
    assert hits + misses == attempts == 2000
    # 2000 Bernoulli(0.7) draws: sd 0.010, so 0.05 is five standard deviations.
    assert abs(hits / attempts - 0.7) < 0.05


def test_fallbacks_are_counted_raw_and_effective_without_cache_misses() -> None:
    app = make_app(EmbeddedSpec(cache_hit_ratio=0.5, seed=5))
    with_client(app, get_many(["/api/plugins", "/api/v2/hello"] * 1500))
    parsed = metrics_of(app)
    misses = total(parsed, "cache_miss_total")
    assert total(parsed, "metasheet_fallback_total", reason="cache_miss") == misses > 0
    upstream_failures = sum(
        total(parsed, counter, result=result)
        for counter in ("metasheet_http_adapter_ops_total", "metasheet_message_bus_rpc_attempts_total")
        for result in ("error", "timeout")
    )
    assert upstream_failures > 0  # about 1 % of 1500 RPCs + ~750 adapter calls
    assert total(parsed, "metasheet_fallback_effective_total") == upstream_failures
    assert total(parsed, "metasheet_fallback_total") == upstream_failures + misses
    assert total(parsed, "metasheet_message_bus_rpc_attempts_total") == 1500
    assert total(parsed, "metasheet_http_adapter_ops_total") == misses
    reasons = {s.labels["reason"] for s in parsed["metasheet_fallback_total"].samples}
    assert reasons == set(FALLBACK_REASONS)
    effective = {s.labels["reason"] for s in parsed["metasheet_fallback_effective_total"].samples}
    assert effective == set(EFFECTIVE_FALLBACK_REASONS)


def test_degraded_answers_match_the_fallback_counter() -> None:
    app = make_app(EmbeddedSpec(seed=2))
    responses = with_client(app, get_many(["/api/v2/hello"] * 1500))
    degraded = sum(1 for r in responses if r.json()["degraded"])
    parsed = metrics_of(app)
    assert degraded == total(parsed, "metasheet_fallback_effective_total") > 0


def test_plugin_reloads_and_snapshots_are_counted_and_timed() -> None:
    app = make_app(EmbeddedSpec(seed=3))

    async def background() -> list[object]:
        results: list[object] = [await app.simulator.snapshot_restore()]  # nothing to restore yet
        for _ in range(100):
            results.append(await app.simulator.reload_plugin())
        for _ in range(20):
            results.append(await app.simulator.snapshot_create())
            results.append(await app.simulator.snapshot_restore())
        return results

    results = asyncio.run(background())
    assert results[0] is None
    parsed = metrics_of(app)
    assert total(parsed, "metasheet_plugin_reload_total") == 100
    assert total(parsed, "metasheet_plugin_reload_duration_seconds", "_count") == 100
    failures = total(parsed, "metasheet_plugin_reload_total", result="failure")
    assert failures == results[1:101].count(False)
    assert total(parsed, "metasheet_plugin_reload_total", plugin_name="example-plugin") == 25
    assert total(parsed, "metasheet_snapshot_create_total") == 20
    assert total(parsed, "metasheet_snapshot_restore_total") == 20
    assert total(parsed, "metasheet_snapshot_operation_duration_seconds", "_count", operation="restore") == 20


@pytest.mark.parametrize("family", sorted(PROFILE_FAMILIES))
def test_disable_families_removes_exactly_that_family(family: str) -> None:
    app = make_app(EmbeddedSpec(disable_families=[family]))
    with_client(app, get_many(["/health", "/api/plugins"]))
    text = app.metrics.exposition().decode()
    parsed = families(text)
    assert family not in parsed
    assert set(PROFILE_FAMILIES) - set(parsed) == {family}
    assert f"# TYPE {family} " not in text


def test_unknown_disabled_family_is_an_error_naming_it() -> None:
    with pytest.raises(TargetError, match="http_request_total"):
        check_disabled_families(["http_request_total"])
    with pytest.raises(TargetError):
        MetasheetMetrics(["nope"])


@pytest.mark.parametrize("route", sorted(ROUTE_MEDIAN_MS))
def test_route_latency_tails_leave_room_under_the_release_criteria(route: str) -> None:
    # Server time is route work plus one upstream call at most; the drawn route work alone
    # must keep P99 far below 250 ms at latency_scale 1 so the healthy demo is GO.
    rng = random.Random(1)
    draws = sorted(lognormal_s(rng, ROUTE_MEDIAN_MS[route], ROUTE_SIGMA, 1.0) for _ in range(20000))
    assert draws[int(0.99 * len(draws))] < 0.02


@pytest.mark.prometheus
def test_promtool_accepts_the_exposition() -> None:
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    assert os.path.exists(promtool), "promtool is required (Debian package prometheus)"
    text = _exercised_app().metrics.exposition()
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                             timeout=30, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The check can fail: a family typed twice is rejected.
    broken = text.replace(b"# TYPE cache_hits_total counter",
                          b"# TYPE cache_hits_total counter\n# TYPE cache_hits_total gauge")
    rejected = subprocess.run([promtool, "check", "metrics"], input=broken, capture_output=True,
                              timeout=30, check=False)
    assert rejected.returncode != 0
