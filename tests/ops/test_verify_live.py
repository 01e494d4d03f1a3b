"""verify against the real embedded target (its own process) and a real Prometheus."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from phase5site.cli import cli
from phase5site.ops.families import required_series
from phase5site.ops.report import load_report_schema
from phase5site.ops.verify import verify_spec
from phase5site.runspec.models import EmbeddedSpec
from phase5site.simulator import start_target

from .helpers import load, make_jwt, spec_text
from .prometheus import free_port, running_prometheus, wait_for_names, wait_for_scrapes

SHORT_PHASES = "  - {name: baseline, rate: 5, concurrency: 2, samples: 2, interval: 5s}\n"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_embedded_target_scrape_source_is_all_ok(tmp_path: Path) -> None:
    token = make_jwt()
    text = spec_text(embedded=True, allow_hosts=(), metrics="{source: scrape}", phases=SHORT_PHASES)
    loaded = load(text, {"PROD_JWT": token})
    report = verify_spec(loaded, env={"PROD_JWT": token}, results_dir=tmp_path / "results")
    statuses = {check.check: check.status for check in report.checks}
    assert statuses == {
        "env": "OK", "token": "OK", "flag:COUNT_CACHE_MISS_AS_FALLBACK": "OK", "flag:ENABLE_PHASE5_INTERNAL": "OK",
        "flag:ENABLE_FALLBACK_TEST": "OK", "allow_hosts": "OK", "target": "OK", "health": "OK", "auth": "OK",
        "metrics:scrape": "OK", "families:scrape": "OK", "families:not_exported": "INFO", "results_dir": "OK",
        "disk_space": "OK", "wall_time": "INFO",
    }, report.format_text()
    assert report.exit_code == 0
    assert not _alive(report.get("target").details["pid"])  # started briefly, then stopped
    assert token not in report.to_json() and token not in report.format_text()


@pytest.fixture
def live_target():  # type: ignore[no-untyped-def]
    token = make_jwt()
    target = start_target(EmbeddedSpec(), bearer=token)
    try:
        yield target, token
    finally:
        target.stop()


def _production_env(target_url: str, token: str, metrics_url: str) -> dict[str, str]:
    return {"LOAD_BASE_URL": target_url, "PROD_JWT": token, "METRICS_URL": metrics_url}


def _production_spec(env: dict[str, str]):  # type: ignore[no-untyped-def]
    return load(spec_text(allow_hosts=("127.0.0.1",), phases=SHORT_PHASES), env)


@pytest.mark.prometheus
def test_production_like_with_real_prometheus_is_all_ok(tmp_path: Path, live_target) -> None:  # type: ignore[no-untyped-def]
    target, token = live_target
    with running_prometheus(tmp_path, scrape_url=target.metrics_url) as prometheus_url:
        # A fresh prom-client page has series only for its unlabelled families; the labelled
        # ones are declared (HELP/TYPE) and reach Prometheus as metadata only.
        wait_for_names(prometheus_url, {"up", "process_cpu_seconds_total"})
        wait_for_scrapes(prometheus_url, 2)  # the scrape_interval check needs two to measure it
        env = _production_env(target.base_url, token, prometheus_url)
        report = verify_spec(_production_spec(env), env=env, results_dir=tmp_path / "results")
    informative = {"wall_time", "families:not_exported"}
    assert {c.status for c in report.checks if c.check not in informative} == {"OK"}, report.format_text()
    assert report.get("scrape_interval").details["scrape_interval_s"] > 0
    families = report.get("families:prometheus")
    assert families.status == "OK" and "no series yet" in families.reason
    assert set(families.details["declared_without_series"]) >= {"cache_hits_total", "metasheet_fallback_total"}
    assert "metasheet_http_adapter_ops_total" not in families.details["needed"]
    assert report.get("metrics:prometheus").reason == 'Prometheus answers up{job="metasheet-api"}: 1 target(s) up'


@pytest.mark.prometheus
def test_missing_family_in_real_prometheus_is_listed(tmp_path: Path) -> None:
    token = make_jwt()
    target = start_target(EmbeddedSpec(disable_families=["cache_hits_total"]), bearer=token)
    try:
        with running_prometheus(tmp_path, scrape_url=target.metrics_url) as prometheus_url:
            wait_for_names(prometheus_url, {"up", "process_cpu_seconds_total"})
            env = _production_env(target.base_url, token, prometheus_url)
            report = verify_spec(_production_spec(env), env=env, results_dir=tmp_path)
    finally:
        target.stop()
    families = report.get("families:prometheus")
    assert families.status == "WARN"
    assert "cache_hits_total" in families.details["missing"]
    # Only the disabled family: the labelled ones without series are declared (metadata).
    assert families.reason.startswith(f"1 of {len(required_series('metasheet'))} metric families missing")


def test_a_wrong_token_passes_health_and_fails_the_authenticated_read(tmp_path: Path, live_target) -> None:  # type: ignore[no-untyped-def]
    # As in the real service, /health is a gate exception: it cannot tell a wrong token;
    # the profile's authenticated read route (/api/auth/me) can.
    target, _token = live_target
    wrong = make_jwt()
    env = _production_env(target.base_url, wrong, f"http://127.0.0.1:{free_port()}")
    report = verify_spec(_production_spec(env), env=env, results_dir=tmp_path)
    assert report.get("health").status == "OK"
    auth = report.get("auth")
    assert auth.status == "FAIL" and auth.details["status"] == 401
    assert auth.reason == (
        f"the token was rejected: GET {target.base_url}/api/auth/me answered 401; every request the run "
        "sends with it would be refused (is it signed with the deployment's JWT_SECRET, unexpired, for an "
        "active user?)")
    assert report.exit_code == 1
    assert wrong not in report.to_json() and wrong not in report.format_text()


def test_the_right_token_passes_the_authenticated_read(tmp_path: Path, live_target) -> None:  # type: ignore[no-untyped-def]
    target, token = live_target
    env = _production_env(target.base_url, token, f"http://127.0.0.1:{free_port()}")
    auth = verify_spec(_production_spec(env), env=env, results_dir=tmp_path).get("auth")
    assert auth.status == "OK" and auth.details == {**auth.details, "url": f"{target.base_url}/api/auth/me",
                                                    "status": 200}
    assert auth.reason.startswith(f"the token was accepted: GET {target.base_url}/api/auth/me answered 200 in ")


def test_no_token_skips_the_authenticated_read_with_its_reason(tmp_path: Path, live_target) -> None:  # type: ignore[no-untyped-def]
    target, _token = live_target
    env = {"LOAD_BASE_URL": target.base_url, "METRICS_URL": f"http://127.0.0.1:{free_port()}"}
    text = spec_text(allow_hosts=("127.0.0.1",), phases=SHORT_PHASES, bearer=None)
    auth = verify_spec(load(text, env), env=env, results_dir=tmp_path).get("auth")
    assert (auth.status, auth.reason) == ("INFO", "not checked: the spec sends no bearer token (target.auth.bearer)")
    assert target.state()["requests_served"] == 1, "only /health was asked, nothing was sent to /api/auth/me"


def test_cli_verify_exits_1_naming_the_rejected_token(tmp_path: Path, live_target,  # type: ignore[no-untyped-def]
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    target, _token = live_target
    spec = tmp_path / "prod.yaml"
    spec.write_text(spec_text(allow_hosts=("127.0.0.1",), phases=SHORT_PHASES, metrics="{source: none}"))
    wrong = make_jwt()
    result = CliRunner().invoke(cli, ["verify", str(spec), "--results-dir", str(tmp_path / "r")],
                                env={"LOAD_BASE_URL": target.base_url, "PROD_JWT": wrong})
    assert result.exit_code == 1, result.output
    assert "FAIL  auth" in result.output and "the token was rejected: GET " in result.output
    assert wrong not in result.output


def test_prometheus_down_fails_metrics_and_the_rest_still_runs(tmp_path: Path, live_target) -> None:  # type: ignore[no-untyped-def]
    target, token = live_target
    closed = f"http://127.0.0.1:{free_port()}"
    env = _production_env(target.base_url, token, closed)
    report = verify_spec(_production_spec(env), env=env, results_dir=tmp_path)
    statuses = {check.check: check.status for check in report.checks}
    assert statuses["metrics:prometheus"] == "FAIL"
    assert report.get("metrics:prometheus").reason == f"cannot connect to {closed}/api/v1/query (connection refused)"
    assert statuses["health"] == "OK"
    assert list(statuses)[-3:] == ["results_dir", "disk_space", "wall_time"]
    assert report.exit_code == 1


def _write_spec(tmp_path: Path, flags: str = "{}") -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(spec_text(embedded=True, allow_hosts=(), metrics="{source: scrape}",
                              phases=SHORT_PHASES, flags=flags))
    return path


def test_cli_verify_json_exit_0_and_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env.phase5 of the work tree is read
    token = make_jwt()
    spec = _write_spec(tmp_path)
    result = CliRunner().invoke(cli, ["verify", str(spec), "--json", "--results-dir", str(tmp_path / "r")],
                                env={"PROD_JWT": token})
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    jsonschema.validate(report, load_report_schema(), cls=jsonschema.Draft202012Validator)
    assert report["ok"] is True and report["counts"]["FAIL"] == 0
    assert token not in result.output


def test_cli_verify_exit_1_on_a_forbidden_flag_from_the_env_file(tmp_path: Path) -> None:
    token = make_jwt()
    spec = _write_spec(tmp_path)
    env_file = tmp_path / ".env.phase5"
    env_file.write_text(f"PROD_JWT={token}\nENABLE_PHASE5_INTERNAL=true\n")
    result = CliRunner().invoke(cli, ["verify", str(spec), "--env-file", str(env_file),
                                      "--results-dir", str(tmp_path / "r")], env={"PROD_JWT": None})
    assert result.exit_code == 1, result.output
    assert "FAIL  flag:ENABLE_PHASE5_INTERNAL" in result.output
    assert "ENABLE_PHASE5_INTERNAL=true in environment: internal Phase 5 endpoints must be off" in result.output
    assert result.output.rstrip().splitlines()[-1].endswith("NOT ready: fix every FAIL above")
    assert token not in result.output


def test_cli_verify_of_an_invalid_spec_exits_2(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("version: 1\nname: x\n")
    result = CliRunner().invoke(cli, ["verify", str(spec)])
    assert result.exit_code == 2


def test_embedded_target_that_cannot_start_fails_and_the_rest_still_runs(tmp_path: Path) -> None:
    text = spec_text(embedded=True, allow_hosts=(), metrics="{source: scrape}", phases=SHORT_PHASES,
                     bearer=None).replace("{profile: metasheet}", "{profile: metasheet, disable_families: [no_such_total]}")
    report = verify_spec(load(text, {}), env={}, results_dir=tmp_path)
    statuses = {check.check: check.status for check in report.checks}
    assert statuses["target"] == "FAIL"
    assert report.get("target").reason.startswith(
        "the embedded target could not start: disable_families names unknown metric families: no_such_total Hint: ")
    assert statuses["health"] == "FAIL" and report.get("health").reason == "not checked: the embedded target did not start"
    assert statuses["metrics:scrape"] == "FAIL"
    assert list(statuses)[-3:] == ["results_dir", "disk_space", "wall_time"]


LOGIN_PAGE = ("<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n"
              "<body><form method=post><input name=user></form></body>\n</html>\n")


@pytest.mark.parametrize("page_text", [LOGIN_PAGE, ""])
def test_a_page_that_is_not_exposition_text_served_as_the_metrics_page_is_a_fail(
        tmp_path: Path, page_text: str) -> None:
    """A login page behind the metrics URL answers 200: every family would be 'missing'
    (a WARN), yet no run could read a single number from it."""
    from phase5site.metrics.local_prometheus import PageServer

    with PageServer(page_text) as page:
        text = spec_text(embedded=True, allow_hosts=("127.0.0.1",), bearer=None, phases=SHORT_PHASES,
                         metrics=f"{{source: scrape, scrape_url: '{page.url}'}}")
        report = verify_spec(load(text, {}), env={}, results_dir=tmp_path / "results")
    problem = ("line 1 is not exposition text: '<!DOCTYPE html>' (4 of 4 lines are not)" if page_text
               else "the page holds no metric at all")
    assert report.get("metrics:scrape").status == "FAIL"
    assert report.get("metrics:scrape").reason == (
        f"{page.url} answered 200 but is not a Prometheus metrics page: {problem}")
    assert report.get("families:scrape").status == "WARN"
    assert report.get("health").status == "OK" and report.exit_code == 1


def test_the_simulator_gates_the_profiles_authenticated_read_like_the_service(live_target) -> None:  # type: ignore[no-untyped-def]
    """The route verify tries the token on: 200 with the token the target was told, the
    gate's 401 with another or none, and, as a core router, never in the HTTP families."""
    import httpx

    from phase5site.metrics.exposition import parse_exposition
    from phase5site.metrics.profile import get_profile

    target, token = live_target
    url = target.base_url + get_profile("metasheet").authenticated_read_path

    def http_requests() -> float:
        page = parse_exposition(httpx.get(target.metrics_url, timeout=5).text)
        return sum(page.series("http_requests_total").values())

    before = http_requests()
    right = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    wrong = httpx.get(url, headers={"Authorization": f"Bearer {make_jwt()}"}, timeout=5)
    missing = httpx.get(url, timeout=5)
    assert (right.status_code, wrong.status_code, missing.status_code) == (200, 401, 401)
    assert right.json()["success"] is True
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    assert http_requests() == before
    httpx.get(target.base_url + "/health", timeout=5)  # a timed route: the counter does move
    assert http_requests() == before + 1
