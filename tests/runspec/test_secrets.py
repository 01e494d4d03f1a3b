"""A secret never appears in repr, the redacted dump, the plan, or an error message."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner

from phase5site.cli import cli
from phase5site.errors import SpecError
from phase5site.runspec import load_spec, parse_spec_text
from phase5site.runspec.plan import build_plan, format_plan

RUNSPECS = Path(__file__).parents[2] / "runspecs"


@pytest.fixture
def token() -> str:
    return "eyJ" + secrets.token_urlsafe(24)


@pytest.fixture
def env(token: str) -> dict[str, str]:
    return {
        "LOAD_BASE_URL": "https://metasheet.example.internal",
        "PROD_JWT": token,
        "METRICS_URL": "http://prometheus.example.internal:9090",
        "PROD_JWT_2": "eyJ" + secrets.token_urlsafe(24),
        "PROD_ADMIN_JWT": "eyJ" + secrets.token_urlsafe(24),
        "SNAPSHOT_VIEW_ID": "0b6c1a52-5c1e-4d7e-9a51-3f4f1c7d2e10",
    }


def test_secret_not_in_repr_dump_or_plan(env: dict[str, str], token: str) -> None:
    loaded = load_spec(RUNSPECS / "day1.yaml", env)
    assert loaded.spec.target.auth.bearer is not None
    assert loaded.spec.target.auth.bearer.get_secret_value() == token
    assert token in loaded.secrets
    for text in (
        repr(loaded),
        repr(loaded.spec),
        str(loaded.spec),
        json.dumps(loaded.redacted()),
        format_plan(build_plan(loaded), loaded),
    ):
        assert token not in text
    assert loaded.redacted()["target"]["auth"]["bearer"] == "***"
    assert "target.auth.bearer (from PROD_JWT)" in loaded.secret_paths


def test_literal_bearer_and_secret_header_are_redacted(token: str) -> None:
    other = "sk-" + secrets.token_hex(8)
    loaded = parse_spec_text(
        "version: 1\nname: x\n"
        f"target:\n  base_url: http://127.0.0.1:1\n  allow_hosts: [127.0.0.1]\n  auth: {{bearer: {token}}}\n"
        f"  requests:\n    - {{name: r, path: /, headers: {{X-Api: {other}, X-Plain: v}}, secret_headers: [X-Api]}}\n"
        "phases: [{name: a, rate: 1, concurrency: 1, duration: 1s}]\n",
        "t.yaml",
        {},
    )
    dumped = json.dumps(loaded.redacted())
    assert token not in dumped and other not in dumped
    assert loaded.redacted()["target"]["requests"][0]["headers"] == {"X-Api": "***", "X-Plain": "v"}


def test_secret_variable_used_elsewhere_is_redacted(token: str) -> None:
    # A secret-named variable interpolated into a non-secret field is still a secret.
    loaded = parse_spec_text(
        "version: 1\nname: x\n"
        "target:\n  base_url: http://127.0.0.1:1\n  allow_hosts: [127.0.0.1]\n"
        "  requests: [{name: r, path: '/x?key=${API_KEY}'}]\n"
        "phases: [{name: a, rate: 1, concurrency: 1, duration: 1s}]\n",
        "t.yaml",
        {"API_KEY": token},
    )
    assert token not in json.dumps(loaded.redacted())
    assert loaded.redacted()["target"]["requests"][0]["path"] == "/x?key=***"


def test_secret_not_in_error_message(token: str) -> None:
    # A bad value next to a secret: the error is about the rate, and must not carry the token.
    with pytest.raises(SpecError) as caught:
        parse_spec_text(
            "version: 1\nname: x\n"
            "target:\n  base_url: http://127.0.0.1:1\n  allow_hosts: [127.0.0.1]\n"
            "  auth: {bearer: '${PROD_JWT}'}\n"
            "  requests: [{name: r, path: '${PROD_JWT}'}]\n"
            "phases: [{name: a, rate: -1, concurrency: 1, duration: 1s}]\n",
            "t.yaml",
            {"PROD_JWT": token},
        )
    message = str(caught.value)
    assert "must start with '/' (got '***')" in message
    assert token not in message


def test_secret_not_in_cli_output(env: dict[str, str], token: str) -> None:
    result = CliRunner().invoke(cli, ["validate", str(RUNSPECS / "day1.yaml")], env=env)
    assert result.exit_code == 0, result.output
    assert token not in result.output
    assert "Secrets:  target.auth.bearer (from PROD_JWT), target.requests[4].headers.Authorization (from PROD_JWT_2)" in result.output
    assert all(env[name] not in result.output for name in ("PROD_JWT_2", "PROD_ADMIN_JWT"))


def test_validate_never_prints_a_secret_interpolated_into_a_path_or_url() -> None:
    key, password = "k-" + secrets.token_hex(8), "p-" + secrets.token_hex(8)
    text = (
        "version: 1\nname: x\ntarget:\n  embedded: {profile: metasheet}\n  allow_hosts: [127.0.0.1]\n"
        "  requests:\n    - {name: r, path: '/health?api_key=${SVC_API_KEY}'}\n"
        "metrics: {source: scrape, scrape_url: 'http://u:${METRICS_PASS}@127.0.0.1:1/metrics'}\n"
        "phases: [{name: a, rate: 1, concurrency: 1, duration: 1s}]\n"
    )
    loaded = parse_spec_text(text, "t.yaml", {"SVC_API_KEY": key, "METRICS_PASS": password})
    plan = format_plan(build_plan(loaded), loaded)
    assert key not in plan and password not in plan
    assert "/health?api_key=*** 100%" in plan and "http://u:***@127.0.0.1:1/metrics" in plan
    assert "target.requests[0].path (from SVC_API_KEY)" in plan


def test_password_written_in_a_url_is_a_secret() -> None:
    password = "pw-" + secrets.token_hex(8)
    text = (
        "version: 1\nname: x\ntarget:\n  embedded: {profile: metasheet}\n  allow_hosts: [127.0.0.1, prom.internal]\n"
        "metrics: {source: both, url: '${METRICS_URL}', scrape_url: 'http://scraper:" + password + "@127.0.0.1:2/m'}\n"
        "phases: [{name: a, rate: 1, concurrency: 1, duration: 1s}]\n"
    )
    loaded = parse_spec_text(text, "t.yaml", {"METRICS_URL": f"http://admin:{password}x@prom.internal:9090"})
    assert {password, password + "x"} <= loaded.secrets
    dumped = json.dumps(loaded.redacted())
    assert password not in dumped and "http://scraper:***@127.0.0.1:2/m" in dumped
    plan = format_plan(build_plan(loaded), loaded)
    assert password not in plan and "http://admin:***@prom.internal:9090" in plan
    assert "metrics.url (password)" in loaded.secret_paths
    assert "metrics.scrape_url (password)" in loaded.secret_paths


def test_credential_headers_are_secrets_even_when_not_listed() -> None:
    token, session = "t-" + secrets.token_hex(8), "s-" + secrets.token_hex(8)
    text = (
        "version: 1\nname: x\ntarget:\n  embedded: {profile: metasheet}\n"
        "  requests:\n    - {name: r, path: /health, headers: {Authorization: 'Bearer ${SVC_AUTH}', "
        "Cookie: 'sid=${SID}', X-Trace: plain}}\n"
        "phases: [{name: a, rate: 1, concurrency: 1, duration: 1s}]\n"
    )
    loaded = parse_spec_text(text, "t.yaml", {"SVC_AUTH": token, "SID": session})
    assert {f"Bearer {token}", token, f"sid={session}"} <= loaded.secrets
    headers = loaded.redacted()["target"]["requests"][0]["headers"]
    assert headers == {"Authorization": "***", "Cookie": "***", "X-Trace": "plain"}
    assert loaded.secret_paths == ("target.requests[0].headers.Authorization",
                                   "target.requests[0].headers.Cookie")
    plan = format_plan(build_plan(loaded), loaded)
    assert token not in plan and session not in plan


def test_a_secret_shorter_than_eight_characters_is_a_spec_error(env: dict[str, str]) -> None:
    """PROD_JWT=e used to print 'Sp***c:', 'fals***', 'm***tash******t': a one-letter secret
    cannot be hidden in text without garbling it, so it is refused, and never shown."""
    result = CliRunner().invoke(cli, ["validate", str(RUNSPECS / "day1.yaml")], env={**env, "PROD_JWT": "e"})
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == (
        f"Error: {RUNSPECS / 'day1.yaml'}:30:18: target.auth.bearer: a secret must be at least 8 "
        "characters long (got 1 character(s) from PROD_JWT): a shorter one cannot be hidden in logs "
        "and reports without garbling other text")
    assert "Hint: Secrets are the bearer token" in result.output


def test_redaction_replaces_whole_secret_values_only(env: dict[str, str]) -> None:
    """A secret inside a longer word is not that secret: 'etasheet' must not turn the host
    metasheet.example.internal into 'm***.example.internal'. Where it stands whole, it goes."""
    loaded = load_spec(RUNSPECS / "day1.yaml", {**env, "PROD_JWT": "etasheet",
                                                "LOAD_BASE_URL": "https://metasheet.example.internal/etasheet"})
    plan = format_plan(build_plan(loaded), loaded)
    assert "Spec:     " in plan and "https://metasheet.example.internal/*** " in plan
    assert "m***" not in plan and "allowed hosts: metasheet.example.internal" in plan
    assert loaded.redacted()["target"]["allow_hosts"][0] == "metasheet.example.internal"  # host intact


@pytest.mark.parametrize(("text", "expected"), [
    ("Bearer s3cr3t-t0ken", "Bearer ***"),
    ("http://u:s3cr3t-t0ken@h/?k=s3cr3t-t0ken&x=1", "http://u:***@h/?k=***&x=1"),
    ('{"bearer": "s3cr3t-t0ken"}', '{"bearer": "***"}'),
    ("q=Bearer%20s3cr3t-t0ken.", "q=Bearer%20***."),
    ("xs3cr3t-t0ken s3cr3t-t0kens s3cr3t-t0ken_2", "xs3cr3t-t0ken s3cr3t-t0kens s3cr3t-t0ken_2"),
])
def test_redact_table(text: str, expected: str) -> None:
    from phase5site.runspec import redact

    assert redact(text, {"s3cr3t-t0ken"}) == expected
