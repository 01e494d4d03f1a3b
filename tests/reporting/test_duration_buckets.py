"""An optional category's operation durations name the histogram bucket they lie in.

Measured on the real service: its snapshot operations take 10-40 ms and all fall in the
snapshot histogram's first bucket (0, 0.1 s]. Interpolation then reads P95 95 ms / P99 99 ms,
numbers no observation had; the report must say that only "0-100 ms" is known.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phase5site.reporting import evaluate_run, render_report

from .runbuilder import good_sample, make_run

SNAPSHOT_BOUNDS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


def snapshot_buckets(durations_s: list[float]) -> list[list[object]]:
    pairs: list[list[object]] = [[b, sum(1 for d in durations_s if d <= b)] for b in SNAPSHOT_BOUNDS]
    return [*pairs, ["+Inf", len(durations_s)]]


def snapshot_line(run_dir: Path) -> tuple[dict[str, float | None], str]:
    evaluation = evaluate_run(run_dir)
    phase = evaluation.phases[0].evaluation
    category = next(c for c in phase.categories if c.category == "snapshot_success")
    line = next(l for l in render_report(evaluation).splitlines() if l.startswith("- Snapshot success:"))
    return category.rows[0].breakdown, line


def test_all_operations_in_the_first_bucket_read_as_that_bucket(tmp_path: Path) -> None:
    durations = [0.010, 0.020, 0.035, 0.040, 0.025]  # one sample's 5 creates, as on the real service
    samples = [good_sample("baseline", n, snapshot_buckets=snapshot_buckets(durations)) for n in (1, 2, 3)]
    breakdown, line = snapshot_line(make_run(tmp_path, samples=samples))
    assert breakdown["p95_ms"] == pytest.approx(95.0)  # Prometheus interpolation over 15 in (0, 100 ms]
    assert (breakdown["p95_low_ms"], breakdown["p95_high_ms"]) == (0.0, pytest.approx(100.0))
    assert (breakdown["p99_low_ms"], breakdown["p99_high_ms"]) == (0.0, pytest.approx(100.0))
    assert "P95 95.0 ms (bucket 0-100 ms)" in line and "P99 99.0 ms (bucket 0-100 ms)" in line


def test_a_quantile_past_the_last_finite_bound_says_so(tmp_path: Path) -> None:
    durations = [0.05] * 90 + [40.0] * 10  # 10 % slower than the 30 s bound
    samples = [good_sample("baseline", 1, snapshot_buckets=snapshot_buckets(durations))]
    breakdown, line = snapshot_line(make_run(tmp_path, samples=samples))
    assert breakdown["p95_low_ms"] == pytest.approx(30_000.0) and breakdown["p95_high_ms"] is None
    assert "(bucket above 30000 ms)" in line
