"""``phase5site run`` as a subprocess: SIGTERM mid-run, exit codes, status command."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from click.testing import CliRunner

from phase5site.cli import cli
from phase5site.store import RunReader

from .helpers import fake_token

TINY = """
version: 1
name: sigterm
target:
  embedded: {seed: 2}
  auth: {bearer: "${SIGTERM_TEST_JWT}"}
phases:
  - {name: main, rate: 20, concurrency: 4, duration: 30, observe: false}
"""


def _wait_for_sends(results: Path, deadline_s: float) -> Path:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        for status_path in results.glob("*/status.json"):
            try:
                status = json.loads(status_path.read_text())
            except (OSError, ValueError):
                continue
            if status.get("sent", 0) >= 10:
                return status_path.parent
        time.sleep(0.1)
    raise AssertionError("the run never reported 10 sends")


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_mid_run_leaves_an_interrupted_readable_run_and_exits_128_plus_it(
        tmp_path: Path, signum: int, code: int) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    results = tmp_path / "results"
    token = fake_token()
    process = subprocess.Popen(
        [sys.executable, "-m", "phase5site", "run", str(spec), "--results-dir", str(results)],
        env={**os.environ, "SIGTERM_TEST_JWT": token}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, cwd=tmp_path,
    )
    try:
        run_dir = _wait_for_sends(results, 60)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == code, stderr.decode()
    assert b"interrupted" in stderr
    with RunReader(run_dir) as reader:
        run = reader.run()
        assert run["status"] == "interrupted"
        assert signal.Signals(signum).name in (run["exit_reason"] or "")
        assert 10 <= reader.request_count("main") < 600
        assert reader.phases()[0]["status"] == "interrupted"
        assert [e["kind"] for e in reader.events(kind="signal")] == ["signal"]
        (start,) = reader.events(kind="run_start")
    target_pid = start["data"]["target_pid"]
    assert isinstance(target_pid, int) and start["data"]["worker_pids"]
    for pid in [target_pid, *start["data"]["worker_pids"]]:
        try:  # the embedded target and the load workers stopped with the run, none left behind
            os.kill(pid, 0)
            raise AssertionError(f"process {pid} still running")
        except ProcessLookupError:
            pass
    # Not a TTY: one plain progress line per second.
    assert b"phase=main" in stdout
    assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_status_command_prints_the_latest_status(tmp_path: Path) -> None:
    older = tmp_path / "a-20260101T000000Z"
    newer = tmp_path / "b-20260101T000001Z"
    for folder, state in ((older, "completed"), (newer, "running")):
        folder.mkdir()
        (folder / "status.json").write_text(json.dumps({"status": state, "run_id": folder.name}))
        time.sleep(0.02)
    result = CliRunner().invoke(cli, ["status", "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["run_id"] == newer.name
    result = CliRunner().invoke(cli, ["status", str(older)])
    assert json.loads(result.output)["status"] == "completed"


def test_status_of_a_running_run_says_whether_its_runner_is_alive(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name, pid, alive in (("alive", os.getpid(), True), ("dead", dead.pid, False)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "status.json").write_text(json.dumps({"status": "running", "pid": pid}))
        result = CliRunner().invoke(cli, ["status", str(folder)])
        assert json.loads(result.output)["runner_alive"] is alive
        assert json.loads(result.output)["status"] == ("running" if alive else "crashed")


def test_status_says_crashed_when_the_runner_died_or_its_pid_went_to_another_process(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    results = tmp_path / "results"
    args = ["run", str(spec), "--results-dir", str(results), "--no-site"]
    with _phase5site(args, tmp_path, env={**os.environ, "SIGTERM_TEST_JWT": fake_token()},
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
        run_dir = _wait_for_sends(results, 60)
        process.kill()  # SIGKILL: the runner cannot say it ended
        process.wait()
    status = json.loads(CliRunner().invoke(cli, ["status", str(run_dir)]).output)
    assert (status["status"], status["runner_alive"]) == ("crashed", False)
    assert status["crashed_reason"] == f"the runner (pid {process.pid}) is gone: it died without ending the run"
    assert isinstance(status["pid_start_ticks"], int)
    # The pid taken by another process since: alive, yet not the runner (another start time).
    other = subprocess.Popen(["sleep", "60"])
    try:
        recorded = json.loads((run_dir / "status.json").read_text())
        (run_dir / "status.json").write_text(json.dumps({**recorded, "pid": other.pid}))
        status = json.loads(CliRunner().invoke(cli, ["status", str(run_dir)]).output)
    finally:
        other.kill()
        other.wait()
    assert (status["status"], status["runner_alive"]) == ("crashed", False)
    assert status["crashed_reason"].startswith(
        f"the runner (pid {other.pid}) is gone: that pid now belongs to another process (started at tick ")
    with RunReader(run_dir) as reader:  # and the run itself stays readable
        assert reader.effective_status() == "interrupted"


def test_status_without_runs_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "--results-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no run with a status.json under" in result.output


def test_unknown_phase_is_a_usage_error(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    result = CliRunner().invoke(cli, ["run", str(spec), "--phase", "nope", "--results-dir",
                                      str(tmp_path / "r")], env={"SIGTERM_TEST_JWT": fake_token()})
    assert result.exit_code == 2
    assert "--phase 'nope' is not a phase of" in result.output
    assert "Hint: Phases are: main." in result.output
    assert not (tmp_path / "r").exists()


@contextlib.contextmanager
def _phase5site(args: list[str], cwd: Path, **popen: Any) -> Iterator[subprocess.Popen]:
    """``phase5site ARGS`` as a child process, killed at the end if still running."""
    process = subprocess.Popen([sys.executable, "-m", "phase5site", *args], cwd=cwd, **popen)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_for_line(path: Path, text: str, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if path.is_file() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{path.name} never said {text!r}")


def test_ctrl_c_during_the_pre_flight_exits_130_with_one_line(tmp_path: Path) -> None:
    """The health check waits on a service that accepted the connection and never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(60)
        spec = tmp_path / "preflight.yaml"
        spec.write_text(f"""version: 1
name: preflight
target:
  base_url: http://127.0.0.1:{silent.getsockname()[1]}
  allow_hosts: [127.0.0.1]
  timeout: 60s
phases:
  - {{name: main, rate: 1, concurrency: 1, duration: 5, observe: false}}
""")
        results = tmp_path / "results"
        args = ["run", str(spec), "--results-dir", str(results), "--no-site"]
        with _phase5site(args, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
            connection, _ = silent.accept()  # verify's /health request is on its way
            with connection:
                process.send_signal(signal.SIGINT)
                stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.decode().splitlines() == [
        "Error: interrupted (Ctrl-C) during the pre-flight checks: no load was sent, no run folder was made"]
    # stdout holds only the progress of the checks that completed before the Ctrl-C
    lines = stdout.decode().splitlines()
    assert lines and all(line.startswith("verify ") for line in lines), lines
    assert "health" not in stdout.decode()  # the check the Ctrl-C cut short reports nothing
    assert not list(results.glob("*"))


def test_a_second_ctrl_c_forces_the_stop_and_the_partial_summary_is_still_written(tmp_path: Path) -> None:
    """A load worker that no longer answers (SIGSTOP) holds the stop for its drain time; the
    second Ctrl-C kills it and ends the run, the third changes nothing."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY.replace("duration: 30", "duration: 120"))
    results = tmp_path / "results"
    args = ["run", str(spec), "--results-dir", str(results), "--no-site"]
    with _phase5site(args, tmp_path, env={**os.environ, "SIGTERM_TEST_JWT": fake_token()},
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        run_dir = _wait_for_sends(results, 60)
        found = re.search(r"load worker process\(es\) started \(pids (\d+)\)", (run_dir / "load.log").read_text())
        assert found is not None
        worker = int(found.group(1))
        os.kill(worker, signal.SIGSTOP)
        try:
            process.send_signal(signal.SIGINT)
            _wait_for_line(run_dir / "load.log", "stopping: SIGINT received", 60)
            process.send_signal(signal.SIGINT)
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=120)
        finally:
            if Path(f"/proc/{worker}").exists():  # never leave it stopped behind
                os.kill(worker, signal.SIGKILL)
    assert process.returncode == 130, stderr.decode()
    assert "forcing the stop" in (run_dir / "load.log").read_text()
    assert not Path(f"/proc/{worker}").exists()  # killed and reaped, not left stopped
    assert (run_dir / "summary.md").is_file() and b"Traceback" not in stderr
    with RunReader(run_dir) as reader:
        assert reader.run()["status"] == "interrupted" and reader.request_count("main") >= 1
