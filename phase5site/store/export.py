"""``export_run``: one call behind ``phase5site export`` (CSV v3 or Parquet)."""

from __future__ import annotations

from pathlib import Path

from phase5site.errors import UsageError
from phase5site.store.csv_v3 import export_csv
from phase5site.store.parquet import export_parquet
from phase5site.store.reader import RunReader

EXPORT_FORMATS: tuple[str, ...] = ("csv", "parquet")


def default_export_path(run_dir: Path, fmt: str) -> Path:
    """``<run_dir>/export/metrics.csv`` for csv, the folder ``<run_dir>/export`` for parquet.

    Never the run's own ``metrics.csv``, which the runner wrote sample by sample.
    """
    folder = Path(run_dir) / "export"
    return folder / "metrics.csv" if fmt == "csv" else folder


def export_run(run_dir: Path | str, fmt: str, out: Path | str | None = None) -> list[Path]:
    """Export a run's samples as CSV v3 (one file) or its tables as Parquet (a folder).

    Returns the files written. Raises StoreError when ``run_dir`` holds no run.
    """
    if fmt not in EXPORT_FORMATS:
        raise UsageError(
            f"unknown export format {fmt!r}", hint=f"use one of: {', '.join(EXPORT_FORMATS)}"
        )
    with RunReader(run_dir) as reader:
        target = Path(out) if out is not None else default_export_path(reader.run_dir, fmt)
        if fmt == "csv":
            export_csv(reader, target)
            return [target]
        return export_parquet(reader, target)
