"""`phase5site export` and `phase5site import` through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import duckdb
from click.testing import CliRunner

from phase5site.cli import cli
from phase5site.columns import CSV_V3_COLUMNS
from phase5site.store import RequestRows

from .helpers import T0, begin, new_writer, request

FIXTURE = Path("/work/shared/fixtures/metasheet2/phase5-20251122-150047/metrics.csv")


def _run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "results" / "unit-20251124T160000Z"
    with new_writer(run_dir) as writer:
        begin(writer)
        rows = RequestRows()
        for i in range(30):
            request(rows, i, T0 + i / 10)
        writer.append_requests(rows)
        writer.add_sample({"phase": "baseline", "sample_num": 1, "source": "scrape",
                           "p99_latency": 0.012, "timestamp": "2025-11-24 16:00:05"})
        writer.finish("completed", ended_at=T0 + 5)
    return run_dir


def test_export_csv_to_the_default_place(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    result = CliRunner().invoke(cli, ["export", str(run_dir)])
    assert result.exit_code == 0, result.output
    out = run_dir / "export" / "metrics.csv"
    assert result.stdout.strip() == str(out)
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join(CSV_V3_COLUMNS) and len(lines) == 2


def test_export_parquet_writes_samples_and_requests(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    out = tmp_path / "pq"
    result = CliRunner().invoke(cli, ["export", str(run_dir), "--format", "parquet",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(Path(p).name for p in result.stdout.split()) == [
        "events.parquet", "phases.parquet", "requests.parquet", "samples.parquet"]
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM '{out / 'requests.parquet'}'").fetchone() == (30,)
    assert con.execute(f"SELECT p99_latency FROM '{out / 'samples.parquet'}'").fetchone() == (
        0.012,)


def test_export_of_a_missing_run_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: no run found at {tmp_path / 'nope'}")
    assert "Hint: pass a run folder" in result.stderr


def test_export_rejects_an_unknown_format_with_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", str(_run(tmp_path)), "--format", "xml"])
    assert result.exit_code == 2
    assert "'xml' is not one of 'csv', 'parquet'" in result.stderr


def test_import_prints_the_new_run_and_its_warnings(tmp_path: Path) -> None:
    results = tmp_path / "results"
    result = CliRunner().invoke(cli, ["import", str(FIXTURE), "--results-dir", str(results)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(results / "phase5-20251122-150047-import")
    assert "warning: unknown column 'mem_percent'" in result.stderr
    assert "warning: p99_latency is 0.5 in every row" in result.stderr


def test_import_of_a_missing_file_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "metrics.csv")])
    assert result.exit_code == 1
    assert f"Error: legacy metrics file not found: {tmp_path / 'metrics.csv'}" in result.stderr


def test_import_with_a_missing_metadata_file_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["import", str(FIXTURE), "--metadata",
                                      str(tmp_path / "m.json"), "--results-dir",
                                      str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "Error: metadata file not found" in result.stderr


def test_commands_are_documented_with_examples() -> None:
    for name in ("export", "import"):
        command = cli.commands[name]
        assert "Example:" in (command.help or "")
        assert all(p.help for p in command.params if hasattr(p, "help") and p.param_type_name
                   == "option")
