"""A disk that fills up under a run: a real `phase5site run` process writing to a 16 MiB tmpfs
(as root; otherwise a file-size ulimit makes the first large write fail the same way)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from phase5site.cli import cli
from phase5site.store import RunReader

SPEC = """
version: 1
name: full
target:
  embedded: {seed: 2}
phases:
  - {name: main, rate: 20, concurrency: 4, duration: 60, observe: false}
"""
AS_ROOT = os.geteuid() == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    if AS_ROOT:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        if AS_ROOT:
            subprocess.run(["umount", "-l", str(disk)], check=True)


def _fill(disk: Path) -> None:
    """Write until the file system refuses one more byte."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, bytes(64 * 1024) if os.fstatvfs(fd).f_bavail > 16 else b"\0")
    except OSError:
        pass
    finally:
        os.close(fd)


def _limit_file_size() -> None:  # without root: any file above 1 MiB cannot be written
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, 1024 * 1024))


def _wait_for_sends(results: Path, at_least: int, deadline_s: float) -> Path:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        for status_path in results.glob("*/status.json"):
            try:
                if json.loads(status_path.read_text()).get("sent", 0) >= at_least:
                    return status_path.parent
            except (OSError, ValueError):
                pass
        time.sleep(0.1)
    raise AssertionError(f"the run never reported {at_least} sends")


def test_a_disk_full_run_fails_with_one_line_keeps_its_rows_and_stays_reportable(
        tmp_path: Path, small_disk: Path) -> None:
    spec = tmp_path / "full.yaml"
    spec.write_text(SPEC)
    results = small_disk / "results"
    process = subprocess.Popen(
        [sys.executable, "-m", "phase5site", "run", str(spec), "--results-dir", str(results),
         "--no-site", "--skip-verify"],  # verify would refuse 16 MiB: it asks for 64 MiB of room
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
        preexec_fn=None if AS_ROOT else _limit_file_size)
    try:
        if AS_ROOT:
            _wait_for_sends(results, 20, 60)
            _fill(small_disk)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    (run_dir,) = results.iterdir()
    errors = stderr.decode().splitlines()
    assert process.returncode == 1, stderr.decode()
    assert "Traceback" not in stderr.decode()
    cause = "disk full: cannot write" if AS_ROOT else "cannot write"
    assert errors[0].startswith(f"run failed ({cause} ") and errors[0].endswith(f": {run_dir}")
    assert f" in {run_dir} (" in errors[0]
    assert not (run_dir / "status.json.tmp").exists()
    assert not (run_dir / ".space-reserve").exists()
    with RunReader(run_dir) as reader:
        run = reader.run()
        assert run["status"] == "failed" and run["exit_reason"].startswith(cause)
        stored = reader.request_count("main")
    assert stored >= (1 if AS_ROOT else 0)

    # The disk still full: summary says why in one line (no traceback) and keeps the run intact.
    (run_dir / "summary.md").unlink(missing_ok=True)
    if AS_ROOT:
        _fill(small_disk)
        result = CliRunner().invoke(cli, ["summary", str(run_dir), "--partial"])
        assert result.exit_code == 1
        assert result.output.splitlines()[0] == (
            f"Error: cannot write summary.md in {run_dir}: No space left on device")
        (small_disk / "filler").unlink()

    # Room again, status.json missing or empty: report and summary read the store, not it.
    for status_text in (None, ""):
        (run_dir / "status.json").unlink(missing_ok=True)
        if status_text is not None:
            (run_dir / "status.json").write_text(status_text)
        result = CliRunner().invoke(cli, ["summary", str(run_dir), "--partial"])
        assert result.exit_code == 6, result.output  # NOT-EVALUATED: a failed run is no verdict
        assert (run_dir / "summary.md").is_file()
        result = CliRunner().invoke(cli, ["report", str(run_dir)])
        assert result.exit_code == 2 and "is failed, not completed" in result.output
    with RunReader(run_dir) as reader:
        assert reader.request_count("main") == stored
    result = CliRunner().invoke(cli, ["status", str(run_dir)])
    assert result.exit_code == 1 and "status.json is not valid JSON" in result.output


def test_status_json_is_replaced_whole_or_not_at_all(small_disk: Path) -> None:
    from phase5site.engine.runfiles import RunFiles

    run_dir = small_disk / "run"
    run_dir.mkdir()
    files = RunFiles(run_dir, frozenset())
    assert files.write_status({"status": "running", "sent": 1}) and files.write_error is None
    files.release_reserve()
    if AS_ROOT:
        _fill(small_disk)
    else:
        run_dir.chmod(0o555)  # without root: a folder that refuses new files fails the same way
    try:
        assert files.write_status({"status": "completed", "sent": 2, "pad": "x" * 100_000}) is False
    finally:
        run_dir.chmod(0o755)
    assert json.loads((run_dir / "status.json").read_text()) == {"status": "running", "sent": 1}
    assert not (run_dir / "status.json.tmp").exists()
    assert files.write_error is not None and f"cannot write status.json in {run_dir}" in files.write_error
    files.load(0.0, "x" * 100_000)  # a log line that cannot be written does not raise either
    files.close()
