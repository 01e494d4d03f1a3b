"""Legacy import: every real fixture, by header name, and its round trip through CSV v3."""

from __future__ import annotations

import csv
import json
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from phase5site.columns import CSV_V3_COLUMNS
from phase5site.errors import ImportFormatError
from phase5site.store import RunReader
from phase5site.store.csv_v3 import export_csv
from phase5site.store.legacy import import_legacy, import_legacy_run
from phase5site.store.legacy_csv import LEGACY_ALIASES

FIXTURES = Path("/work/shared/fixtures/metasheet2")
FIXTURE_CSVS = sorted(FIXTURES.glob("*/metrics.csv"))


def _csv_rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def test_the_fixture_corpus_covers_every_historic_layout() -> None:
    widths = {len(_csv_rows(p)[0]) for p in FIXTURE_CSVS}
    assert len(FIXTURE_CSVS) >= 45
    assert widths == {5, 11, 15, 18, 22, 30, 32, 39, 41}


@pytest.mark.parametrize("csv_path", FIXTURE_CSVS, ids=lambda p: p.parent.name)
def test_fixture_imports_and_survives_a_csv_v3_round_trip(csv_path: Path, tmp_path: Path) -> None:
    result = import_legacy_run(csv_path, results_dir=tmp_path / "results")
    original = _csv_rows(csv_path)
    header, body = original[0], [r for r in original[1:] if len(r) == len(original[0])]
    assert result.samples == len(body)
    exported = tmp_path / "v3.csv"
    with RunReader(result.run_dir) as reader:
        assert reader.run()["source"] == "import"
        assert reader.effective_status() == "completed"
        assert export_csv(reader, exported) == len(body)
        warning_messages = [e["message"] for e in reader.events("warning")]
    assert warning_messages == list(result.warnings)
    out = _csv_rows(exported)
    assert out[0] == list(CSV_V3_COLUMNS)
    present = {}
    for index, name in enumerate(header):
        target = LEGACY_ALIASES.get(name, name)
        if target in CSV_V3_COLUMNS:
            present[target] = index
    for source_row, out_row in zip(body, out[1:]):
        cells = dict(zip(CSV_V3_COLUMNS, out_row))
        for column in CSV_V3_COLUMNS:
            if column not in present:
                assert cells[column] == "NA", f"{column} absent from the layout must be NA"
                continue
            text = source_row[present[column]].strip()
            if text in ("", "NA"):
                assert cells[column] == "NA", column
            elif column == "timestamp":
                assert cells[column] == text
            else:
                assert float(cells[column]) == float(text), (column, text, cells[column])
    # The run folder keeps the evidence beside the database.
    assert (result.run_dir / "legacy-metrics.csv").read_bytes() == csv_path.read_bytes()
    assert _csv_rows(result.run_dir / "metrics.csv") == out


def _warnings_of(folder: str, tmp_path: Path) -> tuple[Path, list[str]]:
    result = import_legacy_run(FIXTURES / folder / "metrics.csv", results_dir=tmp_path)
    return result.run_dir, list(result.warnings)


def test_placeholders_and_unknown_columns_and_skipped_rows_are_warned(tmp_path: Path) -> None:
    run_dir, warnings = _warnings_of("phase5-20251122-150047", tmp_path)
    text = "\n".join(warnings)
    for column in ("http_success_rate", "p50_latency", "p95_latency", "p99_latency",
                   "raw_fallback_ratio"):
        assert f"{column} is " in text and "placeholder" in text
    assert "legacy column 'fallback_ratio' read as CSV v3 'raw_fallback_ratio'" in warnings
    assert sum("row skipped" in w for w in warnings) == 4  # 5-field rows of an older layout
    with RunReader(run_dir) as reader:
        samples = reader.samples()
        unknown = [e for e in reader.events("warning") if e["data"].get("column") == "mem_percent"]
        phase = reader.phases()[0]
    assert [s["sample_num"] for s in samples] == list(range(1, 13))
    assert samples[0]["p99_latency"] == 0.5, "stored as the file says"
    assert unknown[0]["data"]["values"] == ["0"] * 12
    assert (phase["name"], phase["interval_s"], phase["samples"]) == (
        "Phase 5 Production Baseline", 600.0, 12)


def test_real_measurements_raise_no_placeholder_warning(tmp_path: Path) -> None:
    _, warnings = _warnings_of("phase5-20251124-200917", tmp_path)
    assert not any("placeholder" in w for w in warnings)
    assert not any("cumulative" in w for w in warnings)


def test_cumulative_counters_are_warned(tmp_path: Path) -> None:
    _, warnings = _warnings_of("phase5-20251124-084325", tmp_path)
    cumulative = {w.split()[0] for w in warnings if "cumulative" in w}
    assert cumulative == {"raw_fallback_total", "fallback_cache", "http_adapter_ops",
                          "message_bus_rpc_attempts", "cache_get_attempts"}


def test_timestamps_are_read_in_the_metadata_zone(tmp_path: Path) -> None:
    run_dir, _ = _warnings_of("phase5-20251124-200917", tmp_path)
    with RunReader(run_dir) as reader:
        first = reader.samples()[0]
        run = reader.run()
    utc = datetime(2025, 11, 24, 12, 9, 18, tzinfo=UTC).timestamp()  # 20:09:18 at +08:00
    assert (first["timestamp"], first["window_end"], first["window_s"]) == (
        "2025-11-24 20:09:18", utc, 5.0)
    assert first["window_start"] == utc - 5.0
    assert run["started_at"] == datetime(2025, 11, 24, 12, 9, 17, tzinfo=UTC).timestamp()


def test_without_metadata_window_comes_from_timestamps(tmp_path: Path) -> None:
    lonely = tmp_path / "lonely" / "metrics.csv"
    lonely.parent.mkdir()
    shutil.copy(FIXTURES / "phase5-20251122-150047" / "metrics.csv", lonely)
    result = import_legacy_run(lonely, results_dir=tmp_path / "results")
    with RunReader(result.run_dir) as reader:
        phase = reader.phases()[0]
    assert (phase["name"], phase["interval_s"]) == ("imported", 600.0)
    assert any("read as UTC" in w for w in result.warnings)


def test_columns_are_mapped_by_name_not_position(tmp_path: Path) -> None:
    shuffled = tmp_path / "old" / "metrics.csv"
    shuffled.parent.mkdir()
    shuffled.write_text("sample_num,p99_latency,timestamp,rss_mb,http_success_rate\n"
                        "1,0.004,2025-11-24 10:00:00,,NA\n2,0.006,2025-11-24 10:00:05,51.5,1\n")
    run_dir = import_legacy(shuffled, results_dir=tmp_path / "results")
    with RunReader(run_dir) as reader:
        samples = reader.samples()
    assert [(s["sample_num"], s["p99_latency"], s["rss_mb"], s["http_success_rate"])
            for s in samples] == [(1, 0.004, None, None), (2, 0.006, 51.5, 1.0)]
    assert samples[0]["na_reasons"]["rss_mb"] == "empty cell in imported file"
    assert samples[0]["na_reasons"]["http_success_rate"] == "NA in imported file"
    assert samples[0]["na_reasons"]["cpu_percent"].startswith("column not in this 5-column")


def test_metadata_is_stored_redacted(tmp_path: Path) -> None:
    token = "eyJ" + secrets.token_urlsafe(24)
    password = secrets.token_urlsafe(12)
    folder = tmp_path / "phase5-x"
    folder.mkdir()
    shutil.copy(FIXTURES / "phase5-20251124-200917" / "metrics.csv", folder / "metrics.csv")
    (folder / "metadata.json").write_text(json.dumps({
        "phase": "baseline", "interval_seconds": 5, "start_time": "2025-11-24T20:09:17+08:00",
        "jwt": token, "note": token, "jwt_provided": True,
        "metrics_url": f"http://admin:{password}@localhost:8900/metrics/prom"}))
    run_dir = import_legacy(folder / "metrics.csv", results_dir=tmp_path / "results")
    with RunReader(run_dir) as reader:
        stored = reader.run()["spec_redacted"]
    assert stored["jwt"] == stored["note"] == "***" and stored["jwt_provided"] is True
    assert stored["metrics_url"] == "http://admin:***@localhost:8900/metrics/prom"
    for path in run_dir.iterdir():
        if path.name != "legacy-metrics.csv":
            data = path.read_bytes()
            assert token.encode() not in data and password.encode() not in data, path


def test_metadata_with_literal_newline_escapes_is_repaired(tmp_path: Path) -> None:
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("timestamp,p99_latency,sample_num\n2025-11-24 13:48:30,0.001,1\n")
    meta = FIXTURES / "phase5-prod-20251124-134821" / "metadata.json"
    result = import_legacy_run(csv_path, meta, tmp_path / "results")
    assert any("literal '\\n'" in w for w in result.warnings)
    with RunReader(result.run_dir) as reader:
        phase = reader.phases()[0]
    assert (phase["rate"], phase["concurrency"], phase["interval_s"]) == (60.0, 15, 10.0)
    assert phase["flags"] == {"COUNT_CACHE_MISS_AS_FALLBACK": False}


@pytest.mark.parametrize(
    ("content", "metadata", "message"),
    [
        ("", None, "is empty: no header line"),
        ("when,value\n1,2\n", None, "header has no 'timestamp' column"),
        ("timestamp,sample_num\n", "{not json", "is not valid JSON"),
        ("timestamp,sample_num\n", "[1, 2]", "holds a JSON list, not an object"),
    ],
)
def test_unreadable_input_is_an_import_format_error(
    tmp_path: Path, content: str, metadata: str | None, message: str
) -> None:
    csv_path = tmp_path / "metrics.csv"
    csv_path.write_text(content)
    meta_path = None
    if metadata is not None:
        meta_path = tmp_path / "meta.json"
        meta_path.write_text(metadata)
    with pytest.raises(ImportFormatError, match=message):
        import_legacy(csv_path, meta_path, tmp_path / "results")
    assert not (tmp_path / "results").exists(), "nothing is created for a refused import"


def test_importing_twice_makes_two_runs(tmp_path: Path) -> None:
    source = FIXTURES / "phase5-20251124-200917" / "metrics.csv"
    first = import_legacy(source, results_dir=tmp_path)
    second = import_legacy(source, results_dir=tmp_path)
    assert (first.name, second.name) == ("phase5-20251124-200917-import",
                                         "phase5-20251124-200917-import-2")


def test_a_failed_import_leaves_no_half_written_run(tmp_path: Path, monkeypatch) -> None:
    from phase5site.store.writer import RunWriter

    def broken(self, row):  # a disk error half way through the samples
        raise OSError("disk full")

    monkeypatch.setattr(RunWriter, "add_sample", broken)
    with pytest.raises(OSError, match="disk full"):
        import_legacy(FIXTURES / "phase5-20251124-200917" / "metrics.csv",
                      results_dir=tmp_path / "results")
    assert list((tmp_path / "results").iterdir()) == []
