"""client_window against hand-computed values, and per_second aggregates."""

from __future__ import annotations

from pathlib import Path

import pytest

from phase5site.columns import CLIENT_COLUMNS
from phase5site.store import RequestRows, RunReader, queries
from phase5site.store.queries import CLIENT_QUANTILES, WINDOW_GENERATOR_COLUMNS

from .helpers import T0, begin, new_writer, request

# 20 requests intended at T0 + 0.5 i (i = 0..19) fall in the window [T0, T0 + 10);
# i = 20 (exactly T0 + 10) and i = 21 do not: each paced request belongs to one window. Latency of request i is i ms, except:
SPECIAL = {3: ("http_4xx", 3.0), 7: ("http_5xx", 7.0), 11: ("timeout", 5000.0),
           13: ("connect_error", None), 17: ("dropped", None)}


def approx_ms(value: float):
    """Send lags are differences of epoch seconds (~1.7e9): exact to about a microsecond."""
    return pytest.approx(value, abs=1e-3)


def _window_run(run_dir: Path):
    writer = new_writer(run_dir)
    begin(writer)
    rows = RequestRows()
    for i in range(22):
        outcome, latency = SPECIAL.get(i, ("ok", float(i)))
        request(rows, i, T0 + 0.5 * i, outcome, latency, send_delay_s=0.2)
    writer.append_requests(rows)
    return writer


def test_client_window_matches_hand_computed_values(tmp_path: Path) -> None:
    with _window_run(tmp_path / "r") as writer:
        window = writer.client_window("baseline", T0, T0 + 10)
    # Ranking: the sorted latencies of the 18 sent requests that have one,
    # 0 1 2 3 4 5 6 7 8 9 10 12 14 15 16 18 19 5000 (13 has none), then the dropped 17 as a
    # censored value max(its wait: not recorded, largest sent: 5000) = 5000: 19 values.
    # nearest rank: p50 -> 10th = 9, p90 -> ceil(17.1) = 18th = 5000 (sent),
    # p95/p99 -> 19th = 5000 (the drop: censored).
    assert window == {
        "client_requests": 20,  # every request intended in the window, the drop included
        "client_ok": 15,
        "client_4xx": 1,
        "client_5xx": 1,
        "client_transport_errors": 2,
        "client_p50_ms": 9.0,
        "client_p90_ms": 5000.0,
        "client_p95_ms": 5000.0,
        "client_p99_ms": 5000.0,
        "client_success_rate": 15 / 20,
        "client_error_rate": 5 / 20,  # 4xx + 5xx + timeout + connect_error + dropped
        "client_error_rate_4xx": 1 / 20,
        "client_error_rate_5xx": 1 / 20,
        # sends in [T0, T0+10): requests 0..19 (sent 0.2 s after intended) minus the dropped 17.
        "achieved_rate": 19 / 10,
        "dropped": 1,
        "generator_lag_p99_ms": None,  # slot_free not recorded
        "generator_lag_max_ms": None,
    }
    assert tuple(window) == CLIENT_COLUMNS + WINDOW_GENERATOR_COLUMNS


def test_drops_rank_above_sent_requests_with_their_wait(tmp_path: Path) -> None:
    with new_writer(tmp_path / "r") as writer:
        begin(writer)
        rows = RequestRows()
        for i in range(8):  # sent: 10, 20, ..., 80 ms
            request(rows, i, T0 + 0.1 * i, latency_ms=10.0 * (i + 1))
        request(rows, 8, T0 + 0.8, "dropped", wait_ms=1611.0)  # waited 1.6 s in the backlog
        request(rows, 9, T0 + 0.9, "dropped", wait_ms=5.0)  # ranked as 80, not 5
        writer.append_requests(rows)
        window = writer.client_window("baseline", T0, T0 + 10)
    # Ranking 10 20 30 40 50 60 70 80 | 80 1611: p50 = 5th = 50, p90 = 9th = 80 (censored),
    # p95/p99 = 10th = 1611 (censored).
    assert [window[c] for c, _ in CLIENT_QUANTILES] == [50.0, 80.0, 1611.0, 1611.0]
    assert (window["client_requests"], window["client_ok"], window["dropped"]) == (10, 8, 2)
    assert (window["client_success_rate"], window["client_error_rate"]) == (0.8, 0.2)


def test_generator_lag_counts_only_requests_that_had_a_free_slot(tmp_path: Path) -> None:
    with new_writer(tmp_path / "r") as writer:
        begin(writer)
        rows = RequestRows()
        # 100 requests with a free slot, sent 1, 2, ..., 100 ms late; p99 = 99th = 99 ms.
        for i in range(100):
            request(rows, i, T0 + 0.01 * i, send_delay_s=(i + 1) / 1000, slot_free=True)
        # Held back by a busy service (no free slot): 3 s late, not the generator's delay.
        request(rows, 100, T0 + 1.0, send_delay_s=3.0, slot_free=False)
        request(rows, 101, T0 + 1.1, "dropped", wait_ms=900.0, slot_free=True)  # never sent
        writer.append_requests(rows)
        window = writer.client_window("baseline", T0, T0 + 10)
        send_lag = queries.send_lag(writer._con, "baseline")
    assert window["generator_lag_p99_ms"] == approx_ms(99.0)
    assert window["generator_lag_max_ms"] == approx_ms(100.0)
    assert send_lag["sends"] == 101 and send_lag["free_slot_sends"] == 100
    assert send_lag["send_lag_max_ms"] == approx_ms(3000.0)
    assert send_lag["send_lag_p50_ms"] == approx_ms(51.0)  # 51st of 1..100 ms and 3000 ms
    assert send_lag["generator_lag_p50_ms"] == approx_ms(50.0)
    assert send_lag["generator_lag_p99_ms"] == approx_ms(99.0)
    assert send_lag["generator_lag_max_ms"] == approx_ms(100.0)


def test_reader_window_equals_writer_window(tmp_path: Path) -> None:
    _window_run(tmp_path / "r").close()
    with RunReader(tmp_path / "r") as reader:
        window = reader.client_window("baseline", T0, T0 + 10)
    assert (window["client_requests"], window["client_p50_ms"]) == (20, 9.0)


def test_empty_window_is_na_except_counts(tmp_path: Path) -> None:
    with _window_run(tmp_path / "r") as writer:
        window = writer.client_window("baseline", T0 + 100, T0 + 110)
        other_phase = writer.client_window("warmup", T0, T0 + 10)
    assert window == other_phase
    counts = {"client_requests", "client_ok", "client_4xx", "client_5xx",
              "client_transport_errors", "dropped"}
    assert {k: v for k, v in window.items() if k in counts} == dict.fromkeys(counts, 0)
    assert all(window[k] is None for k in CLIENT_COLUMNS if k not in counts)


def test_window_with_only_dropped_requests(tmp_path: Path) -> None:
    with new_writer(tmp_path / "r") as writer:
        begin(writer)
        rows = RequestRows()
        for i in range(1, 4):
            request(rows, i, T0 + i, "dropped")
        request(rows, 4, T0 + 4, "dropped", phase="other", wait_ms=700.0)
        writer.append_requests(rows)
        window = writer.client_window("baseline", T0, T0 + 5)
        other = writer.client_window("other", T0, T0 + 5)
    assert (window["client_requests"], window["dropped"]) == (3, 3)
    assert (window["client_success_rate"], window["client_error_rate"]) == (0.0, 1.0)
    assert window["client_p99_ms"] is None, "nothing sent and no wait recorded: no value"
    assert window["achieved_rate"] == 0.0, "load was intended but nothing was sent"
    assert other["client_p50_ms"] == other["client_p99_ms"] == 700.0  # at least its wait


def test_per_second_aggregates_in_duckdb(tmp_path: Path) -> None:
    with new_writer(tmp_path / "r") as writer:
        begin(writer, "warmup", ordinal=1, started_at=T0 - 5)
        begin(writer, "baseline", ordinal=2, started_at=T0)
        rows = RequestRows()
        request(rows, 0, T0 - 4.5, latency_ms=1.0, phase="warmup")
        # second 0 of baseline: four requests intended, latencies 10 20 30 40 ms, one 5xx;
        # the last one is sent only in second 1 (send delay 0.7 s).
        request(rows, 0, T0 + 0.0, latency_ms=10.0)
        request(rows, 1, T0 + 0.25, latency_ms=20.0)
        request(rows, 2, T0 + 0.5, "http_5xx", latency_ms=30.0)
        request(rows, 3, T0 + 0.75, latency_ms=40.0, send_delay_s=0.7)
        # second 2: one timeout and one drop; second 1 has only the late send.
        request(rows, 4, T0 + 2.0, "timeout", latency_ms=5000.0)
        request(rows, 5, T0 + 2.5, "dropped")
        writer.append_requests(rows)
    with RunReader(tmp_path / "r") as reader:
        baseline = reader.per_second("baseline")
        everything = reader.per_second()
    assert [(r["second"], r["intended"], r["sends"]) for r in baseline] == [
        (0, 4, 3), (1, 0, 1), (2, 2, 1)]
    first = baseline[0]
    assert (first["p50_ms"], first["p90_ms"], first["p95_ms"], first["p99_ms"]) == (
        20.0, 40.0, 40.0, 40.0)
    assert (first["ok"], first["http_5xx"], first["achieved_rate"], first["at"]) == (
        3, 1, 3.0, T0)
    assert baseline[1]["p50_ms"] is None and baseline[1]["ok"] == 0
    assert (baseline[2]["timeout"], baseline[2]["dropped"], baseline[2]["p99_ms"]) == (
        1, 1, 5000.0)
    assert (baseline[0]["send_lag_max_ms"], baseline[0]["generator_lag_max_ms"]) == (
        approx_ms(700.0), None)
    assert [(r["phase"], r["second"]) for r in everything] == [
        ("warmup", 0), ("baseline", 0), ("baseline", 1), ("baseline", 2)]


@pytest.mark.parametrize("phase", ["baseline", None])
def test_per_second_never_returns_raw_rows(tmp_path: Path, phase: str | None) -> None:
    with new_writer(tmp_path / "r") as writer:
        begin(writer)
        rows = RequestRows()
        for i in range(500):  # 50 per second for 10 s
            request(rows, i, T0 + i / 50)
        writer.append_requests(rows)
    with RunReader(tmp_path / "r") as reader:
        seconds = reader.per_second(phase)
    assert len(seconds) == 10
    assert all(r["intended"] == 50 and r["sends"] == 50 for r in seconds)


def test_batch_insert_right_after_a_window_query(tmp_path: Path) -> None:
    # The engine's writer thread alternates client_window and append_requests on one
    # connection; DuckDB 2 refuses register() while a fetchone()'d result is still open.
    with _window_run(tmp_path / "r") as writer:
        for i in range(3):
            writer.client_window("baseline", T0, T0 + 10)
            rows = RequestRows()
            request(rows, 100 + i, T0 + 50 + i, "ok", 1.0, send_delay_s=0.1)
            assert writer.append_requests(rows) == 1
