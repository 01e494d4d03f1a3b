"""`phase5site target`: usage errors, and a real foreground run stopped with Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import httpx
import pytest
from click.testing import CliRunner

from phase5site.cli import cli

from .helpers import fake_token


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "--host: the embedded target listens on loopback only (got host '0.0.0.0')"),
        (["--fault", "outage:5s"], "--fault 'outage:5s': expected KIND:AT:DURATION[:PARAM]"),
        (["--fault", "error_burst:1:1:3"], "share: Input should be less than or equal to 1"),
        (["--bearer-env", "PHASE5_TEST_SURELY_UNSET"], "environment variable PHASE5_TEST_SURELY_UNSET is not set"),
        (["--metrics-token-env", "PHASE5_TEST_SURELY_UNSET"],
         "--metrics-token-env: environment variable PHASE5_TEST_SURELY_UNSET is not set"),
    ],
)
def test_usage_errors_exit_2_with_the_bad_value(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["target", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_command_is_documented() -> None:
    result = CliRunner().invoke(cli, ["target", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert "KIND:AT:DURATION[:PARAM]" in result.output


def test_foreground_run_prints_urls_serves_and_stops_on_ctrl_c() -> None:
    token = fake_token()
    env = {**os.environ, "PHASE5_TEST_TARGET_TOKEN": token}
    process = subprocess.Popen(
        [sys.executable, "-m", "phase5site", "target", "--bearer-env", "PHASE5_TEST_TARGET_TOKEN",
         "--fault", "error_burst:0:60s:1.0", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        found = re.search(r"embedded target: (http://127\.0\.0\.1:\d+) {2}\(metrics: (\S+)\)", first)
        assert found, first
        base_url, metrics_url = found.groups()
        assert metrics_url == base_url + "/metrics/prom"
        assert httpx.get(base_url + "/api/attendance/records").status_code == 401  # the JWT gate
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(base_url + "/api/attendance/records", headers=auth).status_code == 503
        assert "http_requests_total" in httpx.get(metrics_url).text
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert token not in process.stdout.read() + (process.stderr.read() if process.stderr else "")
