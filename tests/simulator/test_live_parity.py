"""The simulator's page against the real service's: after a short real load over real
sockets, /metrics/prom and a live capture (shared/fixtures/metasheet2-live) have the same
families, types, label names and bucket bounds, and the real request mix moves the same
families the same way (gate 401s, 404s and core routers not counted)."""

from __future__ import annotations

import math
from pathlib import Path

import httpx

from phase5site.metrics.exposition import Scrape, parse_exposition
from phase5site.metrics.profile import get_profile
from phase5site.runspec.models import EmbeddedSpec
from phase5site.simulator import PROFILE_FAMILIES, start_target

from .helpers import fake_token

LIVE = Path("/work/shared/fixtures/metasheet2-live/exposition-3.txt")
GONE = ("metasheet_http_adapter_ops_total", "metasheet_message_bus_rpc_attempts_total",
        "metasheet_cache_get_attempts_total")
VIEW = "0b7e4a4e-1111-4222-8333-444455556666"


def shape(page: Scrape, family: str, kind: str) -> tuple[str | None, frozenset[str], tuple[float, ...]]:
    """(type, label names, bucket bounds) of a family as a page shows it."""
    labels: set[str] = set()
    bounds: set[float] = set()
    names = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count")}.get(kind, ("",))
    for suffix in names:
        for key in page.series(family + suffix, ()):
            labelled = dict(key)
            if "le" in labelled:
                bounds.add(float(labelled.pop("le")))
            labelled.pop("quantile", None)
            labels |= set(labelled)
    return page.declared.get(family), frozenset(labels), tuple(sorted(bounds))


def real_mix(base_url: str, token: str) -> dict[str, int]:
    """One pass of the fixture README's request mix (a bounded number of requests)."""
    auth = {"Authorization": f"Bearer {token}"}
    statuses: dict[str, int] = {}
    with httpx.Client(base_url=base_url, timeout=5) as client:
        for path in ("/health", "/api/v2/hello", "/api/plugins", "/api/v2/rpc-test"):
            statuses[path] = client.get(path).status_code
        for path in ("/api/after-sales/health", "/api/attendance/leave-types", "/api/attendance/records",
                     "/api/after-sales/tickets", "/api/multitable/sheets", "/api/auth/me",
                     f"/api/snapshots?view_id={VIEW}", "/api/admin/plugins", "/api/no-such-route"):
            statuses[f"jwt {path}"] = client.get(path, headers=auth).status_code
        statuses["gate"] = client.get("/api/after-sales/tickets").status_code
        statuses["404"] = client.get("/no-such-page").status_code
        statuses["warm"] = client.post("/api/cache-test/warm?count=2").status_code
        statuses["simulate"] = client.post("/api/cache-test/simulate").status_code
        created = client.post("/api/snapshots", headers=auth, json={"view_id": VIEW, "name": "parity"})
        statuses["create"] = created.status_code
        restore = f"/api/snapshots/{created.json()['data']['id']}/restore"
        first = client.post(restore, headers=auth)
        statuses["restore 1"] = first.status_code
        safety = first.json()["confirmation"]["token"]
        statuses["confirm"] = client.post("/api/admin/safety/confirm", headers=auth, json={
            "token": safety, "typedConfirmation": "restore_snapshot", "acknowledged": True}).status_code
        statuses["restore 2"] = client.post(restore, headers={**auth, "X-Safety-Token": safety}).status_code
        for mode in ("http_error", "cache_miss"):
            statuses[f"fallback {mode}"] = client.post("/internal/test/fallback", json={"mode": mode}).status_code
    return statuses


def test_simulator_page_and_live_capture_have_the_same_families() -> None:
    token, metrics_token = fake_token(), fake_token()
    with start_target(EmbeddedSpec(latency_scale=0.2), bearer=token, metrics_token=metrics_token) as target:
        headers = {"X-Metrics-Token": metrics_token}
        before = parse_exposition(httpx.get(target.metrics_url, headers=headers, timeout=5).text)
        statuses = real_mix(target.base_url, token)
        text = httpx.get(target.metrics_url, headers=headers, timeout=5).text
    assert statuses == {
        "/health": 200, "/api/v2/hello": 200, "/api/plugins": 200, "/api/v2/rpc-test": 200,
        "jwt /api/after-sales/health": 200, "jwt /api/attendance/leave-types": 200,
        "jwt /api/attendance/records": 200, "jwt /api/after-sales/tickets": 401,
        "jwt /api/multitable/sheets": 200, "jwt /api/auth/me": 200,
        f"jwt /api/snapshots?view_id={VIEW}": 200, "jwt /api/admin/plugins": 200,
        "jwt /api/no-such-route": 404, "gate": 401, "404": 404, "warm": 200, "simulate": 200,
        "create": 201, "restore 1": 403, "confirm": 200, "restore 2": 200,
        "fallback http_error": 500, "fallback cache_miss": 200,
    }
    simulated, live = parse_exposition(text), parse_exposition(LIVE.read_text())
    profile = get_profile("metasheet")
    for family in GONE:
        assert not simulated.has_family(family) and not live.has_family(family)
    # Every family the simulator exports is on the real page, with the same shape.
    assert set(simulated.declared) <= set(live.declared), set(simulated.declared) - set(live.declared)
    for family, kind in simulated.declared.items():
        ours, theirs = shape(simulated, family, kind), shape(live, family, kind)
        assert ours[0] == theirs[0], family
        if ours[1] and theirs[1]:  # both have samples (the plugin-reload pair has none on either)
            assert ours[1:] == theirs[1:], (family, ours, theirs)
    # ... and the profile's exported families are exactly the simulator's profile table.
    exported = {name for name, f in profile.families.items() if f.exported}
    assert exported == set(PROFILE_FAMILIES)
    for name, description in profile.families.items():
        if description.exported:
            kind, labels = PROFILE_FAMILIES[name]
            assert (description.type, description.labels) == (kind, labels), name
    http = shape(simulated, "http_server_requests_seconds", "histogram")
    assert http[2] == (*profile.families["http_server_requests_seconds"].buckets, math.inf)
    # What moved: the 11 timed requests, nothing of the gate, the 404s or the core routers.
    def moved(name: str, **labels: str) -> float:
        return sum(v for k, v in simulated.series(name, ()).items() if labels.items() <= dict(k).items()) - sum(
            v for k, v in before.series(name, ()).items() if labels.items() <= dict(k).items())

    assert moved("http_requests_total") == 8
    assert moved("http_requests_total", status="401") == 1  # the plugin's own 401
    assert moved("http_server_requests_seconds_count") == moved("http_server_requests_seconds_summary_count") == 8
    assert moved("jwt_auth_fail_total", reason="missing_token") == 1
    assert moved("cache_hits_total") + moved("cache_miss_total") == 20 + 373
    assert moved("metasheet_fallback_total") == 2 and moved("metasheet_fallback_effective_total") == 1
    assert moved("metasheet_snapshot_create_total", result="success") == 1
    assert moved("metasheet_snapshot_restore_total", result="success") == 1
    assert moved("metasheet_snapshot_operation_duration_seconds_count") == 2
    assert not simulated.series("metasheet_plugin_reload_total", ())
