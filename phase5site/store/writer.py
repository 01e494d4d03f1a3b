"""``RunWriter``: the single writer of a run file (the runner, or the legacy importer).

Every call commits on its own (DuckDB auto-commit writes the WAL before returning), so a
run killed with SIGKILL keeps everything up to the last flush and reopens cleanly; its
``runs.status`` is then still 'running', which readers report as 'interrupted'
(``RunReader.effective_status``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa

from phase5site.columns import gate_sample
from phase5site.errors import StoreError
from phase5site.store import queries
from phase5site.store.connect import open_writable
from phase5site.store.jsontext import dump_json
from phase5site.store.rows import REQUEST_ARROW_SCHEMA, RequestRows
from phase5site.store.schema import (
    DB_FILENAME,
    EVENT_KINDS,
    JSON_SAMPLE_COLUMNS,
    RUN_STATUSES,
    SAMPLE_COLUMNS,
    create_schema,
)

_SAMPLE_COLUMN_SET = frozenset(SAMPLE_COLUMNS)
_PHASE_END_STATUSES = ("completed", "interrupted", "aborted", "failed", "skipped")


def gated_sample(row: dict[str, Any]) -> dict[str, Any]:
    """The row with every impossible value NA and its reason in ``na_reasons``
    (``columns.gate_sample``): whoever wrote the row (a source, an import), the file never
    holds an infinite count or a ratio of 200 %.

    >>> gated_sample({"phase": "b", "error_rate": 2.0})["na_reasons"]
    {'error_rate': 'raw value 2.0 is above 1: a ratio of a part to its whole cannot be'}
    >>> "na_reasons" in gated_sample({"phase": "b", "error_rate": 0.5})
    False
    """
    if any(isinstance(row.get(c), str) and not _is_json(row[c]) for c in JSON_SAMPLE_COLUMNS):
        return row  # a caller's mistake, refused as such by _sample_value
    if isinstance(row.get("na_reasons"), str):
        row = {**row, "na_reasons": json.loads(row["na_reasons"])}
    return gate_sample(row)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _clean_number(value: Any) -> Any:
    # NaN is "cannot be measured": store NULL so every reader sees NA, never NaN.
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _sample_value(column: str, value: Any) -> Any:
    if column not in JSON_SAMPLE_COLUMNS:
        return _clean_number(value)
    try:
        return dump_json(value)
    except ValueError as error:
        raise StoreError(
            f"add_sample: column {column} takes a list/dict or JSON text (got {value!r:.80})"
        ) from error


class RunWriter:
    """Writes one run file. Create it with ``RunWriter.create``; close it (or use ``with``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, db_path: Path, run_id: str) -> None:
        self._con = con
        self.db_path = db_path
        self.run_dir = db_path.parent
        self.run_id = run_id

    @classmethod
    def create(
        cls,
        run_dir: Path,
        *,
        run_id: str,
        name: str,
        spec_path: str | None,
        spec_sha256: str | None,
        spec_redacted: dict[str, Any] | None,
        environment: dict[str, Any] | None,
        tool_version: str,
        source: str = "run",
        started_at: float | None,
    ) -> RunWriter:
        """Create ``run_dir`` (if needed) and a new ``run.duckdb`` in it; status 'running'.

        ``started_at`` is None only for imports whose file does not say when they ran.
        """
        if source not in ("run", "import"):
            raise StoreError(f"run source must be 'run' or 'import' (got {source!r})")
        run_dir = Path(run_dir)
        db_path = run_dir / DB_FILENAME
        if db_path.exists():
            raise StoreError(
                f"{db_path} already exists",
                hint="every run gets a new folder; choose another run directory",
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        con = open_writable(db_path)
        create_schema(con)
        con.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, NULL, 'running', NULL, ?, ?, ?)",
            [
                run_id,
                name,
                None if spec_path is None else str(spec_path),
                spec_sha256,
                source,
                started_at,
                tool_version,
                dump_json(spec_redacted),
                dump_json(environment),
            ],
        )
        return cls(con, db_path, run_id)

    # -- phases --------------------------------------------------------------------------

    def begin_phase(
        self,
        name: str,
        *,
        ordinal: int,
        rate: float | None,
        concurrency: int | None,
        planned_duration_s: float | None,
        samples: int | None,
        interval_s: float | None,
        observe: bool,
        flags: dict[str, Any] | None,
        started_at: float | None,
        workers: int | None = None,
        max_backlog: int | None = None,
    ) -> None:
        """Record a phase as 'running' from ``started_at``."""
        try:
            self._con.execute(
                "INSERT INTO phases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 'running', "
                "NULL, NULL, ?, ?)",
                [name, ordinal, rate, concurrency, planned_duration_s, samples, interval_s,
                 observe, dump_json(flags or {}), started_at, workers, max_backlog],
            )
        except duckdb.ConstraintException as error:
            raise StoreError(f"phase {name!r} was already begun in {self.db_path}") from error

    def end_phase(
        self,
        name: str,
        *,
        ended_at: float | None,
        status: str,
        requests_sent: int | None,
        dropped: int | None,
    ) -> None:
        """Close a phase with its final status and send/drop totals."""
        if status not in _PHASE_END_STATUSES:
            raise StoreError(
                f"phase status must be one of {', '.join(_PHASE_END_STATUSES)} (got {status!r})"
            )
        updated = self._con.execute(
            "UPDATE phases SET ended_at = ?, status = ?, requests_sent = ?, dropped = ? "
            "WHERE name = ? RETURNING name",
            [ended_at, status, requests_sent, dropped, name],
        ).fetchall()
        if not updated:
            raise StoreError(f"end_phase: phase {name!r} was never begun in {self.db_path}")

    # -- requests and samples --------------------------------------------------------------

    def append_requests(self, rows: RequestRows) -> int:
        """Insert the buffered rows in one statement, commit, then clear the buffer.

        Returns the number of rows written. On a database error the buffer is kept so the
        caller may retry or report it.
        """
        count = len(rows)
        if count == 0:
            return 0
        self.append_request_table(rows.to_arrow())
        rows.clear()
        return count

    def append_request_table(self, table: pa.Table) -> int:
        """Insert an Arrow table with ``REQUEST_ARROW_SCHEMA`` (a load worker's batch)."""
        if table.num_rows == 0:
            return 0
        if not table.schema.equals(REQUEST_ARROW_SCHEMA):
            raise StoreError(f"request batch has schema {table.schema}, expected {REQUEST_ARROW_SCHEMA}")
        self._con.register("_request_batch", table)
        try:
            # BY NAME: the batch's columns go to the columns of the same name, whatever
            # order ALTER TABLE gave a migrated file.
            self._con.execute("INSERT INTO requests BY NAME SELECT * FROM _request_batch")
        finally:
            self._con.unregister("_request_batch")
        return table.num_rows

    def last_sample_window(self, phase: str) -> tuple[int, float] | None:
        """(highest sample_num, its window_end) stored for ``phase``, or None: where the
        samples a stop cut short end (the engine stores the rest as one partial window)."""
        row = self._con.execute(
            "SELECT sample_num, window_end FROM samples WHERE phase = ? "
            "ORDER BY sample_num DESC LIMIT 1", [phase]).fetchone()
        return None if row is None or row[1] is None else (int(row[0]), float(row[1]))

    def add_sample(self, row: dict[str, Any]) -> None:
        """Insert one sample row. Keys are sample columns; a missing key is NULL (NA).

        JSON columns (bucket deltas, ``na_reasons``) take Python lists/dicts. Every value
        passes the gate first (``gated_sample``): an impossible one is stored NA with why.
        """
        unknown = sorted(set(row) - _SAMPLE_COLUMN_SET)
        if unknown:
            raise StoreError(
                f"add_sample: unknown sample column(s) {', '.join(unknown)}",
                hint="sample columns are CSV_V3_COLUMNS, SERVER_COUNT_COLUMNS, CLIENT_COLUMNS "
                "and window_start, window_end, window_s, na_reasons, phase, source",
            )
        for required in ("phase", "sample_num", "source"):
            if row.get(required) is None:
                raise StoreError(f"add_sample: {required!r} is required (got {row!r:.200})")
        row = gated_sample(row)
        names = list(row)
        values = [_sample_value(n, row[n]) for n in names]
        quoted = ", ".join(f'"{n}"' for n in names)
        marks = ", ".join("?" for _ in names)
        try:
            self._con.execute(f"INSERT INTO samples ({quoted}) VALUES ({marks})", values)
        except duckdb.ConstraintException as error:
            raise StoreError(
                f"sample {row['sample_num']} of phase {row['phase']!r} from source "
                f"{row['source']!r} is already stored"
            ) from error

    def client_window(self, phase: str, window_start: float, window_end: float) -> dict[str, Any]:
        """CLIENT_COLUMNS and generator_lag_p99_ms / generator_lag_max_ms over flushed rows
        intended in [window_start, window_end) (see queries.client_window); every key is a
        sample column, so the dict can go into ``add_sample`` as it is.

        Flush the engine's ``RequestRows`` first: rows still in the buffer are not counted.
        """
        return queries.client_window(self._con, phase, window_start, window_end)

    # -- events and the end of the run -----------------------------------------------------

    def add_event(
        self,
        kind: str,
        message: str,
        *,
        at: float,
        phase: str | None = None,
        data: dict[str, Any] | list[Any] | None = None,
    ) -> None:
        """Record an event; ``kind`` is one of ``schema.EVENT_KINDS``."""
        if kind not in EVENT_KINDS:
            raise StoreError(
                f"unknown event kind {kind!r}", hint=f"use one of: {', '.join(EVENT_KINDS)}"
            )
        self._con.execute(
            'INSERT INTO events ("at", phase, kind, message, data) VALUES (?, ?, ?, ?, ?)',
            [at, phase, kind, message, dump_json(data)],
        )

    def finish(
        self, status: str, *, ended_at: float | None, exit_reason: str | None = None
    ) -> None:
        """Set the run's final status and end time."""
        if status not in RUN_STATUSES or status == "running":
            allowed = ", ".join(s for s in RUN_STATUSES if s != "running")
            raise StoreError(f"finish: status must be one of {allowed} (got {status!r})")
        self._con.execute(
            "UPDATE runs SET status = ?, ended_at = ?, exit_reason = ? WHERE run_id = ?",
            [status, ended_at, exit_reason, self.run_id],
        )

    def close(self) -> None:
        """Checkpoint and release the file; readers can open it afterwards."""
        if self._con is not None:
            self._con.close()
            self._con = None  # type: ignore[assignment]

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
