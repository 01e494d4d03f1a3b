"""RunReader's windowed request queries (``windows=``, ``outside_windows``) against a brute
force over the rows written: a request belongs to a window when intended in [start, end),
the rule of ``queries.client_window``; overlapping windows count it once; the requests
outside every window are the rest. Times lie on a 0.25 s grid, so window edges fall exactly
on intended times (a request at a window's end is outside it, one at its start inside)."""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import example, given, settings
from hypothesis import strategies as st

from phase5site.quantiles import nearest_rank
from phase5site.store import RequestRows, RunReader

from .helpers import T0, begin, new_writer, request

GRID = 0.25
OUTCOMES = ("ok", "ok", "ok", "http_5xx", "timeout", "dropped")

requests_strategy = st.lists(
    st.tuples(st.integers(0, 60), st.sampled_from(OUTCOMES), st.floats(0.0, 500.0, allow_nan=False),
              st.sampled_from(["baseline", "other"])),
    min_size=1, max_size=80)
windows_strategy = st.lists(st.tuples(st.integers(-2, 62), st.integers(-3, 12)), max_size=6)  # empty and reversed too


def _inside(at: float, windows: list[tuple[float, float]]) -> bool:
    return any(start <= at < end for start, end in windows)


@settings(max_examples=80, deadline=None)
@given(rows=requests_strategy, spans=windows_strategy)
# every run: requests on a lone window's start and end, and inside two overlapping ones
@example(rows=[(4, "ok", 1.0, "baseline"), (8, "ok", 2.0, "baseline"), (10, "dropped", 3.0, "baseline")],
         spans=[(4, 4), (9, 3), (10, 5)])
def test_windowed_queries_match_the_client_window_rule(rows: list[tuple[int, str, float, str]],
                                                       spans: list[tuple[int, int]]) -> None:
    windows = [(T0 + start * GRID, T0 + (start + length) * GRID) for start, length in spans]
    with TemporaryDirectory() as tmp:
        writer = new_writer(Path(tmp) / "r")
        begin(writer)
        begin(writer, "other", ordinal=2)
        batch = RequestRows()
        for seq, (tick, outcome, latency, phase) in enumerate(rows):
            request(batch, seq, T0 + tick * GRID, outcome, None if outcome == "dropped" else latency,
                    phase=phase, wait_ms=latency if outcome == "dropped" else None)
        writer.append_requests(batch)
        writer.close()
        with RunReader(Path(tmp) / "r") as reader:
            sent = reader.sent_latencies_ms(phase="baseline", windows=windows).tolist()
            waits = reader.dropped_waits_ms(phase="baseline", windows=windows)
            outside = reader.outside_windows("baseline", windows)
            per_window = [len(reader.sent_latencies_ms(phase="baseline", windows=[w]))
                          + len(reader.dropped_waits_ms(phase="baseline", windows=[w])) for w in windows]
            client = [reader.client_window("baseline", start, end)["client_requests"] for start, end in windows]
    mine = [(T0 + tick * GRID, outcome, latency) for tick, outcome, latency, phase in rows if phase == "baseline"]
    inside = [r for r in mine if _inside(r[0], windows)]
    out = [r for r in mine if not _inside(r[0], windows)]
    assert sent == sorted(latency for _, outcome, latency in inside if outcome != "dropped")
    assert waits == sorted(latency for _, outcome, latency in inside if outcome == "dropped")
    assert per_window == client  # one window alone: exactly the requests client_window counts
    out_sent = sorted(latency for _, outcome, latency in out if outcome != "dropped")
    assert outside == {
        "requests": len(out),
        "ok": sum(1 for r in out if r[1] == "ok"),
        "errors": sum(1 for r in out if r[1] not in ("ok", "dropped")),
        "dropped": sum(1 for r in out if r[1] == "dropped"),
        "latency_p95_ms": nearest_rank(out_sent, 0.95) if out_sent else None,
        "first_at": min((r[0] for r in out), default=None),
        "last_at": max((r[0] for r in out), default=None),
    }


def test_windows_none_means_every_request_and_an_empty_list_none(tmp_path: Path) -> None:
    writer = new_writer(tmp_path / "r")
    begin(writer)
    batch = RequestRows()
    for i in range(5):
        request(batch, i, T0 + i, latency_ms=float(i))
    writer.append_requests(batch)
    writer.close()
    with RunReader(tmp_path / "r") as reader:
        assert reader.sent_latencies_ms(phase="baseline").tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert reader.sent_latencies_ms(phase="baseline", windows=[]).tolist() == []
        assert reader.outside_windows("baseline", [])["requests"] == 5
        # adjacent windows [T0, T0+2) and [T0+2, T0+4): the request at T0+2 once, T0+4 outside
        assert reader.sent_latencies_ms(phase="baseline", windows=[(T0, T0 + 2), (T0 + 2, T0 + 4)]).tolist() \
            == [0.0, 1.0, 2.0, 3.0]
        assert reader.outside_windows("baseline", [(T0, T0 + 2), (T0 + 2, T0 + 4)])["first_at"] == T0 + 4
