"""Finding run folders under a results directory."""

from __future__ import annotations

from pathlib import Path

from phase5site.store.schema import DB_FILENAME


def find_runs(results_dir: Path | str) -> list[Path]:
    """Run folders directly under ``results_dir`` (those holding ``run.duckdb``), by name.

    Run folder names end in a UTC timestamp, so name order is start order for one spec.
    A missing ``results_dir`` has no runs.
    """
    root = Path(results_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / DB_FILENAME).is_file())
