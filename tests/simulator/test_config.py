"""TargetConfig's JSON form (what travels on the child's stdin) and the child's entry point."""

from __future__ import annotations

import subprocess
import sys

import pytest

from phase5site.errors import TargetError
from phase5site.runspec.models import EmbeddedSpec, FaultSpec
from phase5site.simulator import TargetConfig
from phase5site.simulator.config import check_loopback, url_host

from .helpers import fake_token


def test_json_round_trip_keeps_everything() -> None:
    config = TargetConfig(
        embedded=EmbeddedSpec(seed=5, latency_scale=2.0,
                              faults=[FaultSpec(kind="outage", at=3, duration=1)],
                              disable_families=["cache_hits_total"]),
        bearer=fake_token(), admin_token=fake_token(), metrics_token=fake_token(), host="::1", port=8123,
    )
    assert TargetConfig.from_json(config.to_json()) == config


def test_repr_hides_the_tokens() -> None:
    bearer, admin, metrics = fake_token(), fake_token(), fake_token()
    text = repr(TargetConfig(bearer=bearer, admin_token=admin, metrics_token=metrics))
    assert bearer not in text and admin not in text and metrics not in text


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"embedded": {"seed": "x"}}', '{"embedded": {}, "colour": 1}'])
def test_bad_json_is_a_target_error(text: str) -> None:
    with pytest.raises(TargetError, match="not valid JSON of a TargetConfig"):
        TargetConfig.from_json(text)


def test_child_refuses_a_bad_configuration_with_a_message() -> None:
    child = subprocess.run([sys.executable, "-m", "phase5site.simulator"], input=b"garbage\n",
                           capture_output=True, timeout=30, check=False)
    assert child.returncode == 1
    assert b"Error: the target configuration is not valid JSON" in child.stderr
    assert child.stdout == b""


@pytest.mark.parametrize(("host", "written"), [("127.0.0.1", "127.0.0.1"), ("::1", "[::1]"), ("localhost", "localhost")])
def test_loopback_hosts_and_their_url_form(host: str, written: str) -> None:
    assert check_loopback(host) == host
    assert url_host(host) == written
