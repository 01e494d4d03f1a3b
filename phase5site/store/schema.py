"""The DuckDB schema of a run file (``<run_dir>/run.duckdb``) and its version.

The version lives in ``meta(key, value)`` under ``schema_version``. ``migrate`` brings an
older file up to ``SCHEMA_VERSION`` one step at a time (``MIGRATIONS[v]`` turns v into
v + 1); a file written by a newer phase5site is refused rather than misread.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from phase5site.columns import (
    CLIENT_COLUMNS,
    CSV_V3_COLUMNS,
    GENERATOR_COLUMNS,
    SERVER_COUNT_COLUMNS,
    SERVER_WINDOW_COLUMNS,
    WINDOW_COLUMNS,
)
from phase5site.errors import StoreError

SCHEMA_VERSION = 4
DB_FILENAME = "run.duckdb"

RUN_STATUSES: tuple[str, ...] = ("running", "completed", "interrupted", "aborted", "failed")
EVENT_KINDS: tuple[str, ...] = (
    "run_start",
    "run_end",
    "phase_start",
    "phase_end",
    "drops",
    "breaker_trip",
    "na",
    "error",
    "signal",
    "fault",
    "warning",
)

# Sample columns held as JSON text (lists of [upper_bound, delta] pairs, or column -> reason).
JSON_SAMPLE_COLUMNS: frozenset[str] = frozenset(
    {"latency_buckets", "plugin_reload_buckets", "snapshot_buckets", "na_reasons"}
)
# Client counts are exact integers; every other numeric sample column is DOUBLE because
# server "counts" can be fractional (Prometheus increase() extrapolates).
INTEGER_SAMPLE_COLUMNS: frozenset[str] = frozenset(
    {
        "client_requests",
        "client_ok",
        "client_4xx",
        "client_5xx",
        "client_transport_errors",
        "dropped",
    }
)
CSV_SAMPLE_COLUMNS: tuple[str, ...] = tuple(c for c in CSV_V3_COLUMNS if c != "sample_num")
SAMPLE_COLUMNS: tuple[str, ...] = (
    ("phase", "sample_num", "source")
    + CSV_SAMPLE_COLUMNS
    + SERVER_COUNT_COLUMNS
    + CLIENT_COLUMNS
    + WINDOW_COLUMNS
    + GENERATOR_COLUMNS
    + SERVER_WINDOW_COLUMNS
)
BOOLEAN_SAMPLE_COLUMNS: frozenset[str] = frozenset({"generator_limited"})

REQUEST_COLUMNS: tuple[tuple[str, str], ...] = (
    ("phase", "VARCHAR"),
    ("seq", "BIGINT"),
    ("request_name", "VARCHAR"),
    ("intended_at", "DOUBLE"),
    ("sent_at", "DOUBLE"),
    ("latency_ms", "DOUBLE"),
    ("service_ms", "DOUBLE"),
    ("status", "SMALLINT"),
    ("outcome", "VARCHAR"),
    ("bytes", "INTEGER"),
    ("slot_free", "BOOLEAN"),  # schema 2
    ("worker", "SMALLINT"),  # schema 2
    ("error", "VARCHAR"),  # schema 4
    ("bytes_sent", "INTEGER"),  # schema 4
)
# Columns added by schema version 2 (generator health), for the 1 -> 2 migration.
V2_REQUEST_COLUMNS: tuple[tuple[str, str], ...] = (("slot_free", "BOOLEAN"), ("worker", "SMALLINT"))
# Columns added by schema version 4 (issue 14): a transport error's message (first line,
# redacted, at most 200 characters) and the bytes the client wrote for the request.
V4_REQUEST_COLUMNS: tuple[tuple[str, str], ...] = (("error", "VARCHAR"), ("bytes_sent", "INTEGER"))


def _sample_column_type(name: str) -> str:
    if name in ("phase", "source", "timestamp") or name in JSON_SAMPLE_COLUMNS:
        return "VARCHAR"
    if name == "sample_num":
        return "INTEGER"
    if name in INTEGER_SAMPLE_COLUMNS:
        return "BIGINT"
    if name in BOOLEAN_SAMPLE_COLUMNS:
        return "BOOLEAN"
    return "DOUBLE"


def _samples_ddl() -> str:
    columns = ",\n    ".join(f'"{c}" {_sample_column_type(c)}' for c in SAMPLE_COLUMNS)
    return (
        f"CREATE TABLE samples (\n    {columns},\n"
        "    PRIMARY KEY (phase, sample_num, source)\n)"
    )


def _requests_ddl() -> str:
    columns = ", ".join(f'"{name}" {sql_type}' for name, sql_type in REQUEST_COLUMNS)
    return f"CREATE TABLE requests ({columns})"


DDL_V1: tuple[str, ...] = (
    "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    """CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY, name VARCHAR, spec_path VARCHAR, spec_sha256 VARCHAR,
        source VARCHAR, started_at DOUBLE, ended_at DOUBLE, status VARCHAR,
        exit_reason VARCHAR, tool_version VARCHAR, spec_redacted VARCHAR, environment VARCHAR)""",
    """CREATE TABLE phases (
        name VARCHAR PRIMARY KEY, ordinal INTEGER, rate DOUBLE, concurrency INTEGER,
        planned_duration_s DOUBLE, samples INTEGER, interval_s DOUBLE, observe BOOLEAN,
        flags VARCHAR, started_at DOUBLE, ended_at DOUBLE, status VARCHAR,
        requests_sent BIGINT, dropped BIGINT, workers INTEGER, max_backlog BIGINT)""",
    _requests_ddl(),
    _samples_ddl(),
    """CREATE TABLE events (
        "at" DOUBLE, phase VARCHAR, kind VARCHAR, message VARCHAR, data VARCHAR)""",
)



def _v1_to_v2(con: duckdb.DuckDBPyConnection) -> None:
    """Generator health: per-request slot_free/worker, per-window generator columns, and
    the phase's worker count and backlog bound. Old rows read NULL (not measured)."""
    for name, sql_type in V2_REQUEST_COLUMNS:
        con.execute(f'ALTER TABLE requests ADD COLUMN "{name}" {sql_type}')
    for name in GENERATOR_COLUMNS:
        con.execute(f'ALTER TABLE samples ADD COLUMN "{name}" {_sample_column_type(name)}')
    con.execute("ALTER TABLE phases ADD COLUMN workers INTEGER")
    con.execute("ALTER TABLE phases ADD COLUMN max_backlog BIGINT")


def _v2_to_v3(con: duckdb.DuckDBPyConnection) -> None:
    """Exact server windows (issue 12): the interval each sample's server values cover.
    Old rows read NULL: their server values covered the nominal window as far as anyone
    knows (Prometheus mode then read up to one scrape interval before each edge)."""
    for name in SERVER_WINDOW_COLUMNS:
        con.execute(f'ALTER TABLE samples ADD COLUMN "{name}" {_sample_column_type(name)}')


def _v3_to_v4(con: duckdb.DuckDBPyConnection) -> None:
    """Per request, the transport error's message and the bytes sent (issue 14). Old rows
    read NULL: not recorded (the engine kept the error's kind only, and no request bytes)."""
    for name, sql_type in V4_REQUEST_COLUMNS:
        con.execute(f'ALTER TABLE requests ADD COLUMN "{name}" {sql_type}')


# MIGRATIONS[v] upgrades a version-v file to v + 1.
MIGRATIONS: dict[int, Callable[[duckdb.DuckDBPyConnection], None]] = {
    1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table of the current version in an empty database, in one transaction."""
    con.execute("BEGIN TRANSACTION")
    try:
        for statement in DDL_V1:
            con.execute(statement)
        con.execute(
            "INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
        )
        con.execute("COMMIT")
    except duckdb.Error:
        con.execute("ROLLBACK")
        raise


def schema_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The file's schema version, or None when it has no ``meta`` table (not a run file)."""
    tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "meta" not in tables:
        return None
    rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    return int(rows[0][0]) if rows else None


def check_version(version: int | None, where: str) -> None:
    """Refuse files that are not run files or that were written by a newer phase5site."""
    if version is None:
        raise StoreError(
            f"{where} is not a phase5site run file (no schema_version in table meta)",
            hint="pass a run folder created by 'phase5site run' or 'phase5site import'",
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where} has schema version {version}, newer than this phase5site "
            f"understands ({SCHEMA_VERSION})",
            hint="upgrade phase5site to read this run",
        )


def migrate(con: duckdb.DuckDBPyConnection, where: str = "run file") -> int:
    """Upgrade a writable run file to ``SCHEMA_VERSION``; returns the version it had.

    Each step runs in its own transaction and bumps ``meta.schema_version``, so an
    interrupted migration leaves a file at a consistent, known version.
    """
    found = schema_version(con)
    check_version(found, where)
    assert found is not None
    version = found
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise StoreError(
                f"{where} has schema version {version} and no migration to {version + 1}",
                hint="re-import the run's metrics.csv with 'phase5site import'",
            )
        con.execute("BEGIN TRANSACTION")
        step(con)
        con.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version + 1)]
        )
        con.execute("COMMIT")
        version += 1
    return found
