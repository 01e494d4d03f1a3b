"""Per-request auth, timed and synthetic (issue 12): what a realistic mix needs to say."""

from __future__ import annotations

from phase5site.engine.mix import prepare
from phase5site.runspec import parse_spec_text

SPEC = """
version: 1
name: mix
target:
  base_url: http://127.0.0.1:9
  allow_hosts: [127.0.0.1]
  auth: {bearer: "${JWT}"}
  requests:
    - {name: records, path: /api/attendance/records, weight: 4}
    - {name: no_token, path: /api/attendance/records, auth: none, timed: false}
    - {name: other_user, path: /api/auth/me, auth: none, headers: {Authorization: "Bearer ${JWT2}"},
       secret_headers: [Authorization]}
    - {name: warm, method: POST, path: "/api/cache-test/warm?count=2", auth: none, synthetic: true}
    - {name: fallback, method: POST, path: /internal/test/fallback, json: {mode: http_error}, synthetic: true}
phases: [{name: a, rate: 1, concurrency: 1, duration: 1s}]
"""
ENV = {"JWT": "test-token-0123456789", "JWT2": "other-token-9876543210"}


def test_fields_parse_with_their_defaults() -> None:
    requests = {r.name: r for r in parse_spec_text(SPEC, "mix.yaml", ENV).spec.target.requests}
    assert (requests["records"].auth, requests["records"].timed, requests["records"].synthetic) == ("bearer", None, False)
    assert (requests["no_token"].auth, requests["no_token"].timed) == ("none", False)
    assert requests["warm"].synthetic and requests["fallback"].json_body == {"mode": "http_error"}


def test_auth_none_sends_no_bearer_and_a_request_header_replaces_it() -> None:
    loaded = parse_spec_text(SPEC, "mix.yaml", ENV)
    prepared = {p.name: dict(p.headers) for p in prepare(loaded.spec.target.requests, base_url="http://x",
                                                          bearer=ENV["JWT"])}
    assert prepared["records"]["Authorization"] == f"Bearer {ENV['JWT']}"
    assert "Authorization" not in prepared["no_token"] and "Authorization" not in prepared["warm"]
    assert prepared["other_user"]["Authorization"] == f"Bearer {ENV['JWT2']}"
    assert prepared["fallback"]["Content-Type"] == "application/json"
    assert "***" in str(loaded.redacted()["target"]["requests"][2]["headers"])
