"""CSV v3: exact header, cell formatting, per-sample appends, export of a run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phase5site.columns import CSV_V3_COLUMNS
from phase5site.store import RunReader
from phase5site.store.csv_v3 import append_csv_row, export_csv, format_cell, format_timestamp

from .helpers import T0, begin, new_writer

FIXTURE_V3 = Path("/work/shared/fixtures/metasheet2/phase5-20251124-200917/metrics.csv")


def test_header_is_exactly_the_old_scripts_41_columns(tmp_path: Path) -> None:
    out = tmp_path / "metrics.csv"
    append_csv_row(out, {"sample_num": 1})
    header = out.read_text().splitlines()[0]
    assert header == FIXTURE_V3.read_text().splitlines()[0]
    assert len(header.split(",")) == 41 and header.split(",")[-1] == "sample_num"


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "NA"), (float("nan"), "NA"), (0, "0"), (53.0, "53"), (12, "12"),
     (0.003769041, "0.003769041"), (0.0007781216000000002, "0.0007781216000000002"),
     (1e-05, "1e-05"), (2.0**60, "1.152921504606847e+18"), ("2025-11-24 20:09:18",
                                                              "2025-11-24 20:09:18")],
)
def test_format_cell(value: object, text: str) -> None:
    assert format_cell(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_reads_back_exactly(value: float) -> None:
    assert float(format_cell(value)) == value


def test_format_timestamp_is_utc() -> None:
    assert format_timestamp(T0 + 15.9) == "2025-11-24 16:00:15"


def test_append_writes_the_header_once_and_na_for_missing(tmp_path: Path) -> None:
    out = tmp_path / "metrics.csv"
    append_csv_row(out, {"timestamp": "2025-11-24 16:00:05", "p99_latency": 0.25,
                         "sample_num": 1, "client_p99_ms": 250.0})  # extra keys ignored
    append_csv_row(out, {"timestamp": "2025-11-24 16:00:10", "p99_latency": None,
                         "sample_num": 2})
    with out.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(CSV_V3_COLUMNS)
    assert len(rows) == 3 and all(len(r) == 41 for r in rows)
    first = dict(zip(rows[0], rows[1]))
    assert (first["p99_latency"], first["sample_num"], first["rss_mb"]) == ("0.25", "1", "NA")
    assert dict(zip(rows[0], rows[2]))["p99_latency"] == "NA"


def test_export_csv_writes_primary_source_phases_in_order(tmp_path: Path) -> None:
    with new_writer(tmp_path / "r") as writer:
        begin(writer, "baseline", ordinal=2)
        begin(writer, "warmup", ordinal=1)
        for phase in ("baseline", "warmup"):
            for num in (1, 2):
                for source, p99 in (("scrape", 0.1), ("prometheus", 0.2)):
                    writer.add_sample({"phase": phase, "sample_num": num, "source": source,
                                       "p99_latency": p99, "timestamp": f"{phase}-{num}"})
    out = tmp_path / "out" / "metrics.csv"
    with RunReader(tmp_path / "r") as reader:
        assert export_csv(reader, out) == 4
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["timestamp"], r["sample_num"], r["p99_latency"]) for r in rows] == [
        ("warmup-1", "1", "0.2"), ("warmup-2", "2", "0.2"),
        ("baseline-1", "1", "0.2"), ("baseline-2", "2", "0.2")]


def test_export_of_a_run_without_metrics_source_keeps_its_samples(tmp_path: Path) -> None:
    with new_writer(tmp_path / "r") as writer:
        begin(writer)
        writer.add_sample({"phase": "baseline", "sample_num": 1, "source": "none",
                           "client_p99_ms": 12.0})
    with RunReader(tmp_path / "r") as reader:
        assert export_csv(reader, tmp_path / "m.csv") == 1
    row = (tmp_path / "m.csv").read_text().splitlines()[1].split(",")
    assert row[-1] == "1" and set(row[:-1]) == {"NA"}


def test_live_appends_and_a_later_export_are_byte_identical(tmp_path: Path) -> None:
    live = tmp_path / "metrics.csv"
    with new_writer(tmp_path / "r") as writer:
        begin(writer)
        for num in (1, 2, 3):
            row = {"phase": "baseline", "sample_num": num, "source": "scrape",
                   "timestamp": format_timestamp(T0 + 5 * num), "http_success_rate": 1 - num / 1e3,
                   "p95_latency": 0.0123 * num, "rss_mb": None if num == 2 else 88.5,
                   "request_rate": 80.0, "cache_hits_raw": 400.0 + num, "client_p99_ms": 9.5}
            writer.add_sample(row)
            append_csv_row(live, row)
    with RunReader(tmp_path / "r") as reader:
        export_csv(reader, tmp_path / "export.csv")
    assert (tmp_path / "export.csv").read_bytes() == live.read_bytes()
