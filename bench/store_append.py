"""Benchmark: columnar request appends into a run file, and memory over a long run.

Appends synthetic request rows the way the engine does (one ``RequestRows`` flush per
second of load) at two rates, prints rows/s and RSS, then compares the columnar insert
with DuckDB's ``executemany`` on a small sample and prints the ratio.

    .venv/bin/python bench/store_append.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from phase5site.store import RequestRows, RunReader, RunWriter

T0 = 1_764_000_000.0
OUTCOMES = ("ok",) * 96 + ("http_4xx", "http_5xx", "timeout", "dropped")


def rss_mib() -> float:
    """Current resident set size (VmRSS) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def fill(rows: RequestRows, start_seq: int, count: int, rate: float) -> None:
    for seq in range(start_seq, start_seq + count):
        intended = T0 + seq / rate
        outcome = OUTCOMES[seq % len(OUTCOMES)]
        if outcome == "dropped":
            rows.append("baseline", seq, "health", intended, None, None, None, None, outcome, None)
        else:
            latency = 2.0 + (seq * 7919 % 1000) / 10
            rows.append("baseline", seq, "hello", intended, intended + 0.0004, latency,
                        latency - 0.4, 200, outcome, 120)


def new_writer(run_dir: Path) -> RunWriter:
    writer = RunWriter.create(
        run_dir, run_id=run_dir.name, name="bench", spec_path=None, spec_sha256=None,
        spec_redacted={}, environment={}, tool_version="bench", started_at=T0)
    writer.begin_phase("baseline", ordinal=1, rate=None, concurrency=None,
                       planned_duration_s=None, samples=None, interval_s=None, observe=True,
                       flags={}, started_at=T0)
    return writer


def bench_rate(root: Path, total_rows: int, rate: int) -> None:
    run_dir = root / f"rate-{rate}"
    writer = new_writer(run_dir)
    rows = RequestRows()
    rss_start = rss_mib()
    rss_at_10pct = None
    insert_s = 0.0
    started = time.perf_counter()
    for batch_start in range(0, total_rows, rate):
        fill(rows, batch_start, min(rate, total_rows - batch_start), float(rate))
        t = time.perf_counter()
        writer.append_requests(rows)  # one INSERT ... SELECT + commit, then the buffer is cleared
        insert_s += time.perf_counter() - t
        if rss_at_10pct is None and batch_start + rate >= total_rows // 10:
            rss_at_10pct = rss_mib()
    elapsed = time.perf_counter() - started
    window_s = 600.0  # one baseline sample
    t = time.perf_counter()
    writer.client_window("baseline", T0, T0 + window_s)
    window_ms = (time.perf_counter() - t) * 1000
    writer.close()
    with RunReader(run_dir) as reader:
        stored = reader.request_count()
        t = time.perf_counter()
        seconds = len(reader.per_second("baseline"))
        per_second_ms = (time.perf_counter() - t) * 1000
    size_mib = (run_dir / "run.duckdb").stat().st_size / 2**20
    batches = -(-total_rows // rate)
    print(f"rate {rate:>5}/s: {stored:,} rows in {batches:,} batches of {rate}: "
          f"{total_rows / elapsed:,.0f} rows/s overall, {total_rows / insert_s:,.0f} rows/s "
          f"in the insert alone ({insert_s / batches * 1000:.2f} ms per flush); "
          f"file {size_mib:.1f} MiB")
    print(f"             client_window over {window_s:.0f} s: {window_ms:.1f} ms; "
          f"per_second ({seconds:,} rows out): {per_second_ms:.0f} ms")
    print(f"             RSS {rss_start:.0f} MiB at start -> {rss_at_10pct:.0f} MiB after 10% "
          f"-> {rss_mib():.0f} MiB at end; peak RSS so far {peak_rss_mib():.0f} MiB")


def bench_executemany(root: Path, sample_rows: int) -> None:
    rows = RequestRows()
    fill(rows, 0, sample_rows, 2000.0)
    table = rows.to_arrow()
    tuples = list(zip(*(table.column(i).to_pylist() for i in range(table.num_columns))))

    writer = new_writer(root / "columnar")
    columnar_s = float("inf")
    for _ in range(5):  # best of five: one insert of 2,000 rows is a few ms, easily disturbed
        fill(rows, 0, sample_rows, 2000.0)
        t = time.perf_counter()
        writer.append_requests(rows)
        columnar_s = min(columnar_s, time.perf_counter() - t)
    writer.close()

    writer = new_writer(root / "executemany")
    t = time.perf_counter()
    writer._con.executemany(  # the slow path the store never uses
        "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", tuples)
    many_s = time.perf_counter() - t
    writer.close()
    print(f"{sample_rows:,} rows: columnar (best of 5) {columnar_s * 1000:.1f} ms "
          f"({sample_rows / columnar_s:,.0f} rows/s), executemany {many_s * 1000:.0f} ms "
          f"({sample_rows / many_s:,.0f} rows/s): executemany is {many_s / columnar_s:,.0f}x "
          "slower")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per rate")
    parser.add_argument("--sample", type=int, default=2_000, help="rows for the executemany test")
    args = parser.parse_args()
    print(f"peak RSS before: {peak_rss_mib():.0f} MiB (current {rss_mib():.0f} MiB)")
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        for rate in (80, 2000):
            bench_rate(Path(tmp), args.rows, rate)
        bench_executemany(Path(tmp), args.sample)
    print(f"peak RSS after: {peak_rss_mib():.0f} MiB (current {rss_mib():.0f} MiB)")


if __name__ == "__main__":
    main()
