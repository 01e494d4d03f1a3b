"""Per-endpoint statistics (issue 14): checked against an independent computation over the
rows of run.duckdb (plain SQL fetch + Python), never against numbers typed into the test."""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest

from phase5site.store import RunReader
from .runbuilder import good_sample, make_run

QUANTILES = {"p50_ms": 0.5, "p90_ms": 0.9, "p95_ms": 0.95, "p99_ms": 0.99}


def mixed_rows(seed: int = 3) -> list[tuple[str, float | None, int | None, str, int | None]]:
    """A mix of three names: mostly 200s, some 404/503, timeouts, connect errors, drops."""
    rng = random.Random(seed)
    rows: list[tuple[str, float | None, int | None, str, int | None]] = []
    for _ in range(1500):
        name = rng.choices(["health", "hello", "plugins"], weights=[1, 2, 2])[0]
        roll = rng.random()
        if roll < 0.02:
            rows.append((name, rng.uniform(50, 400), None, "dropped", None))
        elif roll < 0.03:
            rows.append((name, 2000.0 + rng.uniform(0, 5), None, "timeout", None))
        elif roll < 0.035:
            rows.append((name, rng.uniform(0.1, 2), None, "connect_error", None))
        elif roll < 0.05:
            rows.append((name, rng.uniform(2, 30), 503, "http_5xx", 20))
        elif roll < 0.06:
            rows.append((name, rng.uniform(2, 30), 404, "http_4xx", 9))
        else:
            base = {"health": 3.0, "hello": 12.0, "plugins": 40.0}[name]
            rows.append((name, base + rng.expovariate(1 / base), 200, "ok", rng.randint(100, 900)))
    return rows


def nearest_rank(values: list[float], q: float) -> float:
    return sorted(values)[max(1, math.ceil(q * len(values))) - 1]


def independent(db: Path, phase: str, name: str) -> dict[str, Any]:
    """Recompute one endpoint's figures from the raw rows, in Python."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT latency_ms, status, outcome, bytes, sent_at FROM requests "
                           "WHERE phase = ? AND request_name = ?", [phase, name]).fetchall()
        started, ended = con.execute("SELECT started_at, ended_at FROM phases WHERE name = ?", [phase]).fetchone()
    finally:
        con.close()
    sent = [r[0] for r in rows if r[2] != "dropped"]
    waits = [r[0] for r in rows if r[2] == "dropped"]
    # drops rank above every sent request at max(wait, largest sent latency)
    ranking = sorted(sent) + sorted(max(w, max(sent)) for w in waits)
    expected = {
        "count": len(rows), "sent": sum(1 for r in rows if r[4] is not None),
        "ok": sum(1 for r in rows if r[2] == "ok"), "dropped": len(waits),
        "http_5xx": sum(1 for r in rows if r[2] == "http_5xx"),
        "transport_errors": sum(1 for r in rows if r[2] in ("timeout", "connect_error")),
        "min_ms": min(sent), "mean_ms": sum(sent) / len(sent), "max_ms": max(ranking),
        "bytes_received": sum(r[3] for r in rows if r[3] is not None),
        "status_counts": dict(Counter(r[1] for r in rows if r[1] is not None)),
        "transport": dict(Counter(r[2] for r in rows if r[2] in ("timeout", "connect_error"))),
        "achieved_rate": sum(1 for r in rows if r[4] is not None) / (ended - started),
    }
    expected["success_rate"] = expected["ok"] / expected["count"]
    for key, q in QUANTILES.items():
        expected[key] = nearest_rank(ranking, q)
        expected[f"{key}_censored"] = math.ceil(q * len(ranking)) > len(sent)
    return expected


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("endpoints"), samples=[good_sample("baseline", 1)],
                    mixed_requests=mixed_rows())


def test_endpoint_figures_match_an_independent_computation(mixed_run: Path) -> None:
    with RunReader(mixed_run) as reader:
        stats = reader.endpoint_stats()
    counts = [row["count"] for row in stats]
    assert counts == sorted(counts, reverse=True)  # most requests first
    assert {row["name"] for row in stats} == {"health", "hello", "plugins"}
    for row in stats:
        expected = independent(mixed_run / "run.duckdb", "baseline", row["name"])
        for key in ("count", "sent", "ok", "dropped", "http_5xx", "transport_errors", "bytes_received"):
            assert row[key] == expected[key], (row["name"], key)
        for key in ("min_ms", "mean_ms", "max_ms", "success_rate", "achieved_rate", *QUANTILES):
            assert row[key] == pytest.approx(expected[key]), (row["name"], key)
        for key in QUANTILES:
            assert (key in row["censored"]) == expected[f"{key}_censored"], (row["name"], key)
        assert ("max_ms" in row["censored"]) == (expected["dropped"] > 0)
        assert row["status_counts"] == expected["status_counts"]
        assert {t["kind"]: t["count"] for t in row["transport"]} == expected["transport"]
        for group in row["transport"]:
            assert group["message"].startswith("NA: ")  # the engine keeps the kind, not the text


def test_one_phase_only_and_empty_runs(tmp_path: Path, mixed_run: Path) -> None:
    with RunReader(mixed_run) as reader:
        assert reader.endpoint_stats("warmup") == []
        assert len(reader.endpoint_stats("baseline")) == 3
    empty = make_run(tmp_path, samples=[good_sample("baseline", 1)])
    with RunReader(empty) as reader:
        assert reader.endpoint_stats() == []


def test_only_drops_have_no_latency_but_count(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, samples=[good_sample("baseline", 1)],
                       mixed_requests=[("slow", None, None, "dropped", None), ("slow", 80.0, None, "dropped", None)])
    with RunReader(run_dir) as reader:
        (row,) = reader.endpoint_stats()
    assert (row["count"], row["sent"], row["dropped"], row["success_rate"]) == (2, 0, 2, 0.0)
    assert row["min_ms"] is None and row["mean_ms"] is None
    # the one drop with a known wait is the only ranked value: a lower bound
    assert row["p50_ms"] == 80.0 and "p50_ms" in row["censored"]
