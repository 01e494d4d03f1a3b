"""Read-only readers, the single-writer lock, and SIGKILL durability (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from phase5site.errors import StoreError
from phase5site.store import RunReader

from .helpers import new_writer

_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from phase5site.store import RequestRows
    sys.path.insert(0, {tests!r})
    from store.helpers import T0, begin, new_writer, request

    writer = new_writer(Path({run_dir!r}))
    begin(writer)
    rows = RequestRows()
    for flush in range(3):                      # three committed one-second batches
        for i in range(80):
            request(rows, flush * 80 + i, T0 + flush + i / 80)
        writer.append_requests(rows)
    writer.add_sample({{"phase": "baseline", "sample_num": 1, "source": "scrape",
                       "p99_latency": 0.125}})
    for i in range(40):                          # a fourth batch, never flushed
        request(rows, 240 + i, T0 + 3 + i / 80)
    print("ready", flush=True)
    time.sleep(120)                              # killed long before this ends
    """
)


def test_sigkill_keeps_every_flushed_row_and_reads_as_interrupted(tmp_path: Path) -> None:
    run_dir = tmp_path / "killed"
    tests_dir = str(Path(__file__).resolve().parents[1])
    code = _CHILD.format(tests=tests_dir, run_dir=str(run_dir))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    with RunReader(run_dir) as reader:
        assert reader.request_count() == 240, "flushed batches survive, the unflushed one is lost"
        assert reader.run()["status"] == "running"
        assert reader.effective_status() == "interrupted"
        phase = reader.phases()[0]
        assert (phase["status"], phase["effective_status"]) == ("running", "interrupted")
        assert reader.samples()[0]["p99_latency"] == 0.125
        assert len(reader.per_second("baseline")) == 3


def test_reader_is_read_only(tmp_path: Path) -> None:
    new_writer(tmp_path / "r").close()
    with RunReader(tmp_path / "r") as reader:
        with pytest.raises(duckdb.Error, match="read-only"):
            reader.con.execute("DELETE FROM runs")
        assert reader.run()["run_id"] == "r"


def test_two_readers_at_once_while_no_writer(tmp_path: Path) -> None:
    new_writer(tmp_path / "r").close()
    with RunReader(tmp_path / "r") as first, RunReader(tmp_path / "r") as second:
        assert first.run() == second.run()


def test_reader_in_another_process_is_refused_while_the_writer_holds_the_file(
    tmp_path: Path,
) -> None:
    writer = new_writer(tmp_path / "r")
    try:
        probe = subprocess.run(
            [sys.executable, "-c",
             "import sys\nfrom phase5site.store import RunReader\n"
             "from phase5site.errors import StoreError\n"
             f"try:\n    RunReader({str(tmp_path / 'r')!r})\n"
             "except StoreError as e:\n    print(e.message); sys.exit(7)\n"],
            capture_output=True, text=True, timeout=60,
        )
    finally:
        writer.close()
    assert probe.returncode == 7, probe.stderr
    assert "is being written by another process" in probe.stdout
    with RunReader(tmp_path / "r") as reader:  # and readable once the writer is gone
        assert reader.effective_status() == "interrupted"


def test_reader_in_the_writing_process_is_refused_until_the_writer_closes(
    tmp_path: Path,
) -> None:
    writer = new_writer(tmp_path / "r")
    with pytest.raises(StoreError, match="open for writing in this process"):
        RunReader(tmp_path / "r")
    writer.close()
    with RunReader(tmp_path / "r") as reader:
        assert reader.run()["run_id"] == "r"


def test_missing_run_is_a_store_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=f"no run found at {tmp_path / 'nope'}"):
        RunReader(tmp_path / "nope")
