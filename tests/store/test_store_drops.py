"""Dropped requests in the store's client figures: DuckDB's window query and the reader's
ranking agree with the pure ``quantiles.censored_ranking``, drops only make figures worse,
and a schema-1 file (no slot_free column) still reads, its generator figures NA."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from phase5site.quantiles import censored_ranking, nearest_rank
from phase5site.store import RequestRows, RunReader
from phase5site.store.queries import CLIENT_QUANTILES

from .helpers import T0, begin, new_writer, request
from .test_store_schema import _as_version_1

latency_ms = st.floats(min_value=0.0, max_value=1e5, allow_nan=False)


def _windows(tmp: Path, sent: list[float], waits: list[float | None]) -> tuple[dict, dict, list[float]]:
    """The window with and without the drops, and the reader's ranking with them."""
    with new_writer(tmp / "r") as writer:
        begin(writer)
        begin(writer, "no_drops", ordinal=2)
        rows = RequestRows()
        for i, latency in enumerate(sent):
            for phase in ("baseline", "no_drops"):
                request(rows, i, T0 + 1 + i * 0.001, latency_ms=latency, phase=phase)
        for j, wait in enumerate(waits):
            request(rows, len(sent) + j, T0 + 2 + j * 0.001, "dropped", wait_ms=wait)
        writer.append_requests(rows)
        with_drops = writer.client_window("baseline", T0, T0 + 10)
        without = writer.client_window("no_drops", T0, T0 + 10)
    with RunReader(tmp / "r") as reader:
        ranking = reader.client_latencies_ms("baseline").tolist()
    return with_drops, without, ranking


@settings(max_examples=30, deadline=None)
@given(st.lists(latency_ms, max_size=120), st.lists(st.one_of(st.none(), latency_ms), min_size=1, max_size=30))
def test_window_with_drops_is_never_better(sent: list[float], waits: list[float | None]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with_drops, without, ranking = _windows(Path(tmp), sent, waits)
    expected, _ = censored_ranking(sorted(sent), waits)
    assert ranking == expected
    for column, q in CLIENT_QUANTILES:
        assert with_drops[column] == nearest_rank(ranking, q)
        if without[column] is not None:
            assert with_drops[column] >= without[column]
    assert with_drops["client_requests"] == len(sent) + len(waits)
    assert with_drops["client_success_rate"] < 1.0
    if without["client_success_rate"] is not None:
        assert with_drops["client_success_rate"] <= without["client_success_rate"]


def test_a_schema_1_file_reads_with_generator_figures_na(tmp_path: Path) -> None:
    with new_writer(tmp_path / "r") as writer:
        begin(writer)
    con = duckdb.connect(str(tmp_path / "r" / "run.duckdb"))
    _as_version_1(con)
    con.execute("INSERT INTO requests VALUES ('baseline', 0, 'h', ?, ?, 12.0, 2.0, 200, 'ok', 5), "
                "('baseline', 1, 'h', ?, NULL, NULL, NULL, NULL, 'dropped', NULL)",
                [T0 + 1, T0 + 1.01, T0 + 2])
    con.close()
    with RunReader(tmp_path / "r") as reader:
        window = reader.client_window("baseline", T0, T0 + 10)
        lag = reader.send_lag("baseline")
        seconds = reader.per_second("baseline")
        assert reader.client_latencies_ms("baseline").tolist() == [12.0, 12.0]
    assert (window["client_requests"], window["dropped"], window["client_p99_ms"]) == (2, 1, 12.0)
    assert window["generator_lag_p99_ms"] is None and window["generator_lag_max_ms"] is None
    assert lag["sends"] == 1 and abs(lag["send_lag_max_ms"] - 10.0) < 1e-3
    assert (lag["free_slot_sends"], lag["generator_lag_p99_ms"]) == (0, None)
    assert seconds[0]["generator_lag_max_ms"] is None
