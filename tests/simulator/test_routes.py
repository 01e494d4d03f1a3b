"""Routes, status codes, bearer and admin checks of the in-process ASGI app."""

from __future__ import annotations

import httpx
import pytest

from phase5site.simulator.app import ADMIN_TOKEN_HEADER, PLUGIN_ROUTES, TIMED_FIXED, UNTIMED_GET, timed_route

from .helpers import fake_token, families, get_many, make_app, with_client

SERVICE_PATHS = ["/health", "/api/v2/hello", "/api/plugins", "/api/attendance/leave-types"]
GATED_PATHS = ["/api/attendance/leave-types", "/api/multitable/sheets", "/api/auth/me"]


def test_every_service_route_answers_and_unknown_paths_404() -> None:
    app = make_app()
    responses = with_client(app, get_many([*SERVICE_PATHS, "/nope", "/api/no-such-route",
                                           "/api/multitable/sheets", "/api/snapshots?view_id=x"]))
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 404, 404, 200, 200]
    assert responses[6].json()["success"] is True


def test_the_gate_wants_the_bearer_except_on_its_exceptions_and_never_on_metrics() -> None:
    token = fake_token()
    app = make_app(bearer=token)
    good = {"Authorization": f"Bearer {token}"}
    wrong = {"Authorization": f"Bearer {fake_token()}"}
    missing = with_client(app, get_many(GATED_PATHS))
    wrong_token = with_client(app, get_many(GATED_PATHS, wrong))
    right = with_client(app, get_many(GATED_PATHS, good))
    open_paths = with_client(app, get_many(["/health", "/api/health", "/api/plugins", "/api/v2/hello"]))
    metrics = with_client(app, get_many(["/metrics/prom", "/metrics"]))
    assert {r.status_code for r in missing} == {401}
    assert {r.status_code for r in wrong_token} == {401}
    assert missing[0].headers["www-authenticate"].startswith("Bearer")
    assert {r.status_code for r in right} == {200}
    assert {r.status_code for r in open_paths} == {200}
    assert [r.status_code for r in metrics] == [200, 200]
    assert families(metrics[0].text).keys() == families(metrics[1].text).keys()
    assert metrics[0].headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    parsed = families(metrics[0].text)
    reasons = {s.labels["reason"]: s.value for s in parsed["jwt_auth_fail_total"].samples}
    assert reasons == {"missing_token": 3.0, "invalid_token": 3.0}


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
    ("method", "path", "expected"),
    [
        ("GET", "/health", "/health"),
        ("GET", "/api/health", "/health"),
        ("GET", "/api/attendance/records", "/api/attendance/records"),
        ("POST", "/api/attendance/records", None),
        ("GET", "/api/multitable/sheets", None),
        ("GET", "/healthz", None),
    ],
)
def test_timed_route(method: str, path: str, expected: str | None) -> None:
    assert timed_route(method, path) == expected


def test_the_simulator_times_what_the_profile_says_the_service_times() -> None:
    from phase5site.metrics.profile import get_profile

    profile = get_profile("metasheet")
    for method, path in [*TIMED_FIXED, *PLUGIN_ROUTES]:
        assert profile.timed_path(path), path
    for path in UNTIMED_GET:
        assert not profile.timed_path(path) and timed_route("GET", path) is None
