"""capture_environment: what it records, that it is JSON-able, and that it holds no secret."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

from phase5site import __version__
from phase5site.ops.environment import capture_environment, git_state

from .helpers import PROMETHEUS_URL, SERVICE_URL, load, make_jwt, spec_text

NOW_S = 1_764_000_000.0


def _loaded(token: str, flags: str = "{COUNT_CACHE_MISS_AS_FALLBACK: true}"):  # type: ignore[no-untyped-def]
    env = {"LOAD_BASE_URL": SERVICE_URL, "PROD_JWT": token, "METRICS_URL": PROMETHEUS_URL}
    return load(spec_text(flags=flags), env, path="runspecs/day1.yaml")


def test_records_tool_machine_spec_flags_and_thresholds(tmp_path: Path) -> None:
    token = make_jwt()
    loaded = _loaded(token)
    captured = capture_environment(loaded, spec_path="runspecs/day1.yaml", cwd=tmp_path, now_s=NOW_S)
    assert captured["captured_at"] == "2025-11-24T16:00:00Z"
    assert captured["tool"]["version"] == __version__
    assert captured["tool"]["libraries"]["duckdb"]
    assert captured["python"]["version"] == platform.python_version()
    assert captured["os"]["release"] == platform.release()
    assert captured["host"]["cpu_count"] == os.cpu_count()
    assert captured["spec"] == {"path": "runspecs/day1.yaml", "sha256": loaded.sha256, "name": "verify-test"}
    assert captured["flags"]["spec"]["COUNT_CACHE_MISS_AS_FALLBACK"] is True
    assert captured["flags"]["phases"]["baseline"]["ENABLE_FALLBACK_TEST"] is False
    assert captured["thresholds"]["slo"]["latency_p95_ms"] == 150.0
    assert captured["thresholds"]["circuit_breaker"]["error_rate"] == 0.02
    json.dumps(captured)  # JSON-able for runs.environment


def test_git_commit_and_dirty_flag(tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True, text=True).stdout

    assert git_state(tmp_path) == {"commit": None, "dirty": None, "branch": None}  # not a repo: NA
    git("init", "-q")
    (tmp_path / "a.txt").write_text("one")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "one")
    state = git_state(tmp_path)
    assert state["commit"] == git("rev-parse", "HEAD").strip()
    assert state["dirty"] is False
    (tmp_path / "a.txt").write_text("two")
    assert git_state(tmp_path)["dirty"] is True
    assert not (tmp_path / ".git" / "index.lock").exists()


def test_no_secret_in_the_capture(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    token = make_jwt()
    monkeypatch.setenv("PROD_JWT", token)
    # the spec path itself holding the token must not leak it either
    captured = capture_environment(_loaded(token), spec_path=f"/tmp/{token}.yaml", cwd=tmp_path)
    text = json.dumps(captured)
    assert token not in text
    assert "/tmp/***.yaml" in text
