"""Routes, status codes, bearer and admin checks of the in-process ASGI app."""

from __future__ import annotations

import httpx
import pytest

from phase5site.runspec.models import EmbeddedSpec
from phase5site.simulator.app import ADMIN_TOKEN_HEADER, match_route

from .helpers import fake_token, families, get_many, make_app, with_client

SERVICE_PATHS = ["/health", "/api/v2/hello", "/api/plugins", "/api/sheets/7"]


def test_every_service_route_answers_200_and_unknown_paths_404() -> None:
    app = make_app()
    responses = with_client(app, get_many([*SERVICE_PATHS, "/nope", "/api/sheets/x", "/api/sheets/999"]))
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 404, 404, 404]
    assert responses[0].json() == {"status": "ok"}
    assert responses[1].json()["message"].startswith("Hello")
    assert {p["name"] for p in responses[2].json()["plugins"]} >= {"example-plugin"}
    assert responses[3].json()["id"] == 7


def test_post_rows_stores_the_row_and_invalidates_the_cached_sheet() -> None:
    app = make_app()

    async def body(client: httpx.AsyncClient) -> tuple[httpx.Response, ...]:
        before = await client.get("/api/sheets/3")
        created = await client.post("/api/sheets/3/rows", json={"values": [1, 2]})
        after = await client.get("/api/sheets/3")
        bad = await client.post("/api/sheets/3/rows", content=b"{not json")
        missing = await client.post("/api/sheets/999/rows", json={})
        wrong_method = await client.get("/api/sheets/3/rows")
        return before, created, after, bad, missing, wrong_method

    before, created, after, bad, missing, wrong_method = with_client(app, body)
    assert created.status_code == 201
    assert created.json()["row_id"] == before.json()["row_count"] + 1
    assert after.json()["row_count"] == before.json()["row_count"] + 1
    assert after.json()["cached"] is False
    assert after.json()["rows"][-1]["values"] == {"values": [1, 2]}
    assert (bad.status_code, missing.status_code) == (400, 404)
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"


def test_bearer_is_required_on_every_service_route_but_not_on_metrics() -> None:
    token = fake_token()
    app = make_app(bearer=token)
    good = {"Authorization": f"Bearer {token}"}
    wrong = {"Authorization": f"Bearer {fake_token()}"}
    missing = with_client(app, get_many(SERVICE_PATHS))
    wrong_token = with_client(app, get_many(SERVICE_PATHS, wrong))
    right = with_client(app, get_many(SERVICE_PATHS, good))
    metrics = with_client(app, get_many(["/metrics/prom", "/metrics"]))
    assert {r.status_code for r in missing} == {401}
    assert {r.status_code for r in wrong_token} == {401}
    assert missing[0].headers["www-authenticate"].startswith("Bearer")
    assert {r.status_code for r in right} == {200}
    assert [r.status_code for r in metrics] == [200, 200]
    assert families(metrics[0].text).keys() == families(metrics[1].text).keys()
    assert metrics[0].headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"


def test_admin_pages_need_the_admin_token_and_are_absent_without_one() -> None:
    admin = fake_token()
    app = make_app(admin_token=admin)
    no_token = with_client(app, get_many(["/__phase5/admin/state"]))[0]
    wrong = with_client(app, get_many(["/__phase5/admin/state"], {ADMIN_TOKEN_HEADER: fake_token()}))[0]
    right = with_client(app, get_many(["/__phase5/admin/state"], {ADMIN_TOKEN_HEADER: admin}))[0]
    assert (no_token.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert right.json() == {"requests_served": 0, "flags": {"COUNT_CACHE_MISS_AS_FALLBACK": False},
                            "faults": [], "memory_ballast_mb": 0}
    disabled = with_client(make_app(), get_many(["/__phase5/admin/state"], {ADMIN_TOKEN_HEADER: admin}))
    assert disabled[0].status_code == 404


def test_admin_put_faults_validates_and_replaces_the_schedule() -> None:
    admin = fake_token()
    app = make_app(admin_token=admin)
    headers = {ADMIN_TOKEN_HEADER: admin}

    async def body(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        bad = await client.put("/__phase5/admin/faults", headers=headers,
                               json={"faults": [{"kind": "meteor", "duration": 1}]})
        good = await client.put("/__phase5/admin/faults", headers=headers,
                                json={"faults": [{"kind": "outage", "at": 5, "duration": 2}]})
        return bad, good

    bad, good = with_client(app, body)
    assert bad.status_code == 422 and "meteor" in bad.text
    assert good.status_code == 200
    [fault] = good.json()["faults"]
    assert (fault["kind"], fault["starts_in_s"], fault["ends_in_s"], fault["active"]) == ("outage", 5.0, 7.0, False)


def test_metrics_and_admin_requests_are_not_counted_as_service_requests() -> None:
    admin = fake_token()
    app = make_app(admin_token=admin)
    with_client(app, get_many(["/metrics/prom", "/metrics", "/health", "/nope"]))
    with_client(app, get_many(["/__phase5/admin/state"], {ADMIN_TOKEN_HEADER: admin}))
    assert app.requests_served == 2


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/health", ("/health", None)),
        ("/api/sheets/12", ("/api/sheets/:id", 12)),
        ("/api/sheets/12/rows", ("/api/sheets/:id/rows", 12)),
        ("/api/sheets/", None),
        ("/api/sheets/1/rows/2", None),
        ("/healthz", None),
    ],
)
def test_match_route(path: str, expected: tuple[str, int | None] | None) -> None:
    assert match_route(path) == expected


def test_a_plugin_reload_refreshes_the_cached_listing() -> None:
    app = make_app(EmbeddedSpec(cache_hit_ratio=1.0, seed=8))

    async def body(client: httpx.AsyncClient) -> tuple[dict, dict]:
        while not (await client.get("/api/plugins")).json()["cached"]:
            pass  # until the upstream answered once and the listing is cached
        while not await app.simulator.reload_plugin():
            pass
        return (await client.get("/api/plugins")).json(), app.simulator.plugins

    listing, plugins = with_client(app, body)
    assert listing["cached"] is True
    assert listing["plugins"] == list(plugins.values())
    assert any(plugin["version"] == 2 for plugin in listing["plugins"])
