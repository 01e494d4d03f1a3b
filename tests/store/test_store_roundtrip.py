"""Writer -> real DuckDB file -> reader, for every table and every public reader call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from phase5site.errors import StoreError
from phase5site.store import RequestRows, RunReader, find_runs

from .helpers import T0, begin, new_writer, request


def _write_small_run(run_dir: Path) -> None:
    writer = new_writer(run_dir)
    begin(writer, "warmup", ordinal=1, observe=False, samples=None, interval_s=None)
    begin(writer, "baseline", ordinal=2, started_at=T0 + 10)
    rows = RequestRows()
    request(rows, 0, T0 + 0.5, latency_ms=3.0, phase="warmup")
    request(rows, 0, T0 + 10.5, latency_ms=30.0)
    request(rows, 1, T0 + 11.0, "http_5xx", latency_ms=10.0)
    request(rows, 2, T0 + 11.5, "dropped")
    request(rows, 3, T0 + 12.0, "timeout", latency_ms=5000.0)
    assert writer.append_requests(rows) == 5
    assert len(rows) == 0, "the buffer is cleared after each flush"
    writer.add_sample(
        {
            "phase": "baseline",
            "sample_num": 1,
            "source": "scrape",
            "timestamp": "2025-11-24 16:00:15",
            "p99_latency": 0.25,
            "http_success_rate": None,
            "server_requests": 40.0,
            "latency_buckets": [[0.1, 30], [float("inf"), 40]],
            "na_reasons": {"http_success_rate": "no requests counted"},
            "window_start": T0 + 10,
            "window_end": T0 + 15,
            "window_s": 5.0,
            **writer.client_window("baseline", T0 + 10, T0 + 15),
        }
    )
    writer.add_sample({"phase": "baseline", "sample_num": 1, "source": "prometheus",
                       "p99_latency": float("nan")})
    writer.add_event("breaker_trip", "error rate 50% > 2%", at=T0 + 12, phase="baseline",
                     data={"error_rate": 0.5})
    writer.add_event("run_start", "started", at=T0)
    writer.end_phase("warmup", ended_at=T0 + 10, status="completed", requests_sent=1, dropped=0)
    writer.end_phase("baseline", ended_at=T0 + 15, status="aborted", requests_sent=3, dropped=1)
    writer.finish("aborted", ended_at=T0 + 15, exit_reason="breaker")
    writer.close()


def test_round_trip_of_every_table(tmp_path: Path) -> None:
    _write_small_run(tmp_path / "r1")
    with RunReader(tmp_path / "r1") as reader:
        run = reader.run()
        assert (run["run_id"], run["status"], run["exit_reason"], run["source"]) == (
            "r1", "aborted", "breaker", "run")
        assert run["spec_redacted"]["target"]["auth"]["bearer"] == "***"
        assert run["ended_at"] == T0 + 15
        assert [p["name"] for p in reader.phases()] == ["warmup", "baseline"]
        baseline = reader.phases()[1]
        assert baseline["flags"] == {"COUNT_CACHE_MISS_AS_FALLBACK": False}
        assert (baseline["status"], baseline["requests_sent"], baseline["dropped"]) == (
            "aborted", 3, 1)
        assert baseline["effective_status"] == "aborted"
        assert reader.request_count() == 5
        assert reader.request_count("baseline") == 4
        assert reader.outcome_counts("baseline") == {
            "ok": 1, "http_4xx": 0, "http_5xx": 1, "timeout": 1, "connect_error": 0,
            "body_too_large": 0, "dropped": 1}
        # The dropped request (no wait recorded) ranks as the largest sent latency, 5000 ms.
        np.testing.assert_array_equal(reader.client_latencies_ms(), [3.0, 10.0, 30.0, 5000.0, 5000.0])
        np.testing.assert_array_equal(reader.client_latencies_ms("baseline"), [10.0, 30.0, 5000.0, 5000.0])
        np.testing.assert_array_equal(reader.sent_latencies_ms("baseline"), [10.0, 30.0, 5000.0])
        assert reader.dropped_waits_ms("baseline") == [None]
        assert reader.primary_source() == "prometheus"
        scrape = reader.samples(source="scrape")[0]
        assert scrape["latency_buckets"] == [[0.1, 30], ["+Inf", 40]]
        assert scrape["na_reasons"] == {"http_success_rate": "no requests counted"}
        assert scrape["http_success_rate"] is None and scrape["p99_latency"] == 0.25
        assert (scrape["client_requests"], scrape["dropped"], scrape["client_p99_ms"]) == (
            4, 1, 5000.0)
        assert reader.samples(source="prometheus")[0]["p99_latency"] is None, "NaN stored as NA"
        assert [e["kind"] for e in reader.events()] == ["run_start", "breaker_trip"]
        assert reader.events("breaker_trip")[0]["data"] == {"error_rate": 0.5}
        assert reader.effective_status() == "aborted"


def test_an_unfinished_run_reads_as_interrupted(tmp_path: Path) -> None:
    new_writer(tmp_path / "r").close()
    with RunReader(tmp_path / "r" / "run.duckdb") as reader:
        assert reader.run()["status"] == "running"
        assert reader.effective_status() == "interrupted"
        assert reader.primary_source() is None
        assert reader.client_latencies_ms().size == 0
        assert reader.per_second() == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda w: w.add_sample({"phase": "p", "sample_num": 1, "source": "scrape",
                                 "p99_latncy": 1.0}), "unknown sample column.*p99_latncy"),
        (lambda w: w.add_sample({"phase": "p", "source": "scrape"}), "'sample_num' is required"),
        (lambda w: w.add_event("oops", "x", at=T0), "unknown event kind 'oops'"),
        (lambda w: w.finish("running", ended_at=T0), "status must be one of"),
        (lambda w: w.end_phase("never", ended_at=T0, status="completed", requests_sent=0,
                               dropped=0), "never begun"),
    ],
)
def test_writer_rejects_bad_input_by_name(tmp_path: Path, call, message: str) -> None:
    with new_writer(tmp_path / "r") as writer:
        with pytest.raises(StoreError, match=message):
            call(writer)


def test_duplicate_sample_and_phase_are_store_errors(tmp_path: Path) -> None:
    with new_writer(tmp_path / "r") as writer:
        begin(writer)
        with pytest.raises(StoreError, match="already begun"):
            begin(writer)
        writer.add_sample({"phase": "baseline", "sample_num": 1, "source": "scrape"})
        with pytest.raises(StoreError, match="already stored"):
            writer.add_sample({"phase": "baseline", "sample_num": 1, "source": "scrape"})


def test_unknown_outcome_is_refused_at_append() -> None:
    with pytest.raises(StoreError, match="unknown request outcome 'fine'"):
        RequestRows().append("p", 0, "h", T0, T0, 1.0, 1.0, 200, "fine", 1)


def test_find_runs_lists_only_folders_with_a_run_file(tmp_path: Path) -> None:
    new_writer(tmp_path / "b-run").close()
    new_writer(tmp_path / "a-run").close()
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "README.md").write_text("x")
    assert find_runs(tmp_path) == [tmp_path / "a-run", tmp_path / "b-run"]
    assert find_runs(tmp_path / "missing") == []


def test_empty_flush_writes_nothing(tmp_path: Path) -> None:
    with new_writer(tmp_path / "r") as writer:
        assert writer.append_requests(RequestRows()) == 0
    with RunReader(tmp_path / "r") as reader:
        assert reader.request_count() == 0


def test_json_columns_take_text_only_if_it_is_json(tmp_path: Path) -> None:
    with new_writer(tmp_path / "r") as writer:
        writer.add_sample({"phase": "p", "sample_num": 1, "source": "scrape",
                           "na_reasons": '{"rss_mb": "absent"}'})
        with pytest.raises(StoreError, match="column na_reasons takes a list/dict or JSON text"):
            writer.add_sample({"phase": "p", "sample_num": 2, "source": "scrape",
                               "na_reasons": "rss_mb absent"})
    with RunReader(tmp_path / "r") as reader:
        assert [s["na_reasons"] for s in reader.samples()] == [{"rss_mb": "absent"}]
