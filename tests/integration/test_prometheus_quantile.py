"""histogram_quantile cross-checked against a real Prometheus (/usr/bin/prometheus).

A static page with histograms covering every rule (interpolation, +Inf bucket, negative
bounds, non-monotonic counts, zero counts, a lone bucket, no +Inf bucket) is scraped every
second; Prometheus' own histogram_quantile must equal ours for every case and q. The test
fails (never skips) when the binary is missing.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from phase5site.metrics.local_prometheus import LocalPrometheus, PageServer
from phase5site.quantiles import histogram_quantile

pytestmark = pytest.mark.prometheus

INF = math.inf
CASES: dict[str, list[tuple[float, float]]] = {
    "latency": [(0.01, 120), (0.025, 300), (0.05, 410), (0.1, 480), (0.25, 497), (0.5, 499),
                (1, 500), (2, 500), (5, 500), (INF, 500)],
    "tail_in_inf": [(0.1, 50), (0.25, 90), (INF, 100)],
    "negative": [(-2, 3), (-1, 5), (0, 8), (1.5, 9), (INF, 10)],
    "zero_first": [(0, 5), (1, 8), (INF, 10)],
    "non_monotonic": [(0.1, 60), (0.25, 40), (0.5, 100), (1, 90), (INF, 100)],
    "empty_first": [(0.1, 0), (1, 5), (INF, 5)],
    "zero_count": [(0.1, 0), (1, 0), (INF, 0)],
    "only_inf": [(INF, 7)],
    "no_inf": [(0.1, 3), (1, 9)],
    "one_observation": [(0.005, 0), (0.01, 1), (INF, 1)],
}
QUANTILES = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0)


def _le(bound: float) -> str:
    return "+Inf" if bound == INF else repr(bound)


def exposition() -> str:
    lines = ["# TYPE h histogram"]
    for case, buckets in CASES.items():
        lines += [f'h_bucket{{case="{case}",le="{_le(b)}"}} {c:g}' for b, c in buckets]
    return "\n".join(lines) + "\n"


def test_histogram_quantile_matches_real_prometheus(tmp_path: Path) -> None:
    with PageServer(exposition()) as page, LocalPrometheus([page.target], workdir=tmp_path) as prom:
        prom.wait_for_series("h_bucket", count=sum(len(b) for b in CASES.values()))
        compared = 0
        for q in QUANTILES:
            answers = {row["metric"]["case"]: float(row["value"][1])
                       for row in prom.query(f"histogram_quantile({q}, h_bucket)")}
            assert set(answers) == set(CASES)
            for case, buckets in CASES.items():
                ours = histogram_quantile(q, buckets)
                theirs = answers[case]
                if math.isnan(theirs):
                    assert ours is None, (case, q, ours)
                else:
                    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12), (case, q)
                compared += 1
        assert compared == len(QUANTILES) * len(CASES)
