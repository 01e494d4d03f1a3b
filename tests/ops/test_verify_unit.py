"""verify_spec with an injected transport: every check, every status, no early exit."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import jsonschema
import pytest

from phase5site.ops.families import required_series
from phase5site.ops.report import CheckResult, VerifyReport, load_report_schema
from phase5site.ops.verify import _guard, parse_flag, verify_spec

from .helpers import PROMETHEUS_URL, SERVICE_URL, load, make_jwt, mock_world, spec_text

NOW_S = 1_764_000_000.0


def _env(token: str, **extra: str) -> dict[str, str]:
    return {"LOAD_BASE_URL": SERVICE_URL, "PROD_JWT": token, "METRICS_URL": PROMETHEUS_URL, **extra}


def _verify(text: str, env: dict[str, str], transport: httpx.BaseTransport, results_dir: Path) -> VerifyReport:
    return verify_spec(load(text, env), env=env, transport=transport, results_dir=results_dir, clock=lambda: NOW_S)


def _statuses(report: VerifyReport) -> dict[str, str]:
    return {check.check: check.status for check in report.checks}


EXPECTED_CHECKS = [
    "env", "token", "flag:COUNT_CACHE_MISS_AS_FALLBACK", "flag:ENABLE_PHASE5_INTERNAL",
    "flag:ENABLE_FALLBACK_TEST", "allow_hosts", "health", "auth", "metrics:prometheus",
    "families:prometheus", "scrape_interval", "families:not_exported", "results_dir", "disk_space",
    "wall_time",
]
INFORMATIVE = {"wall_time", "families:not_exported"}


def test_all_ok_against_a_healthy_world(tmp_path: Path) -> None:
    token = make_jwt()
    transport, seen = mock_world(token=token)
    report = _verify(spec_text(), _env(token), transport, tmp_path / "results")
    assert [c.check for c in report.checks] == EXPECTED_CHECKS
    assert {c.status for c in report.checks if c.check not in INFORMATIVE} == {"OK"}, report.format_text()
    assert report.get("wall_time").status == "INFO"
    not_exported = report.get("families:not_exported")
    assert not_exported.status == "INFO"
    assert set(not_exported.details["not_exported"]) == {
        "metasheet_http_adapter_ops_total", "metasheet_message_bus_rpc_attempts_total",
        "metasheet_cache_get_attempts_total"}
    assert report.get("wall_time").reason == "planned wall time 2h10m (warmup 10m, baseline 2h)"
    assert report.ok and report.exit_code == 0
    # Prometheus is another host: it must never receive the service's token
    assert all("authorization" not in r.headers for r in seen if r.url.host == "prom.test")
    assert any(r.url.params.get("query") == 'up{job="metasheet-api"}' for r in seen)


def test_wrong_token_fails_health_with_401(tmp_path: Path) -> None:
    transport, _ = mock_world(token=make_jwt())
    wrong = make_jwt()
    report = _verify(spec_text(), _env(wrong), transport, tmp_path)
    health = report.get("health")
    assert health.status == "FAIL"
    assert health.reason == f"token rejected: {SERVICE_URL}/health answered 401"
    assert health.details["status"] == 401
    assert report.exit_code == 1
    assert wrong not in report.to_json() and wrong not in report.format_text()


def test_refused_service_names_the_url(tmp_path: Path) -> None:
    token = make_jwt()
    transport, _ = mock_world(token=token, service_up=False)
    report = _verify(spec_text(), _env(token), transport, tmp_path)
    assert report.get("health").status == "FAIL"
    assert report.get("health").reason == f"cannot connect to {SERVICE_URL}/health (connection refused)"


def test_prometheus_down_fails_metrics_and_every_other_check_still_runs(tmp_path: Path) -> None:
    token = make_jwt()
    transport, _ = mock_world(token=token, prometheus_up=False)
    report = _verify(spec_text(), _env(token), transport, tmp_path)
    assert [c.check for c in report.checks] == EXPECTED_CHECKS
    statuses = _statuses(report)
    assert statuses["metrics:prometheus"] == "FAIL"
    assert report.get("metrics:prometheus").reason.startswith(f"cannot connect to {PROMETHEUS_URL}/api/v1/query")
    assert statuses["families:prometheus"] == "WARN"
    assert statuses["health"] == statuses["disk_space"] == statuses["results_dir"] == "OK"
    assert report.exit_code == 1


def test_missing_families_are_listed_with_their_na_columns(tmp_path: Path) -> None:
    token = make_jwt()
    families = [f for f in required_series("metasheet") if f not in ("cache_hits_total", "process_resident_memory_bytes")]
    transport, _ = mock_world(token=token, families=families)
    report = _verify(spec_text(), _env(token), transport, tmp_path)
    result = report.get("families:prometheus")
    assert result.status == "WARN"
    assert result.reason == (
        f"2 of {len(required_series('metasheet'))} metric families missing (cache_hits_total, "
        "process_resident_memory_bytes): their columns will be NA"
    )
    assert set(result.details["missing"]) == {"cache_hits_total", "process_resident_memory_bytes"}
    assert "rss_mb" in result.details["na_columns"] and "cache_hit_rate" in result.details["na_columns"]
    assert report.exit_code == 0  # missing families warn; they do not block a run


def test_prometheus_counts_declared_families_as_the_run_does(tmp_path: Path) -> None:
    # A fresh prom-client service: only unlabelled families have series; the rest are
    # declared. The run reads them through /api/v1/metadata as present (0 until moved).
    token = make_jwt()
    needed = required_series("metasheet")
    unlabelled = ["process_cpu_seconds_total", "process_resident_memory_bytes"]
    transport, seen = mock_world(token=token, families=list(needed), with_series=unlabelled)
    report = _verify(spec_text(), _env(token), transport, tmp_path)
    result = report.get("families:prometheus")
    assert result.status == "OK", result.reason
    assert "no series yet" in result.reason
    assert set(result.details["declared_without_series"]) == set(needed) - set(unlabelled)
    assert any(r.url.path == "/api/v1/metadata" for r in seen)
    # and a family that is not even declared is still reported missing
    transport, _ = mock_world(token=token, families=[n for n in needed if n != "cache_hits_total"],
                              with_series=unlabelled)
    result = _verify(spec_text(), _env(token), transport, tmp_path).get("families:prometheus")
    assert result.status == "WARN"
    assert result.reason.startswith(f"1 of {len(needed)} metric families missing (cache_hits_total)")


@pytest.mark.parametrize(
    ("flags", "env_extra", "check", "status", "where"),
    [
        ("{COUNT_CACHE_MISS_AS_FALLBACK: true}", {}, "flag:COUNT_CACHE_MISS_AS_FALLBACK", "WARN", "spec flags"),
        ("{}", {"ENABLE_PHASE5_INTERNAL": "true"}, "flag:ENABLE_PHASE5_INTERNAL", "FAIL", "environment"),
        ("{ENABLE_FALLBACK_TEST: true}", {}, "flag:ENABLE_FALLBACK_TEST", "FAIL", "spec flags"),
        ("{}", {"ENABLE_FALLBACK_TEST": "1"}, "flag:ENABLE_FALLBACK_TEST", "FAIL", "environment"),
    ],
)
def test_flags_warn_or_fail(tmp_path: Path, flags: str, env_extra: dict[str, str], check: str, status: str, where: str) -> None:
    token = make_jwt()
    transport, _ = mock_world(token=token)
    report = _verify(spec_text(flags=flags), _env(token, **env_extra), transport, tmp_path)
    result = report.get(check)
    assert result.status == status
    assert result.reason.startswith(f"{check.split(':')[1]}=true in {where}: ")
    assert report.exit_code == (1 if status == "FAIL" else 0)
    others = [c for c in report.checks if c.check.startswith("flag:") and c.check != check]
    assert {c.status for c in others} == {"OK"}


def test_phase_flag_override_is_reported_with_the_phase(tmp_path: Path) -> None:
    token = make_jwt()
    transport, _ = mock_world(token=token)
    phases = ("  - {name: baseline, rate: 10, concurrency: 2, duration: 60s}\n"
              "  - {name: fallback, rate: 10, concurrency: 2, duration: 60s, flags: {COUNT_CACHE_MISS_AS_FALLBACK: true}}\n")
    report = _verify(spec_text(phases=phases), _env(token), transport, tmp_path)
    result = report.get("flag:COUNT_CACHE_MISS_AS_FALLBACK")
    assert (result.status, result.details["true_in"]) == ("WARN", ["phase fallback"])


def test_flag_env_value_that_is_not_boolean_warns(tmp_path: Path) -> None:
    token = make_jwt()
    transport, _ = mock_world(token=token)
    report = _verify(spec_text(), _env(token, ENABLE_FALLBACK_TEST="maybe"), transport, tmp_path)
    assert report.get("flag:ENABLE_FALLBACK_TEST").status == "WARN"
    assert "'maybe' is not a boolean" in report.get("flag:ENABLE_FALLBACK_TEST").reason


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("1", True), ("On", True), ("false", False),
                                                 ("", False), ("0", False), ("maybe", None)])
def test_parse_flag(text: str, expected: bool | None) -> None:
    assert parse_flag(text) is expected


def test_wrong_token_fails_the_authenticated_read_too(tmp_path: Path) -> None:
    transport, seen = mock_world(token=make_jwt())
    wrong = make_jwt()
    report = _verify(spec_text(), _env(wrong), transport, tmp_path)
    auth = report.get("auth")
    assert auth.status == "FAIL" and auth.reason.startswith(
        f"the token was rejected: GET {SERVICE_URL}/api/auth/me answered 401; ")
    assert any(r.url.path == "/api/auth/me" and r.headers["authorization"] == f"Bearer {wrong}" for r in seen)
    assert wrong not in report.to_json()


@pytest.mark.parametrize(
    ("status", "verdict", "reason"),
    [
        (200, "OK", "the token was accepted: GET http://api.test:8900/api/auth/me answered 200 in "),
        (204, "OK", "the token was accepted: GET http://api.test:8900/api/auth/me answered 204 in "),
        (403, "FAIL", "the token was rejected: GET http://api.test:8900/api/auth/me answered 403; "),
        (404, "WARN", "the token could not be checked: GET http://api.test:8900/api/auth/me answered 404 "
                      "(expected 2xx, or 401/403 for a rejected token)"),
        (503, "WARN", "the token could not be checked: GET http://api.test:8900/api/auth/me answered 503 "),
    ],
)
def test_probe_auth_reads_the_answer(status: int, verdict: str, reason: str) -> None:
    from phase5site.ops.probes import probe_auth

    token = make_jwt()
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(status)

    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        result = probe_auth(client, SERVICE_URL + "/", "/api/auth/me", token)
    assert (result.check, result.status, result.details["status"]) == ("auth", verdict, status)
    assert result.reason.startswith(reason), result.reason
    assert [str(r.url) for r in asked] == [f"{SERVICE_URL}/api/auth/me"]
    assert asked[0].headers["authorization"] == f"Bearer {token}"


def test_the_authenticated_read_route_is_the_profiles() -> None:
    from phase5site.metrics.profile import PROFILES

    assert {name: p.authenticated_read_path for name, p in PROFILES.items()} == {
        "metasheet": "/api/auth/me", "metasheet-2025": "/api/auth/me"}


def test_refused_service_fails_the_authenticated_read_naming_the_url(tmp_path: Path) -> None:
    token = make_jwt()
    transport, _ = mock_world(token=token, service_up=False)
    auth = _verify(spec_text(), _env(token), transport, tmp_path).get("auth")
    assert (auth.status, auth.reason) == ("FAIL", f"cannot connect to {SERVICE_URL}/api/auth/me (connection refused)")


def test_token_not_shaped_like_a_jwt_warns_and_never_shows(tmp_path: Path) -> None:
    import secrets

    opaque = "eyJ" + secrets.token_urlsafe(24)
    transport, _ = mock_world(token=opaque)
    report = _verify(spec_text(), _env(opaque), transport, tmp_path)
    token_check = report.get("token")
    assert token_check.status == "WARN"
    assert token_check.reason == "bearer token is not a JWT: has 1 dot-separated part(s), a JWT has 3"
    assert report.get("health").status == "OK"
    assert opaque not in report.to_json() and opaque not in report.format_text()


def test_expired_jwt_warns(tmp_path: Path) -> None:
    token = make_jwt(exp_s=NOW_S - 60)
    transport, _ = mock_world(token=token)
    report = _verify(spec_text(), _env(token), transport, tmp_path)
    assert report.get("token").status == "WARN"
    assert report.get("token").reason == "bearer token (JWT, alg HS256) expired at 2025-11-24T15:59:00Z"


def test_missing_token_warns(tmp_path: Path) -> None:
    transport, _ = mock_world(token=None)
    env = _env("")
    report = _verify(spec_text(bearer=None), env, transport, tmp_path)
    assert report.get("token").status == "WARN"
    assert report.get("health").status == "OK"
    assert report.get("auth").status == "INFO"
    assert report.get("auth").reason == "not checked: the spec sends no bearer token (target.auth.bearer)"


def test_unset_variable_with_default_is_named_and_ok(tmp_path: Path) -> None:
    token = make_jwt()
    transport, _ = mock_world(token=token)
    text = spec_text(base_url="${LOAD_BASE_URL:-http://api.test:8900}")
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(text)
    env = _env(token)
    env.pop("LOAD_BASE_URL")
    report = verify_spec(load(text, env, path=spec_path), env=env, transport=transport, results_dir=tmp_path)
    assert report.get("env").status == "OK"
    assert report.get("env").reason == "2 variable(s) set: PROD_JWT, METRICS_URL; spec defaults used for LOAD_BASE_URL"


def test_empty_variable_without_default_warns_with_its_line(tmp_path: Path) -> None:
    transport, _ = mock_world(token=None)
    report = _verify(spec_text(), _env(""), transport, tmp_path)
    assert report.get("env").status == "WARN"
    assert report.get("env").reason == ("set but empty, without default: PROD_JWT (line 5); "
                                        "2 variable(s) set: LOAD_BASE_URL, METRICS_URL")
    assert report.get("token").status == "WARN"  # and no token at all


def test_results_dir_that_is_a_file_fails(tmp_path: Path) -> None:
    token = make_jwt()
    transport, _ = mock_world(token=token)
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    report = _verify(spec_text(), _env(token), transport, blocker)
    assert report.get("results_dir").status == "FAIL"
    assert report.get("results_dir").reason == f"{blocker} exists but is not a folder"


def test_disk_space_reports_the_estimate(tmp_path: Path) -> None:
    token = make_jwt()
    transport, _ = mock_world(token=token)
    report = _verify(spec_text(), _env(token), transport, tmp_path)
    details = report.get("disk_space").details
    assert details["request_rows"] == 20 * 600 + 80 * 7200
    assert details["samples"] == 12
    assert details["bytes_needed"] == 129_054_592


def test_huge_plan_fails_disk_space(tmp_path: Path) -> None:
    token = make_jwt()
    transport, _ = mock_world(token=token)
    phases = "  - {name: forever, rate: 100000, concurrency: 20, duration: 7d}\n"
    report = _verify(spec_text(phases=phases), _env(token), transport, tmp_path)
    assert report.get("disk_space").status == "FAIL"


def test_scrape_source_reads_the_service_page_without_the_load_token(tmp_path: Path) -> None:
    # The load JWT belongs to target.base_url's requests; the metrics page never gets it,
    # even on the same host (issue 13 item 5).
    token = make_jwt()
    transport, seen = mock_world(token=token)
    report = _verify(spec_text(metrics="{source: scrape}"), _env(token), transport, tmp_path)
    assert report.get("metrics:scrape").status == "OK"
    assert report.get("families:scrape").status == "OK"
    pages = [r for r in seen if r.url.path == "/metrics/prom"]
    assert pages and all("authorization" not in r.headers for r in pages)
    assert any(r.url.path == "/health" and r.headers["authorization"] == f"Bearer {token}" for r in seen)


def test_both_sources_are_checked(tmp_path: Path) -> None:
    token = make_jwt()
    transport, _ = mock_world(token=token, prometheus_up=False)
    metrics = "{source: both, url: '${METRICS_URL}'}"
    statuses = _statuses(_verify(spec_text(metrics=metrics), _env(token), transport, tmp_path))
    assert statuses["metrics:prometheus"] == "FAIL" and statuses["metrics:scrape"] == "OK"


def test_metrics_source_none_warns(tmp_path: Path) -> None:
    token = make_jwt()
    transport, _ = mock_world(token=token)
    report = _verify(spec_text(metrics="{source: none}"), _env(token), transport, tmp_path)
    assert report.get("metrics:none").status == "WARN"
    assert report.exit_code == 0


def test_a_crashing_check_becomes_a_fail_line() -> None:
    def broken() -> list[CheckResult]:
        raise ZeroDivisionError("division by zero")

    assert _guard("disk_space", broken) == [
        CheckResult("disk_space", "FAIL", "check could not run: ZeroDivisionError: division by zero")
    ]


def test_a_check_crashing_inside_verify_spec_leaves_every_other_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import phase5site.ops.verify as verify_module

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("probe exploded")

    monkeypatch.setattr(verify_module, "check_health", crash)
    monkeypatch.setattr(verify_module, "check_flags", crash)
    token = make_jwt()
    transport, _ = mock_world(token=token)
    report = _verify(spec_text(), _env(token), transport, tmp_path / "results")
    checks = [c.check for c in report.checks]
    assert checks == ["env", "token", "flag", "allow_hosts", "health", "auth", "metrics:prometheus",
                      "families:prometheus", "scrape_interval", "families:not_exported", "results_dir",
                      "disk_space", "wall_time"]
    assert report.get("health").reason == "check could not run: RuntimeError: probe exploded"
    assert report.get("flag").status == "FAIL" and report.get("disk_space").status == "OK"
    assert report.exit_code == 1


def test_json_output_validates_against_its_schema(tmp_path: Path) -> None:
    schema = load_report_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    token = make_jwt()
    for world in (mock_world(token=token), mock_world(token=token, prometheus_up=False)):
        report = _verify(spec_text(), _env(token), world[0], tmp_path)
        jsonschema.validate(json.loads(report.to_json()), schema, cls=jsonschema.Draft202012Validator)


def test_schema_rejects_an_unknown_status() -> None:
    schema = load_report_schema()
    bad = {"schema_version": 1, "spec": "x", "spec_sha256": "0" * 64, "ok": True,
           "counts": {"OK": 1, "WARN": 0, "FAIL": 0, "INFO": 0},
           "checks": [{"check": "env", "status": "GOOD", "reason": "r", "details": {}}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema, cls=jsonschema.Draft202012Validator)


def test_declared_family_without_series_is_ok_with_a_note() -> None:
    from phase5site.ops.verify import _families_result

    needed = {"a_total": ("col_a",), "h_seconds_bucket": ("col_h",)}
    result = _families_result("families:scrape", needed, {"a_total"}, declared={"a_total", "h_seconds"})
    assert result.status == "OK"
    assert result.reason == ("all 2 metric families are exported; no series yet for h_seconds_bucket "
                             "(NA until the service records one)")
    result = _families_result("families:scrape", needed, {"a_total"}, declared={"a_total"})
    assert result.status == "WARN"


def test_env_file_merge_process_values_win(tmp_path: Path) -> None:
    from phase5site.ops.envfile import merged_environment

    (tmp_path / ".env.phase5").write_text("PROD_JWT=from-file\nMETRICS_URL=http://prom:9090  # note\n")
    merged = merged_environment(None, {"PROD_JWT": "from-shell"}, cwd=tmp_path)
    assert merged == {"PROD_JWT": "from-shell", "METRICS_URL": "http://prom:9090"}
    assert merged_environment(None, {"A": "1"}, cwd=tmp_path / "elsewhere") == {"A": "1"}


def test_env_template_names_every_variable_the_shipped_specs_read() -> None:
    import re

    from phase5site.ops.envfile import load_env_file

    root = Path(__file__).parents[2]
    values = load_env_file(root / ".env.phase5.template")
    read = {name for spec in (root / "runspecs").glob("*.yaml")
            for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", spec.read_text())}
    assert set(values) == read
    secrets = ("PROD_JWT", "PROD_JWT_2", "PROD_ADMIN_JWT", "DEV_JWT", "DEV_ADMIN_JWT")
    assert all(values[name] == "" for name in secrets), "no value of a secret in the template"
    assert {k: values[k] for k in ("COUNT_CACHE_MISS_AS_FALLBACK", "ENABLE_PHASE5_INTERNAL", "ENABLE_FALLBACK_TEST")} == {
        "COUNT_CACHE_MISS_AS_FALLBACK": "false", "ENABLE_PHASE5_INTERNAL": "false", "ENABLE_FALLBACK_TEST": "false"}


def test_env_file_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from phase5site.cli import cli

    env_file = tmp_path / ".env.phase5"
    env_file.write_bytes(b"PROD_JWT=\xff\xfe\n")
    spec = Path(__file__).parents[2] / "runspecs" / "demo.yaml"
    result = CliRunner().invoke(cli, ["validate", str(spec), "--env-file", str(env_file)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: cannot read env file {env_file}: not UTF-8 text")


def test_scrape_interval_is_checked_against_the_shortest_sample_window() -> None:
    """Prometheus mode needs two scrapes inside every window (metrics.scrape_edges)."""
    from phase5site.ops.probes import probe_scrape_interval

    from .helpers import T0

    transport, _ = mock_world(token=None)
    with httpx.Client(transport=transport) as client:
        ok = probe_scrape_interval(client, PROMETHEUS_URL, '{job="metasheet-api"}', now_s=T0, shortest_window_s=600)
        warn = probe_scrape_interval(client, PROMETHEUS_URL, '{job="metasheet-api"}', now_s=T0, shortest_window_s=20)
    assert ok.status == "OK"
    assert ok.reason == ("Prometheus scrapes every 15 s: each 600 s window holds about 40 scrapes, and its server "
                         "counts cover the time between the first and the last (up to 30 s less than the window)")
    assert warn.status == "WARN" and "more than half the shortest sample interval (20 s)" in warn.reason
    assert warn.details == {"scrape_interval_s": 15.0, "shortest_window_s": 20}


def test_each_check_is_reported_as_it_completes(tmp_path: Path) -> None:
    token = make_jwt()
    heard: list[tuple[str, int]] = []  # (check, how many requests the world had seen by then)
    env = _env(token)

    def on_check(check: CheckResult) -> None:
        heard.append((check.check, len(seen)))

    transport, seen = mock_world(token=token)
    report = verify_spec(load(spec_text(), env), env=env, transport=transport, results_dir=tmp_path / "results",
                         clock=lambda: NOW_S, on_check=on_check)
    assert [name for name, _ in heard] == [c.check for c in report.checks] == EXPECTED_CHECKS
    # reported before the later checks ran: env came before any request, health before metrics'
    assert heard[0][1] == 0
    health = dict(heard)["health"]
    assert 0 < health < dict(heard)["families:prometheus"]
    assert token not in repr(heard)
