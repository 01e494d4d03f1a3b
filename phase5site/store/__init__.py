"""The run store: one DuckDB file per run (``<run_dir>/run.duckdb``), one writer, many readers.

Public API (see docs-dev/CONTRACTS.md): ``RunWriter``, ``RequestRows``, ``RunReader``,
``find_runs``, the CSV v3 helpers ``append_csv_row`` / ``export_csv`` / ``format_timestamp``,
``export_parquet``, ``load_span_s`` (the span a phase's rates are over), the legacy importer ``import_legacy`` (``import_legacy_run`` also returns
the warnings), Quantile arithmetic lives in ``phase5site.quantiles``.
"""

from __future__ import annotations

from phase5site.store.csv_v3 import append_csv_row, export_csv, format_timestamp
from phase5site.store.endpoints import load_span_s
from phase5site.store.legacy import ImportResult, import_legacy, import_legacy_run
from phase5site.store.parquet import export_parquet
from phase5site.store.reader import RunReader
from phase5site.store.rows import RequestRows
from phase5site.store.runs import find_runs
from phase5site.store.schema import DB_FILENAME, SCHEMA_VERSION, migrate
from phase5site.store.writer import RunWriter

__all__ = [
    "DB_FILENAME",
    "SCHEMA_VERSION",
    "ImportResult",
    "RequestRows",
    "RunReader",
    "RunWriter",
    "append_csv_row",
    "export_csv",
    "export_parquet",
    "find_runs",
    "format_timestamp",
    "import_legacy",
    "import_legacy_run",
    "load_span_s",
    "migrate",
]
