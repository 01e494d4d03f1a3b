"""site_src/columns.md documents every CSV v3 column, in order, every stored server count, and
every client and generator-health column of the samples table."""

from __future__ import annotations

import re
from pathlib import Path

from phase5site.columns import CLIENT_COLUMNS, CSV_V3_COLUMNS, GENERATOR_COLUMNS, SERVER_COUNT_COLUMNS

PAGE = Path(__file__).resolve().parents[2] / "site_src" / "columns.md"


def test_every_csv_column_is_documented_in_order() -> None:
    rows = re.findall(r"^\| (\d+) \| `([a-z0-9_]+)` \|", PAGE.read_text(), re.MULTILINE)
    assert [name for _, name in rows] == list(CSV_V3_COLUMNS)
    assert [int(number) for number, _ in rows] == list(range(1, len(CSV_V3_COLUMNS) + 1))


def test_every_server_count_column_is_documented() -> None:
    text = PAGE.read_text()
    for column in SERVER_COUNT_COLUMNS:
        assert f"| `{column}` |" in text, column


def test_every_client_and_generator_column_is_documented_in_a_table() -> None:
    rows = [line for line in PAGE.read_text().splitlines() if line.startswith("| `")]
    for column in CLIENT_COLUMNS + GENERATOR_COLUMNS:
        assert any(f"`{column}`" in line.split(" | ")[0] for line in rows), column
