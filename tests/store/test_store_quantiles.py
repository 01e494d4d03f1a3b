"""One quantile definition everywhere: pure nearest_rank == DuckDB's window == numpy."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phase5site.quantiles import nearest_rank, nearest_rank_index, ratio
from phase5site.store import RequestRows, RunReader
from phase5site.store.queries import client_rates

from .helpers import T0, begin, new_writer, request


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 0.99, 5.0),
        ([1.0, 2.0], 0.5, 1.0),
        ([1.0, 2.0], 0.51, 2.0),
        (list(map(float, range(1, 101))), 0.07, 7.0),  # float 0.07*100 = 7.000000000000001
        (list(map(float, range(1, 101))), 0.95, 95.0),
        (list(map(float, range(1, 21))), 0.95, 19.0),
        (list(map(float, range(1, 21))), 0.99, 20.0),
        ([], 0.5, None),
    ],
)
def test_nearest_rank_table(values: list[float], q: float, expected: float | None) -> None:
    assert nearest_rank(values, q) == expected


def test_nearest_rank_rejects_bad_quantiles() -> None:
    with pytest.raises(ValueError, match="within"):
        nearest_rank_index(1.5, 3)


def test_ratio_and_rates_are_na_without_denominator() -> None:
    assert ratio(1, 0) is None
    assert set(client_rates(requests=0, ok=0, http_4xx=0, http_5xx=0,
                            transport_errors=0).values()) == {None}


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1e5, allow_nan=False), min_size=1,
                max_size=300))
def test_store_quantiles_agree_with_the_pure_definition(latencies: list[float]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with new_writer(Path(tmp) / "r") as writer:
            begin(writer)
            rows = RequestRows()
            for i, latency in enumerate(latencies):
                request(rows, i, T0 + 1 + i * 0.001, latency_ms=latency)
            writer.append_requests(rows)
            window = writer.client_window("baseline", T0, T0 + 10)
        with RunReader(Path(tmp) / "r") as reader:
            stored = reader.client_latencies_ms("baseline")
    assert stored.tolist() == sorted(latencies)
    for column, q in (("client_p50_ms", 0.5), ("client_p90_ms", 0.9),
                      ("client_p95_ms", 0.95), ("client_p99_ms", 0.99)):
        assert window[column] == nearest_rank(stored, q)
        assert window[column] == float(np.quantile(stored, q, method="inverted_cdf"))
