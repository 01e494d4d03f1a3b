"""The metasheet profile against the real service: the three live captures of
shared/fixtures/metasheet2-live (no hand-made exposition), the families the service does not
export, and the metasheet-2025 profile for the old outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from phase5site.metrics.counters import window_increase
from phase5site.metrics.exposition import Scrape, parse_exposition
from phase5site.metrics.profile import NOT_EXPORTED, get_profile, required_families
from phase5site.metrics.scrape_window import scrape_window_columns

LIVE = Path("/work/shared/fixtures/metasheet2-live")
LEGACY = Path("/work/shared/fixtures/metasheet2")
GONE = ("metasheet_http_adapter_ops_total", "metasheet_message_bus_rpc_attempts_total",
        "metasheet_cache_get_attempts_total")
GONE_COLUMNS = ("http_adapter_ops", "message_bus_rpc_attempts", "cache_get_attempts",
                "fb_http_ratio", "fb_message_ratio", "fb_cache_ratio")


def capture(number: int) -> Scrape:
    return parse_exposition((LIVE / f"exposition-{number}.txt").read_text())


def window(start: int, end: int, profile: str = "metasheet") -> tuple[dict, dict]:
    measured = scrape_window_columns(get_profile(profile), capture(start), capture(end),
                                     window_s=20.0 * (end - start))
    return {column: m.value for column, m in measured.items()}, {c: m.reason for c, m in measured.items()}


# The fixture README's "What moved between the captures": per 20 s window.
PER_WINDOW = {
    "server_requests": 150, "server_ok": 140, "server_4xx": 10, "server_5xx": 0,
    "cache_hits_raw": 630, "cache_misses_raw": 316, "raw_fallback_total": 4,
    "effective_fallback_total": 3, "snapshot_create_success": 4, "snapshot_create_failure": 0,
    "snapshot_restore_success": 2, "snapshot_restore_failure": 0,
    "plugin_reload_success": 0, "plugin_reload_failure": 0,
}


@pytest.mark.parametrize(("start", "end"), [(1, 2), (2, 3), (1, 3)])
def test_window_increases_are_the_readmes(start: int, end: int) -> None:
    values, reasons = window(start, end)
    windows = end - start
    for column, per_window in PER_WINDOW.items():
        assert values[column] == per_window * windows, (column, values[column], reasons.get(column))
    latency = dict(tuple(pair) for pair in json.loads(values["latency_buckets"]))
    assert latency["+Inf"] == 150 * windows  # http_server_requests_seconds_count, all routes
    snapshot = dict(tuple(pair) for pair in json.loads(values["snapshot_buckets"]))
    assert snapshot["+Inf"] == snapshot[0.1] == 6 * windows  # every operation under 0.1 s
    jwt = window_increase(capture(start), capture(end), "jwt_auth_fail_total", ())
    assert jwt.value == 30 * windows  # the gate's 401s: in no HTTP family
    assert values["error_rate_4xx"] == pytest.approx(10 / 150)
    assert values["cache_hit_rate"] == pytest.approx(630 / 946)
    assert values["plugin_reload_success_rate"] is None
    assert reasons["plugin_reload_success_rate"] == "denominator zero (no plugin reloads in window)"


@pytest.mark.parametrize(("start", "end", "cpu_s", "rss_mb"), [(1, 2, 2.9, 382.6), (2, 3, 2.1, 400.5), (1, 3, 5.0, 400.5)])
def test_cpu_and_memory_are_the_readmes(start: int, end: int, cpu_s: float, rss_mb: float) -> None:
    values, _ = window(start, end)
    window_s = 20.0 * (end - start)
    assert values["cpu_percent"] * window_s / 100 == pytest.approx(cpu_s, abs=0.05)
    assert values["rss_mb"] * 2**20 / 1e6 == pytest.approx(rss_mb, abs=0.05)  # the README's MB are 10^6


def test_families_the_service_does_not_export_are_na_with_that_reason() -> None:
    for number in (1, 2, 3):
        text = (LIVE / f"exposition-{number}.txt").read_text()
        assert not any(family in text for family in GONE)
    values, reasons = window(1, 2)
    for column in GONE_COLUMNS:
        assert values[column] is None
        assert reasons[column].startswith(NOT_EXPORTED), (column, reasons[column])
        assert "absent" not in reasons[column]
    assert set(GONE).isdisjoint(required_families("metasheet"))


def test_absent_is_still_absent_not_not_exported() -> None:
    # A family the service does export, missing from a page: "absent", a fact of the window.
    cut = (LIVE / "exposition-2.txt").read_text().replace("cache_hits_total", "x_cache_hits_total")
    measured = scrape_window_columns(get_profile("metasheet"), capture(1), parse_exposition(cut), window_s=20)
    assert measured["cache_hits_raw"].value is None
    assert "absent" in (measured["cache_hits_raw"].reason or "")
    assert not (measured["cache_hits_raw"].reason or "").startswith(NOT_EXPORTED)


def test_every_live_family_of_the_profile_matches_its_description() -> None:
    page = capture(3)
    profile = get_profile("metasheet")
    for family in profile.families.values():
        if not family.exported:
            assert not page.has_family(family.name), family.name
            continue
        assert page.declared.get(family.name) == family.type, family.name
        labels = set()
        bounds = set()
        for sample_name in (family.name, f"{family.name}_bucket", f"{family.name}_count"):
            for key in page.series(sample_name, ()):
                labelled = dict(key)
                bounds.add(labelled.pop("le", None))
                labelled.pop("quantile", None)
                labels |= set(labelled)
        if labels:  # the plugin-reload pair has no samples on the real page
            assert labels == set(family.labels), (family.name, labels)
        if family.type == "histogram" and bounds - {None}:
            assert sorted(float(b) for b in bounds - {None}) == [*family.buckets, math.inf], family.name


def test_the_2025_profile_reads_the_three_families_of_the_old_outputs() -> None:
    pages = sorted(LEGACY.glob("phase5-*/raw-metrics.txt"))
    with_gone = [p for p in pages if "# TYPE metasheet_http_adapter_ops_total counter" in p.read_text()]
    assert len(with_gone) >= 2
    first, second = (parse_exposition(p.read_text()) for p in with_gone[:2])
    old = scrape_window_columns(get_profile("metasheet-2025"), first, second, window_s=60)
    new = scrape_window_columns(get_profile("metasheet"), first, second, window_s=60)
    for column in ("http_adapter_ops", "message_bus_rpc_attempts", "cache_get_attempts"):
        assert old[column].value == 0.0, (column, old[column])  # declared, no samples: 0
        assert new[column].value is None and new[column].reason.startswith(NOT_EXPORTED)
    assert set(GONE) <= set(required_families("metasheet-2025"))


def test_a_2025_import_keeps_its_values_under_the_2025_profile(tmp_path: Path) -> None:
    from phase5site.store.legacy import import_legacy_run
    from phase5site.store.reader import RunReader

    source = LEGACY / "phase5-20251124-085111"
    result = import_legacy_run(source / "metrics.csv", source / "metadata.json", tmp_path)
    with RunReader(result.run_dir) as reader:
        run = reader.run()
        samples = reader.samples()
    environment = run["environment"] if isinstance(run["environment"], dict) else json.loads(run["environment"])
    assert environment["metrics_profile"] == "metasheet-2025"
    assert get_profile(environment["metrics_profile"]).moved_by("http_adapter_ops")
    header = (source / "metrics.csv").read_text().splitlines()[0].split(",")
    first_row = (source / "metrics.csv").read_text().splitlines()[1].split(",")
    stored = samples[0]["http_adapter_ops"]
    written = first_row[header.index("http_adapter_ops")]
    assert written not in ("", "NA") and stored == float(written)


def test_moved_by_names_the_routes_of_the_readme() -> None:
    profile = get_profile("metasheet")
    assert "/api/cache-test/warm" in (profile.moved_by("cache_hit_rate") or "")
    assert "FEATURE_CACHE=true" in (profile.moved_by("cache_hits_raw") or "")
    assert (profile.moved_by("plugin_reload_success") or "").startswith("no code path moves it")
    assert "/internal/test/fallback" in (profile.moved_by("effective_fallback") or "")
    assert "X-Safety-Token" in (profile.moved_by("snapshot_success_rate") or "")
    assert "does not exist in the current service" in (profile.moved_by("http_adapter_ops") or "")
    assert profile.moved_by("no_such_column") is None
    assert "2025" in (get_profile("metasheet-2025").moved_by("http_adapter_ops") or "")


def test_timed_paths_are_the_readmes() -> None:
    profile = get_profile("metasheet")
    timed = ["/health", "/api/health", "/api/v2/hello", "/api/v2/rpc-test", "/api/plugins",
             "/internal/metrics", "/api/attendance/records?from=1", "/api/integration/x",
             "/api/after-sales/tickets"]
    untimed = ["/api/multitable/sheets", "/api/auth/me", "/api/snapshots", "/api/admin/plugins",
               "/api/cache-test/warm", "/internal/test/fallback", "/metrics/prom", "/no-such-page",
               "/api/plugins/extra", "/api/attendance"]
    assert all(profile.timed_path(path) for path in timed)
    assert not any(profile.timed_path(path) for path in untimed)
    # The live capture's timed routes are all timed paths (the route label is the path here).
    page = capture(3)
    routes = {dict(key)["route"] for key in page.series("http_server_requests_seconds_count", ())}
    assert routes and all(profile.timed_path(route) for route in routes)
