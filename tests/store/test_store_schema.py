"""Schema creation, version bookkeeping and refusal of files the store cannot read."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest

from phase5site.columns import (
    CLIENT_COLUMNS,
    CSV_V3_COLUMNS,
    GENERATOR_COLUMNS,
    SERVER_COUNT_COLUMNS,
    SERVER_WINDOW_COLUMNS,
)
from phase5site.errors import StoreError
from phase5site.store import SCHEMA_VERSION, RunReader, migrate
from phase5site.store.schema import MIGRATIONS, V2_REQUEST_COLUMNS, V4_REQUEST_COLUMNS, schema_version

from .helpers import new_writer


def test_new_file_has_every_table_and_the_current_version(tmp_path: Path) -> None:
    new_writer(tmp_path / "run").close()
    con = duckdb.connect(str(tmp_path / "run" / "run.duckdb"), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == {"meta", "runs", "phases", "requests", "samples", "events"}
    assert schema_version(con) == SCHEMA_VERSION == 4
    request_columns = [r[0] for r in con.execute("DESCRIBE requests").fetchall()]
    sample_columns = [r[0] for r in con.execute("DESCRIBE samples").fetchall()]
    con.close()
    expected = (
        ["phase", "sample_num", "source"]
        + [c for c in CSV_V3_COLUMNS if c != "sample_num"]
        + list(SERVER_COUNT_COLUMNS)
        + list(CLIENT_COLUMNS)
        + ["window_start", "window_end", "window_s", "na_reasons"]
        + list(GENERATOR_COLUMNS)
        + list(SERVER_WINDOW_COLUMNS)
    )
    assert sample_columns == expected
    assert request_columns[-4:] == ["slot_free", "worker", "error", "bytes_sent"]


def test_migrate_is_a_no_op_on_a_current_file(tmp_path: Path) -> None:
    new_writer(tmp_path / "run").close()
    con = duckdb.connect(str(tmp_path / "run" / "run.duckdb"))
    assert migrate(con) == SCHEMA_VERSION
    assert schema_version(con) == SCHEMA_VERSION
    con.close()


def _as_version_1(con: duckdb.DuckDBPyConnection, version: int = 1) -> None:
    """Turn a new file back into what schema version 1 wrote (no generator-health columns,
    no server-window columns, no request error/bytes_sent)."""
    for name, _ in V4_REQUEST_COLUMNS:
        con.execute(f'ALTER TABLE requests DROP COLUMN "{name}"')
    for name in SERVER_WINDOW_COLUMNS:
        con.execute(f'ALTER TABLE samples DROP COLUMN "{name}"')
    for name, _ in V2_REQUEST_COLUMNS:
        con.execute(f'ALTER TABLE requests DROP COLUMN "{name}"')
    for name in GENERATOR_COLUMNS:
        con.execute(f'ALTER TABLE samples DROP COLUMN "{name}"')
    con.execute("ALTER TABLE phases DROP COLUMN workers")
    con.execute("ALTER TABLE phases DROP COLUMN max_backlog")
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version)])


def test_migrate_runs_registered_steps_in_order(tmp_path: Path, monkeypatch) -> None:
    # A pretend older file (version 0) with a registered step 0 -> 1, then the real 1 -> 2.
    new_writer(tmp_path / "run").close()
    con = duckdb.connect(str(tmp_path / "run" / "run.duckdb"))
    _as_version_1(con, version=0)
    monkeypatch.setitem(
        MIGRATIONS, 0, lambda c: c.execute("INSERT INTO meta VALUES ('migrated', 'yes')")
    )
    assert migrate(con) == 0
    assert schema_version(con) == 4
    assert con.execute("SELECT value FROM meta WHERE key = 'migrated'").fetchone() == ("yes",)
    con.close()


def test_a_version_1_file_gains_the_generator_columns_as_null(tmp_path: Path) -> None:
    writer = new_writer(tmp_path / "run")
    writer.begin_phase("p", ordinal=0, rate=1, concurrency=1, planned_duration_s=1, samples=0,
                       interval_s=None, observe=False, flags={}, started_at=1.0)
    writer.add_sample({"phase": "p", "sample_num": 1, "source": "none"})
    writer.close()
    con = duckdb.connect(str(tmp_path / "run" / "run.duckdb"))
    _as_version_1(con)
    con.execute("INSERT INTO requests VALUES ('p', 0, 'h', 1.0, 1.0, 2.0, 2.0, 200, 'ok', 5)")
    assert migrate(con) == 1
    assert con.execute("SELECT slot_free, worker FROM requests").fetchall() == [(None, None)]
    assert con.execute("SELECT generator_limited, generator_lag_p99_ms FROM samples").fetchall() == [(None, None)]
    assert con.execute("SELECT workers, max_backlog FROM phases").fetchall() == [(None, None)]
    con.close()


SCHEMA2_RUN = Path(__file__).parent / "fixtures" / "schema2-run.duckdb.gz"


def _schema2_copy(tmp_path: Path) -> Path:
    """A real run file written by phase5site at schema 2 (the commit before schema 3, by
    fixtures/make_schema2_run.py.txt: embedded target, scrape mode, a warmup and 2 samples)."""
    run_dir = tmp_path / "schema2-run"
    run_dir.mkdir()
    (run_dir / "run.duckdb").write_bytes(gzip.decompress(SCHEMA2_RUN.read_bytes()))
    return run_dir


def test_a_real_schema_2_file_reads_unmigrated_with_server_windows_na(tmp_path: Path) -> None:
    run_dir = _schema2_copy(tmp_path)
    with RunReader(run_dir) as reader:
        assert schema_version(reader.con) == 2
        rows = reader.samples(phase="baseline")
        assert [(r["sample_num"], r["source"], r["server_requests"]) for r in rows] == [
            (1, "scrape", 10.0), (2, "scrape", 10.0)]
        assert all(r[c] is None for r in rows for c in SERVER_WINDOW_COLUMNS)


def test_a_real_schema_2_file_migrates_to_3_keeping_every_row(tmp_path: Path) -> None:
    run_dir = _schema2_copy(tmp_path)
    con = duckdb.connect(str(run_dir / "run.duckdb"))
    before = {table: con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
              for table in ("runs", "phases", "requests", "events")}
    samples_before = con.execute("SELECT * FROM samples ORDER BY phase, sample_num").fetchall()
    assert migrate(con) == 2
    assert schema_version(con) == 4
    for table, rows in before.items():
        if table == "requests":  # schema 4 adds two columns, NULL for the old rows
            after = con.execute("SELECT * EXCLUDE (error, bytes_sent) FROM requests ORDER BY ALL").fetchall()
            assert after == rows
            continue
        assert con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() == rows, table
    columns = [r[0] for r in con.execute("DESCRIBE samples").fetchall()]
    assert columns[-3:] == list(SERVER_WINDOW_COLUMNS)
    after = con.execute("SELECT * FROM samples ORDER BY phase, sample_num").fetchall()
    assert [row[:-3] for row in after] == samples_before
    assert [row[-3:] for row in after] == [(None, None, None)] * len(samples_before)
    con.close()
    with RunReader(run_dir) as reader:  # and the migrated file reads like a new one
        assert reader.effective_status() == "completed"
        assert len(reader.samples(phase="baseline")) == 2


SCHEMA3_RUN = Path(__file__).parent / "fixtures" / "schema3-run.duckdb.gz"


def _schema3_copy(tmp_path: Path) -> Path:
    """A real run file written by phase5site at schema 3 (commit 7a7667c, by
    fixtures/make_schema3_run.py.txt: embedded target, a latency stall past the 0.3 s
    timeout in the baseline, so it holds stored timeouts without their messages)."""
    run_dir = tmp_path / "schema3-run"
    run_dir.mkdir()
    (run_dir / "run.duckdb").write_bytes(gzip.decompress(SCHEMA3_RUN.read_bytes()))
    return run_dir


def _timeouts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    rows = con.execute("SELECT request_name, count(*) FROM requests WHERE outcome = 'timeout' "
                       "AND phase = 'baseline' GROUP BY ALL").fetchall()
    return {name: n for name, n in rows}


def test_a_real_schema_3_file_reads_unmigrated_with_messages_and_bytes_sent_na(tmp_path: Path) -> None:
    run_dir = _schema3_copy(tmp_path)
    with RunReader(run_dir) as reader:
        assert schema_version(reader.con) == 3
        timeouts = _timeouts(reader.con)
        stats = reader.endpoint_stats("baseline")
    assert sum(timeouts.values()) > 0  # the fixture holds transport errors
    for row in stats:
        assert row["bytes_sent"] is None and row["bytes_sent_na"] == "not recorded (a run file before schema 4)"
        groups = {t["kind"]: t for t in row["transport"]}
        assert {k: t["count"] for k, t in groups.items()} == ({"timeout": timeouts[row["name"]]}
                                                             if row["name"] in timeouts else {})
        for group in groups.values():
            assert group["message"].startswith("NA: not recorded") and group["distinct_messages"] is None


def test_a_real_schema_3_file_migrates_to_4_with_old_rows_not_recorded(tmp_path: Path) -> None:
    run_dir = _schema3_copy(tmp_path)
    con = duckdb.connect(str(run_dir / "run.duckdb"))
    before = {table: con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
              for table in ("runs", "phases", "requests", "samples", "events")}
    assert migrate(con) == 3
    assert schema_version(con) == 4
    for table, rows in before.items():
        if table != "requests":
            assert con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() == rows, table
    columns = [r[0] for r in con.execute("DESCRIBE requests").fetchall()]
    assert columns[-2:] == ["error", "bytes_sent"]
    after = con.execute("SELECT * FROM requests ORDER BY ALL").fetchall()
    assert [row[:-2] for row in after] == before["requests"]
    assert {row[-2:] for row in after} == {(None, None)}
    timeouts = _timeouts(con)
    sent = dict(con.execute("SELECT request_name, count(sent_at) FROM requests WHERE phase = 'baseline' "
                            "GROUP BY ALL").fetchall())
    con.close()
    with RunReader(run_dir) as reader:  # the migrated file: columns there, old rows NULL
        stats = reader.endpoint_stats("baseline")
    kinds = {row["name"]: {t["kind"]: t["count"] for t in row["transport"]} for row in stats}
    assert {name: groups.get("timeout") for name, groups in kinds.items() if groups} == timeouts
    for row in stats:  # every old sent row lacks its count
        n = sent[row["name"]]
        assert row["bytes_sent"] is None
        assert row["bytes_sent_na"] == (f"not recorded for {n:,} of {n:,} sent requests "
                                        "(the httpx client does not report the bytes it writes; rows from before schema 4 have none)")
        for group in row["transport"]:
            assert group["message"] == "NA: no message recorded (the client gave none, or the rows predate schema 4)" and group["distinct_messages"] == 0


def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    new_writer(tmp_path / "run").close()
    con = duckdb.connect(str(tmp_path / "run" / "run.duckdb"))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreError, match="schema version 99, newer"):
        RunReader(tmp_path / "run")


def test_a_duckdb_file_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).close()
    with pytest.raises(StoreError, match="not a phase5site run file"):
        RunReader(other)


def test_a_damaged_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "run.duckdb").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot read"):
        RunReader(tmp_path)


def test_a_second_run_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    new_writer(tmp_path / "run").close()
    with pytest.raises(StoreError, match="already exists"):
        new_writer(tmp_path / "run")
