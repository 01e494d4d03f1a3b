"""Parquet export of a run's tables, written by DuckDB itself (``COPY ... TO``)."""

from __future__ import annotations

from pathlib import Path

from phase5site.store.reader import RunReader

# Tables exported, with their order: requests by schedule, samples by window.
_EXPORTS: tuple[tuple[str, str], ...] = (
    ("samples", "SELECT * FROM samples ORDER BY phase, sample_num, source"),
    ("requests", "SELECT * FROM requests ORDER BY phase, seq"),
    ("phases", "SELECT * FROM phases ORDER BY ordinal"),
    ("events", 'SELECT * FROM events ORDER BY "at"'),
)


def _sql_string(text: str) -> str:
    # COPY takes the file name as a literal, not a parameter: quote it SQL-style.
    return "'" + text.replace("'", "''") + "'"


def export_parquet(reader: RunReader, out_dir: Path | str) -> list[Path]:
    """Write ``samples.parquet``, ``requests.parquet``, ``phases.parquet`` and
    ``events.parquet`` (zstd) into ``out_dir``; returns the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, query in _EXPORTS:
        target = out / f"{name}.parquet"
        reader.con.execute(
            f"COPY ({query}) TO {_sql_string(str(target))} (FORMAT parquet, COMPRESSION zstd)"
        )
        written.append(target)
    return written
