"""site_src/columns.md documents every CSV v3 column, in order, and every stored server count."""

from __future__ import annotations

import re
from pathlib import Path

from phase5site.columns import CSV_V3_COLUMNS, SERVER_COUNT_COLUMNS

PAGE = Path(__file__).resolve().parents[2] / "site_src" / "columns.md"


def test_every_csv_column_is_documented_in_order() -> None:
    rows = re.findall(r"^\| (\d+) \| `([a-z0-9_]+)` \|", PAGE.read_text(), re.MULTILINE)
    assert [name for _, name in rows] == list(CSV_V3_COLUMNS)
    assert [int(number) for number, _ in rows] == list(range(1, len(CSV_V3_COLUMNS) + 1))


def test_every_server_count_column_is_documented() -> None:
    text = PAGE.read_text()
    for column in SERVER_COUNT_COLUMNS:
        assert f"| `{column}` |" in text, column
