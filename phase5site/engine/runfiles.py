"""The plain files beside run.duckdb: load.log, observe.log, raw-metrics.txt, status.json.

Every line passes through ``redact`` with the run's secret values first, so a token that
slipped into an error message or a raw answer never reaches a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO

from phase5site.engine.clock import utc_timestamp
from phase5site.runspec import redact


class RunFiles:
    """Append-only text files of one run, line-buffered so a crash loses at most a line."""

    def __init__(self, run_dir: Path, secrets: frozenset[str]) -> None:
        self.run_dir = run_dir
        self.secrets = secrets
        self._load = self._open("load.log")
        self._observe = self._open("observe.log")
        self._raw = self._open("raw-metrics.txt")
        self.status_path = run_dir / "status.json"
        self.metrics_csv = run_dir / "metrics.csv"

    def _open(self, name: str) -> TextIO:
        return open(self.run_dir / name, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def clean(self, text: str) -> str:
        return redact(text, self.secrets) if self.secrets else text

    def load(self, at: float, message: str) -> None:
        self._load.write(f"{utc_timestamp(at)} UTC {self.clean(message)}\n")

    def observe(self, at: float, message: str) -> None:
        self._observe.write(f"{utc_timestamp(at)} UTC {self.clean(message)}\n")

    def raw(self, at: float, header: str, answers: list[str]) -> None:
        """One timestamped block per scrape or query round, as the old raw-metrics.txt had."""
        if not answers:
            return
        self._raw.write(f"# ===== {utc_timestamp(at)} UTC {self.clean(header)} =====\n")
        for answer in answers:
            text = self.clean(answer)
            self._raw.write(text if text.endswith("\n") else text + "\n")

    def write_status(self, status: dict[str, Any]) -> None:
        """Replace status.json atomically, so a reader never sees half a file."""
        text = self.clean(json.dumps(status, indent=2, sort_keys=True, default=str))
        temporary = self.status_path.with_suffix(".json.tmp")
        temporary.write_text(text + "\n", encoding="utf-8")
        os.replace(temporary, self.status_path)

    def write_json(self, name: str, data: dict[str, Any]) -> Path:
        path = self.run_dir / name
        path.write_text(
            self.clean(json.dumps(data, indent=2, sort_keys=True, default=str)) + "\n",
            encoding="utf-8",
        )
        return path

    def close(self) -> None:
        for handle in (self._load, self._observe, self._raw):
            handle.close()
