"""Benchmark: build the site from runs of 576k and 5M request rows.

Writes synthetic runs through the store API (RunWriter), then builds the site in a child
process (so its peak RSS is the build's alone) twice: cold (vega bundle and archive SVGs
drawn) and warm (both cached). Prints build time, the largest pages and peak RSS.
Targets: 576k rows <= 5 s, no page over 1.5 MB.

    .venv/bin/python bench/build_scale.py                 # both sizes
    .venv/bin/python bench/build_scale.py --rows 576000   # one size
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from phase5site.store import RunReader, RunWriter
from phase5site.store.csv_v3 import export_csv
from phase5site.store.rows import REQUEST_ARROW_SCHEMA

REPO = Path(__file__).resolve().parents[1]
WARMUP = ("warmup", 20.0, 600)  # name, rate, seconds: 12,000 rows
SAMPLES, BASELINE_S = 12, 7200
PAGE_LIMIT_BYTES = 1_500_000


class ArrowBatch:
    """A columnar batch with RequestRows' interface (len, to_arrow, clear), filled with numpy
    so 5 million rows take seconds, not minutes; RunWriter.append_requests inserts it."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def __len__(self) -> int:
        return self._table.num_rows

    def to_arrow(self) -> pa.Table:
        return self._table

    def clear(self) -> None:
        self._table = self._table.slice(0, 0)


def _batch(phase: str, first_seq: int, intended: np.ndarray, rng: np.random.Generator) -> ArrowBatch:
    n = len(intended)
    latency = rng.lognormal(np.log(25.0), 0.6, n)
    draw = rng.random(n)
    outcome = np.where(draw < 0.002, "http_5xx", np.where(draw < 0.004, "http_4xx", "ok"))
    status = np.where(outcome == "http_5xx", 500, np.where(outcome == "http_4xx", 404, 200)).astype(np.int16)
    names = np.array(["health", "hello", "plugins"])[np.arange(n) % 3]
    columns = [pa.array([phase] * n), pa.array(np.arange(first_seq, first_seq + n)), pa.array(names),
               pa.array(intended), pa.array(intended + 0.0005), pa.array(latency), pa.array(latency - 0.4),
               pa.array(status), pa.array(outcome), pa.array(np.full(n, 120, dtype=np.int32))]
    return ArrowBatch(pa.Table.from_arrays(columns, schema=REQUEST_ARROW_SCHEMA))


def _phase(writer: RunWriter, ordinal: int, name: str, rate: float, seconds: int, t0: float,
           samples: int, rng: np.random.Generator) -> None:
    interval = seconds / samples if samples else None
    writer.begin_phase(name, ordinal=ordinal, rate=rate, concurrency=20, planned_duration_s=float(seconds),
                       samples=samples or None, interval_s=interval, observe=bool(samples), flags={}, started_at=t0)
    total = round(rate * seconds)
    for start in range(0, total, 500_000):
        seq = np.arange(start, min(total, start + 500_000))
        writer.append_requests(_batch(name, start, t0 + seq / rate, rng))  # type: ignore[arg-type]
    for num in range(1, samples + 1):
        assert interval is not None
        begin, end = t0 + (num - 1) * interval, t0 + num * interval
        client = writer.client_window(name, begin, end)
        writer.add_sample({
            "phase": name, "sample_num": num, "source": "prometheus", "timestamp": "2026-11-27 03:00:00",
            "window_start": begin, "window_end": end, "window_s": interval,
            "server_requests": client["client_requests"], "server_ok": client["client_ok"],
            "server_4xx": client["client_4xx"], "server_5xx": client["client_5xx"],
            "http_success_rate": client["client_success_rate"], "error_rate": client["client_error_rate"],
            "p50_latency": 0.025, "p95_latency": 0.07, "p99_latency": 0.12, "request_rate": rate,
            "raw_fallback_ratio": 0.03, "effective_fallback_ratio": 0.01, "rss_mb": 230.0, "cpu_percent": 20.0,
            "cache_hits_raw": 900, "cache_misses_raw": 100, "cache_hit_rate": 0.9, **client})
    writer.end_phase(name, ended_at=t0 + seconds, status="completed", requests_sent=total, dropped=0)


def make_run(results: Path, rows: int) -> Path:
    rng = np.random.default_rng(rows)
    started = 1_795_000_000.0
    run_dir = results / f"scale-{rows}"
    baseline_rate = (rows - WARMUP[1] * WARMUP[2]) / BASELINE_S
    writer = RunWriter.create(run_dir, run_id=run_dir.name, name=f"scale-{rows}", spec_path=None,
                              spec_sha256=None, spec_redacted={"name": f"scale-{rows}"}, environment={},
                              tool_version="bench", started_at=started)
    with writer:
        _phase(writer, 1, WARMUP[0], WARMUP[1], WARMUP[2], started, 0, rng)
        _phase(writer, 2, "baseline", baseline_rate, BASELINE_S, started + WARMUP[2], SAMPLES, rng)
        writer.finish("completed", ended_at=started + WARMUP[2] + BASELINE_S)
    with RunReader(run_dir) as reader:
        export_csv(reader, run_dir / "metrics.csv")
    return run_dir


_CHILD = """
import sys, time
from pathlib import Path
from phase5site.site import build_site
started = time.perf_counter()
result = build_site(Path(sys.argv[1]), Path(sys.argv[2]))
print(f"{time.perf_counter() - started:.2f}")
"""


def _build(results: Path, repo: Path) -> tuple[float, float]:
    """(build seconds, peak RSS MiB). RUSAGE_CHILDREN's ru_maxrss is the largest child so
    far; sizes run small to large, so it is this build's peak (or an earlier, smaller one's)."""
    out = subprocess.run([sys.executable, "-c", _CHILD, str(results), str(repo)], check=True,
                         capture_output=True, text=True)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return float(out.stdout.strip().splitlines()[-1]), peak_kib / 1024


def _scratch_repo(base: Path) -> Path:
    repo = base / "repo"
    repo.mkdir()
    shutil.copy(REPO / "mkdocs.yml", repo)
    shutil.copytree(REPO / "site_src", repo / "site_src", ignore=shutil.ignore_patterns("runs", "generated"))
    return repo


def bench(rows: int) -> None:
    with tempfile.TemporaryDirectory(prefix="p5bench-") as tmp:
        base = Path(tmp)
        results = base / "results"
        started = time.perf_counter()
        run_dir = make_run(results, rows)
        made_s = time.perf_counter() - started
        repo = _scratch_repo(base)
        cold_s, cold_rss = _build(results, repo)
        warm_s, warm_rss = _build(results, repo)
        pages = sorted(((p.stat().st_size, p.relative_to(repo / "site")) for p in (repo / "site").rglob("*.html")),
                       reverse=True)
        db_mb = (run_dir / "run.duckdb").stat().st_size / 2**20
        print(f"rows={rows:,}  run.duckdb={db_mb:.0f} MiB  written in {made_s:.1f}s")
        print(f"  build cold: {cold_s:.2f}s (peak RSS of build process so far {cold_rss:.0f} MiB)")
        print(f"  build warm: {warm_s:.2f}s (peak RSS {warm_rss:.0f} MiB)")
        for size, name in pages[:3]:
            print(f"  page {name}: {size / 1024:.0f} KiB")
        within = "within" if max(cold_s, warm_s) <= 5.0 else "OVER"
        time_note = f"{within} the 5 s target" if rows <= 600_000 else "no time target at this size"
        size_note = "within" if pages[0][0] <= PAGE_LIMIT_BYTES else "OVER"
        print(f"  targets: {time_note}; largest page {size_note} 1.5 MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[576_000, 5_000_000],
                        help="request rows per run (one run per value)")
    for rows in parser.parse_args().rows:
        bench(rows)


if __name__ == "__main__":
    main()
