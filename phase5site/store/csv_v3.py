"""CSV v3 (``metrics.csv``): the old scripts' exact 41-column layout, one row per sample.

Cells: ``NA`` for None (and NaN); integers and integral floats as integers (``12``);
other floats as ``repr`` (shortest text that reads back to the same double, so nothing is
lost); strings as they are. Latencies stay in seconds, as stored in ``samples``.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from phase5site.columns import CSV_V3_COLUMNS
from phase5site.store.reader import RunReader

NA = "NA"
# Below 2**53 every integral double is an exact integer, so "12" reads back as 12.0 exactly.
_EXACT_INT_LIMIT = 2.0**53


def format_cell(value: Any) -> str:
    """One CSV v3 cell.

    >>> [format_cell(v) for v in (None, float("nan"), 3, 2.0, 0.003769041, 1e-05, "x")]
    ['NA', 'NA', '3', '2', '0.003769041', '1e-05', 'x']
    """
    if value is None:
        return NA
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return NA
        if value.is_integer() and abs(value) < _EXACT_INT_LIMIT:
            return str(int(value))
        return repr(value)
    return str(value)


def format_timestamp(epoch_s: float) -> str:
    """A window end as CSV v3 writes it: UTC ``YYYY-MM-DD HH:MM:SS`` (seconds truncated).

    >>> format_timestamp(1764014958.75)
    '2025-11-24 20:09:18'
    """
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def csv_v3_line(row: Mapping[str, Any]) -> str:
    """The CSV text of one sample (keys beyond CSV v3 are ignored, missing ones are NA)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(
        [format_cell(row.get(column)) for column in CSV_V3_COLUMNS]
    )
    return buffer.getvalue()


def header_line() -> str:
    return ",".join(CSV_V3_COLUMNS) + "\n"


def append_csv_row(path: Path | str, row: Mapping[str, Any]) -> None:
    """Append one sample to ``path``, writing the header first when the file is new/empty.

    Flushed and fsynced per row: a sample completes every few minutes, and the file must
    hold every completed sample even if the runner is killed right after.
    """
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", encoding="utf-8", newline="") as handle:
        if new:
            handle.write(header_line())
        handle.write(csv_v3_line(row))
        handle.flush()
        os.fsync(handle.fileno())


def write_csv(path: Path | str, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write a whole CSV v3 file (header + rows); returns the number of rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(header_line())
        for row in rows:
            handle.write(csv_v3_line(row))
            count += 1
    return count


def export_csv(reader: RunReader, path: Path | str, *, phase: str | None = None) -> int:
    """Write the run's samples as CSV v3 to ``path``; returns the number of rows.

    Uses the primary source (prometheus, else scrape, else import) so each sample appears
    once. Phases follow in run order and ``sample_num`` restarts at 1 in each phase, as
    the rows were appended during the run.
    """
    # With no metrics source at all, samples exist only as source 'none': export those.
    source = reader.primary_source()
    return write_csv(path, reader.samples(phase=phase, source=source))
