"""Parsing a legacy ``metrics.csv`` of any historic layout (5 to 41 columns) by header name.

Columns are found by their header **name**, never their position. Two names of the
earlier layouts were renamed in CSV v3 and are read under the new name (``fallback_ratio``
→ ``raw_fallback_ratio``, ``fallback_total`` → ``raw_fallback_total``: before the
effective/raw split there was only the raw count). Other unknown columns are kept, raw,
and reported as warnings. ``NA`` and empty cells are None. A row whose field count differs
from the header's cannot be mapped by name, so it is skipped with a warning (one fixture
has 5-field rows of an older layout appended under an 11-column header).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from phase5site.columns import CSV_V3_COLUMNS
from phase5site.errors import ImportFormatError

LEGACY_ALIASES: dict[str, str] = {
    "fallback_ratio": "raw_fallback_ratio",
    "fallback_total": "raw_fallback_total",
}
_KNOWN = frozenset(CSV_V3_COLUMNS)


@dataclass
class LegacyTable:
    """A legacy CSV read by name. ``rows`` are keyed by CSV v3 column names."""

    path: Path
    header: list[str]
    column_map: dict[str, str]  # file header name -> CSV v3 name (known columns only)
    unknown_columns: list[str]
    rows: list[dict[str, object]] = field(default_factory=list)
    unknown_values: dict[str, list[str | None]] = field(default_factory=dict)
    line_numbers: list[int] = field(default_factory=list)
    na_reasons: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_cell(text: str) -> tuple[float | None, str | None]:
    """(value, why-NA) of one numeric cell.

    >>> parse_cell("0.003769041"), parse_cell("NA"), parse_cell(""), parse_cell(".444444")
    ((0.003769041, None), (None, 'NA in imported file'), (None, 'empty cell in imported \
file'), (0.444444, None))
    >>> parse_cell("oops")
    (None, "unreadable value 'oops' in imported file")
    """
    stripped = text.strip()
    if stripped == "":
        return None, "empty cell in imported file"
    if stripped.upper() == "NA":
        return None, "NA in imported file"
    try:
        value = float(stripped)
    except ValueError:
        return None, f"unreadable value {stripped!r} in imported file"
    if not math.isfinite(value):
        return None, f"non-finite value {stripped!r} in imported file"
    return value, None


def _map_header(table: LegacyTable) -> None:
    for name in table.header:
        target = LEGACY_ALIASES.get(name, name)
        if target in table.column_map.values():
            table.warnings.append(f"column {name!r} appears twice (as {target}); kept the first")
        elif target in _KNOWN:
            table.column_map[name] = target
            if target != name:
                table.warnings.append(f"legacy column {name!r} read as CSV v3 {target!r}")
        else:
            table.unknown_columns.append(name)
            table.unknown_values[name] = []
            table.warnings.append(
                f"unknown column {name!r} (not in CSV v3); its values are kept in this warning"
            )


def read_legacy_csv(path: Path) -> LegacyTable:
    """Read ``path`` into a LegacyTable; raises ImportFormatError if it has no usable header."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            records = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ImportFormatError(
            f"cannot read {path}: {error}", hint="pass a metrics.csv written by phase5-*.sh"
        ) from error
    if not records or not any(cell.strip() for cell in records[0]):
        raise ImportFormatError(
            f"{path} is empty: no header line",
            hint="a legacy metrics.csv starts with a header such as 'timestamp,...,sample_num'",
        )
    header = [cell.strip() for cell in records[0]]
    table = LegacyTable(path=path, header=header, column_map={}, unknown_columns=[])
    _map_header(table)
    if "timestamp" not in table.column_map.values():
        raise ImportFormatError(
            f"{path}: header has no 'timestamp' column (got: {', '.join(header)})",
            hint="is this a metrics.csv of the phase5 scripts?",
        )
    for line_number, record in enumerate(records[1:], start=2):
        _read_record(table, line_number, record)
    return table


def _read_record(table: LegacyTable, line_number: int, record: list[str]) -> None:
    if not any(cell.strip() for cell in record):
        return  # blank line
    if len(record) != len(table.header):
        table.warnings.append(
            f"line {line_number}: {len(record)} fields under a {len(table.header)}-column "
            f"header; row skipped (cannot map by name): {','.join(record)}"
        )
        return
    row: dict[str, object] = {}
    reasons: dict[str, str] = {}
    for name, text in zip(table.header, record):
        target = table.column_map.get(name)
        if target is None:
            if name in table.unknown_values:
                table.unknown_values[name].append(text)
            continue
        if target == "timestamp":
            row[target] = text.strip() or None
            continue
        value, why = parse_cell(text)
        row[target] = value
        if why is not None:
            reasons[target] = why
            if why.startswith(("unreadable", "non-finite")):
                table.warnings.append(f"line {line_number}: column {name!r}: {why}")
    table.rows.append(row)
    table.line_numbers.append(line_number)
    table.na_reasons.append(reasons)
