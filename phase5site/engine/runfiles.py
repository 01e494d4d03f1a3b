"""The plain files beside run.duckdb: load.log, observe.log, raw-metrics.txt, status.json.

Every line passes through ``redact`` with the run's secret values first, so a token that
slipped into an error message or a raw answer never reaches a file.

A write that fails (the disk is full, the folder went read-only) never raises into the run:
the first failure is kept in ``write_error`` (one line naming the file and the folder) and
the runner ends the run ``failed`` with it. A reserve file of ``RESERVE_BYTES`` is held
from the start and released when the run starts to end, so that even on a full disk the
last rows, the run's status and status.json can still be written.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any, TextIO

from phase5site.engine.clock import utc_timestamp
from phase5site.errors import RunError
from phase5site.runspec import redact

RESERVE_NAME = ".space-reserve"
RESERVE_BYTES = 4 * 1024 * 1024  # a run's end: its last rows and events, a checkpoint, status.json


def describe_write_error(error: BaseException, run_dir: Path, name: str | None = None) -> str | None:
    """One line for a failed write in ``run_dir``; None when ``error`` is not about writing.

    DuckDB reports a full disk as text (``Could not write file ...: No space left on
    device``), Python as ``OSError(ENOSPC)``.

    >>> describe_write_error(OSError(errno.ENOSPC, "No space left on device"), Path("results/r"), "load.log")
    'disk full: cannot write load.log in results/r (No space left on device); the rows stored before are kept'
    """
    what = name or "the run's files"
    if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or "No space left on device" in str(error):
        return f"disk full: cannot write {what} in {run_dir} (No space left on device); the rows stored before are kept"
    if isinstance(error, OSError):
        return f"cannot write {what} in {run_dir} ({error.strerror or error})"
    return None


class RunFiles:
    """Append-only text files of one run, line-buffered so a crash loses at most a line."""

    def __init__(self, run_dir: Path, secrets: frozenset[str]) -> None:
        self.run_dir = run_dir
        self.secrets = secrets
        self.write_error: str | None = None
        self.status_path = run_dir / "status.json"
        self.metrics_csv = run_dir / "metrics.csv"
        self._reserve = run_dir / RESERVE_NAME
        self._hold_reserve()
        self._load = self._open("load.log")
        self._observe = self._open("observe.log")
        self._raw = self._open("raw-metrics.txt")

    def _open(self, name: str) -> TextIO:
        return open(self.run_dir / name, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def _failed(self, name: str, error: OSError) -> None:
        if self.write_error is None:
            self.write_error = describe_write_error(error, self.run_dir, name)

    def _hold_reserve(self) -> None:
        try:
            with open(self._reserve, "wb") as reserve:
                reserve.write(bytes(RESERVE_BYTES))
        except OSError as error:
            self._failed(RESERVE_NAME, error)

    def release_reserve(self) -> None:
        """Give the reserve's room to the end of the run (idempotent)."""
        try:
            self._reserve.unlink(missing_ok=True)
        except OSError as error:
            self._failed(RESERVE_NAME, error)

    def clean(self, text: str) -> str:
        return redact(text, self.secrets) if self.secrets else text

    def _write(self, handle: TextIO, text: str) -> None:
        try:
            handle.write(text)
        except OSError as error:
            self._failed(Path(handle.name).name, error)

    def load(self, at: float, message: str) -> None:
        self._write(self._load, f"{utc_timestamp(at)} UTC {self.clean(message)}\n")

    def observe(self, at: float, message: str) -> None:
        self._write(self._observe, f"{utc_timestamp(at)} UTC {self.clean(message)}\n")

    def raw(self, at: float, header: str, answers: list[str]) -> None:
        """One timestamped block per scrape or query round, as the old raw-metrics.txt had."""
        if not answers:
            return
        self._write(self._raw, f"# ===== {utc_timestamp(at)} UTC {self.clean(header)} =====\n")
        for answer in answers:
            text = self.clean(answer)
            self._write(self._raw, text if text.endswith("\n") else text + "\n")

    def write_status(self, status: dict[str, Any]) -> bool:
        """Replace status.json atomically, so a reader never sees half a file: on a failed
        write the previous one stays whole and no temporary is left behind."""
        text = self.clean(json.dumps(status, indent=2, sort_keys=True, default=str))
        temporary = self.status_path.with_suffix(".json.tmp")
        try:
            temporary.write_text(text + "\n", encoding="utf-8")
            os.replace(temporary, self.status_path)
        except OSError as error:
            self._failed(self.status_path.name, error)
            try:
                temporary.unlink(missing_ok=True)
            except OSError:
                pass
            return False
        return True

    def write_json(self, name: str, data: dict[str, Any]) -> Path:
        path = self.run_dir / name
        try:
            path.write_text(
                self.clean(json.dumps(data, indent=2, sort_keys=True, default=str)) + "\n",
                encoding="utf-8",
            )
        except OSError as error:  # before the run: nothing to keep yet
            raise RunError(describe_write_error(error, self.run_dir, name) or str(error)) from error
        return path

    def close(self) -> None:
        for handle in (self._load, self._observe, self._raw):
            try:
                handle.close()
            except OSError as error:  # the last buffered line could not be flushed
                self._failed(Path(handle.name).name, error)
        self.release_reserve()
