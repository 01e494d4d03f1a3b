"""Freeze the evidence of a run: copy, checksum every file, describe, optionally seal.

Replaces ``phase5-archive.sh``. ``checksums.txt`` is in ``sha256sum`` format
(``<64 hex>  <relative path>``) so ``sha256sum -c checksums.txt`` works in the archive
folder without phase5site. ``archive-metadata.json`` is covered by the checksums;
``checksums.txt`` itself is the one file that is not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from phase5site.errors import ArchiveError

CHECKSUMS = "checksums.txt"
METADATA = "archive-metadata.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchiveResult:
    path: Path  # the archived run folder
    tar_path: Path | None
    files: int
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ArchiveCheck:
    """Differences between an archive and its ``checksums.txt``."""

    path: Path
    checked: int
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra)

    def format_text(self) -> str:
        lines = [f"CHANGED {name}" for name in self.changed]
        lines += [f"MISSING {name}" for name in self.missing]
        lines += [f"EXTRA   {name}" for name in self.extra]
        if self.ok:
            lines.append(f"{self.path}: all {self.checked} files match checksums.txt")
        else:
            lines.append(f"{self.path}: {len(self.changed)} changed, {len(self.missing)} missing, "
                         f"{len(self.extra)} extra of {self.checked} files in checksums.txt")
        return "\n".join(lines)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(folder: Path) -> list[str]:
    """Relative POSIX paths of every regular file under ``folder``, sorted, except checksums.txt."""
    names = []
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            relative = path.relative_to(folder).as_posix()
            if relative != CHECKSUMS:
                names.append(relative)
    return sorted(names)


def write_checksums(folder: Path) -> int:
    """Write ``checksums.txt`` for every file of ``folder``; returns the number of files."""
    names = list_files(folder)
    lines = [f"{sha256_file(folder / name)}  {name}\n" for name in names]
    (folder / CHECKSUMS).write_text("".join(lines), encoding="utf-8")
    return len(names)


def read_checksums(folder: Path) -> dict[str, str]:
    path = folder / CHECKSUMS
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ArchiveError(f"cannot read {path} ({getattr(error, 'strerror', None) or error})",
                           hint="Give the folder written by `phase5site archive` (or its .tar.gz).") from error
    expected: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        digest, separator, name = line.partition("  ")
        if not separator or len(digest) != 64:
            raise ArchiveError(f"{path}:{number}: not a sha256sum line: {line[:80]!r}",
                               hint="checksums.txt lines are '<64 hex>  <path>'.")
        expected[name.removeprefix("*")] = digest.lower()
    return expected


def verify_archive(path: Path) -> ArchiveCheck:
    """Recheck every checksum of an archive folder or ``.tar.gz``; report each difference."""
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        return _verify_tarball(path)
    if not path.is_dir():
        raise ArchiveError(f"{path} is neither an archive folder nor a .tar.gz",
                           hint="Give the folder under final-artifacts/ or the .tar.gz beside it.")
    expected = read_checksums(path)
    actual = set(list_files(path))
    changed = [name for name in sorted(expected) if name in actual and sha256_file(path / name) != expected[name]]
    missing = [name for name in sorted(expected) if name not in actual]
    extra = sorted(actual - set(expected))
    return ArchiveCheck(path=path, checked=len(expected), changed=changed, missing=missing, extra=extra)


def _verify_tarball(tar_path: Path) -> ArchiveCheck:
    with tempfile.TemporaryDirectory(prefix="phase5site-verify-") as scratch:
        try:
            with tarfile.open(tar_path, "r:gz") as archive:
                archive.extractall(scratch, filter="data")
        except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
            # A truncated .tar.gz ends in EOFError, which click would report as a bare "Aborted!".
            raise ArchiveError(f"cannot read {tar_path} ({error or type(error).__name__})",
                               hint="The tarball is damaged or incomplete; verify the archive folder instead.") from error
        try:
            tops = list(Path(scratch).iterdir())
            if len(tops) != 1 or not tops[0].is_dir():
                raise ArchiveError(f"{tar_path} does not hold exactly one run folder")
            check = verify_archive(tops[0])
        finally:
            for folder, _dirs, _files in os.walk(scratch):  # a read-only archive: let cleanup remove it
                os.chmod(folder, 0o755)
    return ArchiveCheck(path=tar_path, checked=check.checked, changed=check.changed,
                        missing=check.missing, extra=check.extra)


def archive_run(
    run_dir: Path,
    *,
    dest: Path = Path("final-artifacts"),
    readonly: bool = False,
    tar: bool = False,
    clock: Callable[[], float] = time.time,
) -> ArchiveResult:
    """Copy ``run_dir`` to ``dest/<run name>/`` with checksums and metadata.

    ``tar`` also writes ``dest/<run name>.tar.gz``; ``readonly`` removes every write
    permission (files, folders and the tarball), like ``chmod -R a-w``.
    """
    if not run_dir.is_dir():
        raise ArchiveError(f"run folder {run_dir} does not exist", hint="Runs are under results/; see `ls results`.")
    target = dest / run_dir.resolve().name
    if dest.resolve().is_relative_to(run_dir.resolve()):
        raise ArchiveError(f"--dest {dest} is inside the run folder {run_dir}",
                           hint="Archive next to results/, e.g. --dest final-artifacts.")
    if target.exists():
        raise ArchiveError(f"{target} already exists: an archive is never overwritten",
                           hint="Verify it with `phase5site archive --verify`, or choose another --dest.")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copytree(run_dir, target, symlinks=False)  # a .wal holds rows too: copy it
    except (OSError, shutil.Error) as error:
        raise ArchiveError(f"cannot copy {run_dir} to {target} ({error})",
                           hint="Check that --dest is a writable folder with free space.") from error
    try:
        (target / CHECKSUMS).unlink(missing_ok=True)  # archiving an archive: the old list is stale
        metadata = describe_run(run_dir, target, archived_at=clock())
        (target / METADATA).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        count = write_checksums(target)
        tar_path = _write_tarball(target) if tar else None
        if readonly:
            make_readonly(target)
            if tar_path is not None:
                make_readonly(tar_path)
    except OSError as error:
        raise ArchiveError(f"cannot finish the archive {target} ({error})",
                           hint=f"Remove the incomplete {target} and archive again.") from error
    return ArchiveResult(path=target, tar_path=tar_path, files=count, metadata=metadata)


def _write_tarball(folder: Path) -> Path:
    tar_path = folder.with_name(folder.name + ".tar.gz")
    with tarfile.open(tar_path, "w:gz") as archive:
        archive.add(folder, arcname=folder.name)
    return tar_path


def make_readonly(path: Path) -> None:
    """Remove write permission for everyone from ``path`` and, for a folder, all it holds."""
    write_bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    entries = [path] if path.is_file() else [*path.rglob("*"), path]  # the folder itself last
    for entry in entries:
        if not entry.is_symlink():
            entry.chmod(stat.S_IMODE(entry.stat().st_mode) & ~write_bits)


def describe_run(run_dir: Path, archived: Path, *, archived_at: float) -> dict[str, Any]:
    """Content of ``archive-metadata.json``; the verdict is None (with a reason) when unknown."""
    files = [name for name in list_files(archived) if name != METADATA]  # an archive's own is replaced
    samples, status, samples_reason = read_store(run_dir)
    verdict, verdict_reason = run_verdict(run_dir)
    return {
        "source": str(run_dir.resolve()),
        "archived_at": datetime.fromtimestamp(archived_at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run_status": status,
        "samples": samples,
        "samples_reason": samples_reason,
        "files": len(files) + 1,  # + archive-metadata.json itself
        "bytes": sum((archived / name).stat().st_size for name in files),
        "verdict": verdict,
        "verdict_reason": verdict_reason,
    }


def read_store(run_dir: Path) -> tuple[int | None, str | None, str | None]:
    """Samples (distinct phase and sample number: a sample stored for two sources counts
    once), the run's status, and why they are NA when the store cannot be read."""
    if not (run_dir / "run.duckdb").exists():
        return None, None, f"no run.duckdb in {run_dir}"
    from phase5site.store import RunReader

    try:
        with RunReader(run_dir) as reader:
            windows = {(row["phase"], row["sample_num"]) for row in reader.samples()}
            return len(windows), reader.effective_status(), None
    except Exception as error:  # noqa: BLE001 -- a locked or damaged store makes the count NA
        return None, None, f"cannot read {run_dir / 'run.duckdb'}: {type(error).__name__}: {error}"


def run_verdict(run_dir: Path) -> tuple[str | None, str | None]:
    """GO / NO-GO / INVALID / NOT-EVALUATED from ``phase5site.reporting.evaluate_run``, or None with the reason."""
    try:
        from phase5site.reporting import evaluate_run
    except ImportError:
        return None, "verdict not evaluated: phase5site.reporting is not available"
    try:
        evaluation = evaluate_run(run_dir)
    except Exception as error:  # noqa: BLE001 -- an archive must not fail for a report problem
        return None, f"verdict not evaluated: {type(error).__name__}: {error}"
    return _verdict_text(evaluation), None


def _verdict_text(evaluation: Any) -> str | None:
    for name in ("verdict", "go_no_go", "decision"):
        value = getattr(evaluation, name, None)
        if isinstance(value, str):
            return value
    go = getattr(evaluation, "go", None)
    if isinstance(go, bool):
        return "GO" if go else "NO-GO"
    return None
