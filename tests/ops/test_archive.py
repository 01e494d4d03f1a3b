"""archive_run / verify_archive on real run folders (real DuckDB), and the archive command."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from phase5site.cli import cli
from phase5site.errors import ArchiveError
from phase5site.ops.archive import CHECKSUMS, METADATA, archive_run, verify_archive

from .helpers import T0, make_run_dir


@pytest.fixture
def restore_permissions(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Give write permission back after a read-only test so tmp_path can be cleaned."""
    yield
    for folder, _dirs, files in os.walk(tmp_path):
        os.chmod(folder, 0o755)
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                path.chmod(0o644)


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_round_trip_then_one_changed_byte_is_reported_alone(tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path)
    result = archive_run(run_dir, dest=tmp_path / "final", clock=lambda: T0)
    assert result.path == tmp_path / "final" / run_dir.name
    assert verify_archive(result.path).ok
    _flip_one_byte(result.path / "metrics.csv")
    check = verify_archive(result.path)
    assert (check.changed, check.missing, check.extra) == (["metrics.csv"], [], [])
    assert "CHANGED metrics.csv" in check.format_text()


def test_missing_and_extra_files_are_reported(tmp_path: Path) -> None:
    result = archive_run(make_run_dir(tmp_path), dest=tmp_path / "final")
    (result.path / "logs" / "load.log").unlink()
    (result.path / "notes.txt").write_text("added later")
    check = verify_archive(result.path)
    assert (check.changed, check.missing, check.extra) == ([], ["logs/load.log"], ["notes.txt"])


def test_checksums_are_sha256sum_compatible(tmp_path: Path) -> None:
    result = archive_run(make_run_dir(tmp_path), dest=tmp_path / "final")
    completed = subprocess.run(["sha256sum", "--check", "--strict", CHECKSUMS], cwd=result.path,
                               capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    listed = [line.split("  ", 1)[1] for line in (result.path / CHECKSUMS).read_text().splitlines()]
    assert listed == sorted(["run.duckdb", "metadata.json", "metrics.csv", "logs/load.log", METADATA])


def test_metadata_counts_samples_once_per_window_and_has_a_verdict(tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path, samples=4)
    result = archive_run(run_dir, dest=tmp_path / "final", clock=lambda: T0)
    metadata = json.loads((result.path / METADATA).read_text())
    assert metadata["source"] == str(run_dir.resolve())
    assert metadata["archived_at"] == "2025-11-24T16:00:00Z"
    assert metadata["samples"] == 4 and metadata["samples_reason"] is None
    assert metadata["run_status"] == "completed"
    assert metadata["files"] == 5  # run.duckdb, metadata.json, metrics.csv, logs/load.log, itself
    # evaluate_run finds nothing to judge in this thin run (no latency, fallback, memory data)
    assert (metadata["verdict"], metadata["verdict_reason"]) == ("NOT-EVALUATED", None)


def test_run_without_store_has_na_samples_with_reason(tmp_path: Path) -> None:
    run_dir = tmp_path / "legacy"
    run_dir.mkdir()
    (run_dir / "metrics.csv").write_text("a\n")
    metadata = archive_run(run_dir, dest=tmp_path / "final").metadata
    assert metadata["samples"] is None
    assert metadata["samples_reason"] == f"no run.duckdb in {run_dir}"


def test_readonly_leaves_no_writable_file_or_folder(tmp_path: Path, restore_permissions: None) -> None:
    result = archive_run(make_run_dir(tmp_path), dest=tmp_path / "final", readonly=True, tar=True)
    entries = [result.path, *result.path.rglob("*"), result.tar_path]
    write_bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    writable = [str(p) for p in entries if p is not None and p.stat().st_mode & write_bits]
    assert writable == []
    assert verify_archive(result.path).ok


def test_tarball_verifies_and_detects_a_change(tmp_path: Path, restore_permissions: None) -> None:
    result = archive_run(make_run_dir(tmp_path), dest=tmp_path / "final", tar=True, readonly=True)
    assert result.tar_path == tmp_path / "final" / f"{result.path.name}.tar.gz"
    assert verify_archive(result.tar_path).ok
    # Rebuild the tarball from a tampered copy: one changed, one missing, one extra file.
    tampered = tmp_path / "tampered" / result.path.name
    tampered.parent.mkdir()
    subprocess.run(["cp", "-r", str(result.path), str(tampered)], check=True)
    for folder, _dirs, files in os.walk(tampered):
        os.chmod(folder, 0o755)
        for name in files:
            (Path(folder) / name).chmod(0o644)
    _flip_one_byte(tampered / "metrics.csv")
    (tampered / "logs" / "load.log").unlink()
    (tampered / "notes.txt").write_text("added later")
    bad_tar = tmp_path / "tampered.tar.gz"
    with tarfile.open(bad_tar, "w:gz") as archive:
        archive.add(tampered, arcname=tampered.name)
    check = verify_archive(bad_tar)
    assert (check.changed, check.missing, check.extra) == (["metrics.csv"], ["logs/load.log"], ["notes.txt"])


def test_cli_verify_of_a_truncated_tarball_names_it_and_exits_1(tmp_path: Path) -> None:
    result = archive_run(make_run_dir(tmp_path), dest=tmp_path / "final", tar=True)
    assert result.tar_path is not None
    data = result.tar_path.read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    outcome = CliRunner().invoke(cli, ["archive", "--verify", str(truncated)])
    assert outcome.exit_code == 1
    assert outcome.output.startswith(f"Error: cannot read {truncated} (")
    assert "Aborted" not in outcome.output


def test_cli_archive_into_a_path_under_a_file_is_an_archive_error(tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path)
    (tmp_path / "plain-file").write_text("x")
    outcome = CliRunner().invoke(cli, ["archive", str(run_dir), "--dest", str(tmp_path / "plain-file" / "sub")])
    assert outcome.exit_code == 1, outcome.output
    assert outcome.output.startswith(f"Error: cannot copy {run_dir} to ")
    assert outcome.exception is None or isinstance(outcome.exception, SystemExit)


def test_an_archive_is_never_overwritten(tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path)
    archive_run(run_dir, dest=tmp_path / "final")
    with pytest.raises(ArchiveError, match="already exists: an archive is never overwritten"):
        archive_run(run_dir, dest=tmp_path / "final")


def test_dest_inside_the_run_folder_is_refused(tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path)
    with pytest.raises(ArchiveError, match="is inside the run folder"):
        archive_run(run_dir, dest=run_dir / "archive")


def test_missing_run_folder_is_an_archive_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="does not exist"):
        archive_run(tmp_path / "nope", dest=tmp_path / "final")


def test_token_never_reaches_archive_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from .helpers import make_jwt

    token = make_jwt()
    monkeypatch.setenv("PROD_JWT", token)
    result = archive_run(make_run_dir(tmp_path, token=token), dest=tmp_path / "final")
    assert token not in (result.path / METADATA).read_text()
    assert token not in json.dumps(result.metadata)


def test_cli_archive_and_verify_exit_codes(tmp_path: Path, restore_permissions: None) -> None:
    run_dir = make_run_dir(tmp_path)
    dest = tmp_path / "final"
    runner = CliRunner()
    made = runner.invoke(cli, ["archive", str(run_dir), "--dest", str(dest), "--tar"])
    assert made.exit_code == 0, made.output
    assert f"archived 5 files to {dest / run_dir.name}" in made.output
    ok = runner.invoke(cli, ["archive", "--verify", str(dest / run_dir.name)])
    assert ok.exit_code == 0 and "all 5 files match checksums.txt" in ok.output
    _flip_one_byte(dest / run_dir.name / "run.duckdb")
    bad = runner.invoke(cli, ["archive", "--verify", str(dest / run_dir.name)])
    assert bad.exit_code == 1
    assert bad.output.splitlines()[0] == "CHANGED run.duckdb"
    again = runner.invoke(cli, ["archive", str(run_dir), "--dest", str(dest)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_cli_verify_of_a_folder_without_checksums_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["archive", "--verify", str(tmp_path)])
    assert result.exit_code == 1
    assert f"cannot read {tmp_path / CHECKSUMS}" in result.output


def test_a_run_still_being_written_has_na_samples_with_reason(tmp_path: Path) -> None:
    from phase5site.store import RunWriter

    run_dir = tmp_path / "live-run"
    writer = RunWriter.create(run_dir, run_id="live", name="live", spec_path=None, spec_sha256=None,
                              spec_redacted={}, environment={}, tool_version="test", started_at=T0)
    try:
        metadata = archive_run(run_dir, dest=tmp_path / "final").metadata
    finally:
        writer.close()
    assert metadata["samples"] is None and metadata["run_status"] is None
    assert metadata["samples_reason"].startswith(f"cannot read {run_dir / 'run.duckdb'}: ")


def test_archiving_an_archive_counts_its_metadata_once(tmp_path: Path) -> None:
    first = archive_run(make_run_dir(tmp_path), dest=tmp_path / "final")
    second = archive_run(first.path, dest=tmp_path / "again")
    assert second.files == first.files == 5
    assert second.metadata["files"] == 5
    assert verify_archive(second.path).ok


def test_cli_verify_of_a_binary_checksums_file_exits_1(tmp_path: Path) -> None:
    result = archive_run(make_run_dir(tmp_path), dest=tmp_path / "final")
    (result.path / CHECKSUMS).write_bytes(b"\xff\xfe garbage")
    outcome = CliRunner().invoke(cli, ["archive", "--verify", str(result.path)])
    assert outcome.exit_code == 1
    assert outcome.output.startswith(f"Error: cannot read {result.path / CHECKSUMS} (")
