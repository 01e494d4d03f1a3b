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


CONNECT_TEXTS = ("ConnectionRefusedError: [Errno 111] Connection refused",
                 "the connection was lost (ConnectionResetError: [Errno 104] Connection reset by peer) "
                 "before the answer started")


def mixed_rows(seed: int = 3) -> list[tuple]:
    """A mix of three names: mostly 200s, some 404/503, timeouts, connect errors (refused or
    reset, a few without a message), drops; each sent row with the bytes the client wrote."""
    rng = random.Random(seed)
    rows: list[tuple] = []
    for _ in range(1500):
        name = rng.choices(["health", "hello", "plugins"], weights=[1, 2, 2])[0]
        roll = rng.random()
        sent = 100 + len(name) + rng.randint(0, 40)
        if roll < 0.02:
            rows.append((name, rng.uniform(50, 400), None, "dropped", None, None, None))
        elif roll < 0.03:
            rows.append((name, 2000.0 + rng.uniform(0, 5), None, "timeout", None,
                         "no complete answer within 2 s: the request was written, no byte of the answer came", sent))
        elif roll < 0.035:
            text = rng.choice(CONNECT_TEXTS + (None,))
            rows.append((name, rng.uniform(0.1, 2), None, "connect_error", None, text, 0 if text is CONNECT_TEXTS[0] else sent))
        elif roll < 0.05:
            rows.append((name, rng.uniform(2, 30), 503, "http_5xx", 20, None, sent))
        elif roll < 0.06:
            rows.append((name, rng.uniform(2, 30), 404, "http_4xx", 9, None, sent))
        else:
            base = {"health": 3.0, "hello": 12.0, "plugins": 40.0}[name]
            rows.append((name, base + rng.expovariate(1 / base), 200, "ok", rng.randint(100, 900), None, sent))
    return rows


def nearest_rank(values: list[float], q: float) -> float:
    return sorted(values)[max(1, math.ceil(q * len(values))) - 1]


def independent(db: Path, phase: str, name: str) -> dict[str, Any]:
    """Recompute one endpoint's figures from the raw rows, in Python."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT latency_ms, status, outcome, bytes, sent_at, error, bytes_sent, intended_at, seq "
                           "FROM requests WHERE phase = ? AND request_name = ?", [phase, name]).fetchall()
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
        "bytes_sent": sum(r[6] for r in rows if r[4] is not None),
    }
    groups: dict[str, list[tuple]] = {}
    for r in sorted(rows, key=lambda r: (r[5] is None, r[7], r[8])):  # with a message first, then in time
        if r[2] in ("timeout", "connect_error", "body_too_large"):
            groups.setdefault(r[2], []).append(r)
    expected["examples"] = {kind: (g[0][8], g[0][5], len({r[5] for r in g if r[5] is not None}))
                            for kind, g in groups.items()}
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
        for key in ("count", "sent", "ok", "dropped", "http_5xx", "transport_errors", "bytes_received", "bytes_sent"):
            assert row[key] == expected[key], (row["name"], key)
        for key in ("min_ms", "mean_ms", "max_ms", "success_rate", "achieved_rate", *QUANTILES):
            assert row[key] == pytest.approx(expected[key]), (row["name"], key)
        for key in QUANTILES:
            assert (key in row["censored"]) == expected[f"{key}_censored"], (row["name"], key)
        assert ("max_ms" in row["censored"]) == (expected["dropped"] > 0)
        assert row["status_counts"] == expected["status_counts"]
        assert {t["kind"]: t["count"] for t in row["transport"]} == expected["transport"]
        assert row["bytes_sent_na"] is None and row["bytes_sent_missing"] == 0
        examples = {t["kind"]: (t["example_seq"], t["message"], t["distinct_messages"]) for t in row["transport"]}
        assert examples == expected["examples"], row["name"]
    messages = {t["message"] for row in stats for t in row["transport"] if t["kind"] == "connect_error"}
    assert messages <= set(CONNECT_TEXTS) and messages  # an example always has a message when one exists


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
