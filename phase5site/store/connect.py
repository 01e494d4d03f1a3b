"""Opening run files: resolve paths, set modest resource limits, translate DuckDB errors."""

from __future__ import annotations

from pathlib import Path

import duckdb

from phase5site.errors import StoreError
from phase5site.store.schema import DB_FILENAME

# A run file is small and written by one process among others on the same machine; a
# bounded buffer pool keeps the runner's memory flat (DuckDB's default is 80 % of RAM).
_CONFIG = {"memory_limit": "256MB", "threads": 2}


def resolve_db_path(run_dir_or_db_path: Path | str) -> Path:
    """``run.duckdb`` inside a run folder, or the file itself when given one.

    Raises StoreError naming the path when neither exists.
    """
    path = Path(run_dir_or_db_path)
    if path.is_dir():
        path = path / DB_FILENAME
    if not path.is_file():
        raise StoreError(
            f"no run found at {run_dir_or_db_path}: {path} does not exist",
            hint="pass a run folder (e.g. results/<run-id>) that contains run.duckdb",
        )
    return path


def open_writable(db_path: Path) -> duckdb.DuckDBPyConnection:
    """Open (or create) a run file for the single writer."""
    try:
        return duckdb.connect(str(db_path), config=dict(_CONFIG))
    except duckdb.IOException as error:
        raise StoreError(
            f"cannot open {db_path} for writing: {error}",
            hint="another process may be writing this run; only one writer is allowed",
        ) from error


def open_readonly(db_path: Path) -> duckdb.DuckDBPyConnection:
    """Open a run file read-only; refuses while a writer holds it."""
    try:
        return duckdb.connect(str(db_path), read_only=True, config=dict(_CONFIG))
    except duckdb.IOException as error:
        text = str(error)
        if "lock" in text.lower():
            raise StoreError(
                f"{db_path} is being written by another process (the run is in progress)",
                hint="wait for the run to finish, or read its status.json for live progress",
            ) from error
        raise StoreError(
            f"cannot read {db_path}: {text}",
            hint="the file may be damaged or not a DuckDB database",
        ) from error
    except duckdb.ConnectionException as error:
        # Same process: DuckDB refuses a read-only connection beside the open writer.
        raise StoreError(
            f"{db_path} is open for writing in this process (the run is in progress)",
            hint="close the RunWriter before reading the run",
        ) from error
    except duckdb.Error as error:
        raise StoreError(
            f"cannot read {db_path}: {error}",
            hint="the file may be damaged or not a DuckDB database",
        ) from error
