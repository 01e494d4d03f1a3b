"""Benchmark: build the site from runs of 576k and 5M request rows, new code vs old.

Writes synthetic runs through the store API (RunWriter), then builds the site in a child
process (so its peak RSS and CPU are the build's alone) in three states: *cold, fresh
install* (no vega bundle, no archive SVGs, no pages, empty per-user cache: everything
drawn), *cold, new run* (the run's SVGs and pages drawn, the per-user cache of bundle and
compiled templates kept: the first build after a run) and *warm* (rebuilt at once), with the current
code and with the code of an older commit (``--against``, by ``git archive``), interleaved
and repeated so a busy moment of the shared host hits both alike. Prints each build's
median time and CPU, the old/new ratios, the largest pages and peak RSS.
Targets: 576k rows cold (new run) <= 5 s, no page over 1.5 MB. On a shared host the wall
time follows the host's load; the CPU column (user + system of the build and its
children) is the steadier figure.

    .venv/bin/python bench/build_scale.py                        # both sizes, vs a40a36d
    .venv/bin/python bench/build_scale.py --rows 576000 --repeat 5
    .venv/bin/python bench/build_scale.py --against ''           # current code only
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from phase5site.store import RunReader, RunWriter
from phase5site.store.csv_v3 import export_csv
from phase5site.store.rows import REQUEST_ARROW_SCHEMA

REPO = Path(__file__).resolve().parents[1]
CACHE_VAR = "PHASE5SITE_CACHE_DIR"
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
               pa.array(status), pa.array(outcome), pa.array(np.full(n, 120, dtype=np.int32)),
               pa.array(np.ones(n, dtype=bool)), pa.array((np.arange(first_seq, first_seq + n) % 2).astype(np.int16))]
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
import phase5site
from phase5site.site import build_site
started = time.perf_counter()
result = build_site(Path(sys.argv[1]), Path(sys.argv[2]))
print()  # after DuckDB's progress bar, if any
print("P5CODE", phase5site.__file__)
print("P5SECONDS", f"{time.perf_counter() - started:.3f}")
"""


@dataclass(frozen=True)
class Timing:
    wall_s: float  # build_site's own time, in the child (imports excluded, as a user's rebuild pays them once)
    cpu_s: float  # user + system CPU of the whole child (imports included), every thread and grandchild
    peak_mib: float


def _build(results: Path, repo: Path, code: Path | None) -> Timing:
    """Build in a child process; ``code`` puts another copy of phase5site first on its path
    (the old code, from ``git archive``). RUSAGE_CHILDREN's ru_maxrss is the largest child
    so far, so the peak is this build's or an earlier, smaller one's."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code) + os.pathsep + env.get("PYTHONPATH", "")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # cwd: `python -c` puts the current folder first on sys.path, and this checkout's
    # phase5site/ would shadow the copy named by PYTHONPATH.
    out = subprocess.run([sys.executable, "-c", _CHILD, str(results), str(repo)], check=True,
                         capture_output=True, text=True, env=env, cwd=repo)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Marked lines: DuckDB draws a progress bar on stdout during long queries.
    marked = dict(line.split(" ", 1) for line in out.stdout.splitlines() if line.startswith("P5"))
    where, seconds = marked["P5CODE"], marked["P5SECONDS"]
    expected = (code or REPO) / "phase5site"
    if Path(where).parent != expected:
        raise SystemExit(f"the build ran {where}, not the code in {expected}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(float(seconds), cpu, after.ru_maxrss / 1024)


def _scratch_repo(base: Path, source: Path) -> Path:
    """mkdocs.yml, runspecs/demo.yaml and the hand-written pages of ``source`` (a checkout)."""
    repo = base
    repo.mkdir(parents=True)
    shutil.copy(source / "mkdocs.yml", repo)
    (repo / "runspecs").mkdir()
    shutil.copy(source / "runspecs" / "demo.yaml", repo / "runspecs")
    shutil.copytree(source / "site_src", repo / "site_src", ignore=shutil.ignore_patterns("runs", "generated"))
    return repo


def _old_code(commit: str, base: Path) -> Path:
    """The tree of ``commit`` (phase5site/, mkdocs.yml, site_src/, runspecs/), by git archive:
    no worktree is registered and nothing in this checkout changes."""
    folder = base / f"code-{commit}"
    folder.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "phase5site", "mkdocs.yml", "site_src",
                              "runspecs"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def _cold(results: Path, repo: Path, cache: Path, fresh_install: bool) -> None:
    """Forget the run's SVGs and index, the bundle, the pages and site/; with
    ``fresh_install`` also the per-user cache (the bundle and the compiled templates, which
    depend only on the installed packages): a first build after installing. Without it:
    the first build of a new run on a machine that has built before."""
    for run_dir in results.iterdir():
        shutil.rmtree(run_dir / "charts", ignore_errors=True)
    shutil.rmtree(repo / "site_src" / "generated", ignore_errors=True)
    shutil.rmtree(repo / "site_src" / "runs", ignore_errors=True)
    shutil.rmtree(repo / "site", ignore_errors=True)
    if fresh_install:
        shutil.rmtree(cache, ignore_errors=True)


def _median(values: list[float]) -> float:
    return statistics.median(values)


def bench(rows: int, commit: str | None, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="p5bench-") as tmp:
        base = Path(tmp)
        results = base / "results"
        started = time.perf_counter()
        run_dir = make_run(results, rows)
        made_s = time.perf_counter() - started
        variants: dict[str, tuple[Path, Path | None]] = {"new": (_scratch_repo(base / "repo-new", REPO), None)}
        if commit:
            old = _old_code(commit, base)
            variants = {f"old ({commit})": (_scratch_repo(base / "repo-old", old), old), **variants}
        cache = base / "user-cache"
        os.environ[CACHE_VAR] = str(cache)  # the builds' per-user cache (phase5site.site.cache)
        timings: dict[tuple[str, str], list[Timing]] = {}
        for _ in range(repeat):  # interleaved: a busy moment of the host hits both variants alike
            for label, (repo, code) in variants.items():
                for kind, fresh in (("cold, fresh install", True), ("cold, new run", False)):
                    _cold(results, repo, cache, fresh)
                    timings.setdefault((label, kind), []).append(_build(results, repo, code))
                timings.setdefault((label, "warm"), []).append(_build(results, repo, code))
        db_mb = (run_dir / "run.duckdb").stat().st_size / 2**20
        print(f"rows={rows:,}  run.duckdb={db_mb:.0f} MiB  written in {made_s:.1f}s  "
              f"(median of {repeat} builds each; cpu = user+sys of the build process and its children)")
        for (label, kind), runs in timings.items():
            walls, cpus = [t.wall_s for t in runs], [t.cpu_s for t in runs]
            print(f"  {label:14} {kind:19}: build {_median(walls):5.2f}s (min {min(walls):.2f}, max {max(walls):.2f})  "
                  f"cpu {_median(cpus):5.2f}s  peak RSS {max(t.peak_mib for t in runs):.0f} MiB")
        if commit:
            old_label = f"old ({commit})"
            for kind in ("cold, fresh install", "cold, new run", "warm"):
                old_runs, new_runs = timings[(old_label, kind)], timings[("new", kind)]
                wall = _median([t.wall_s for t in old_runs]) / _median([t.wall_s for t in new_runs])
                cpu = _median([t.cpu_s for t in old_runs]) / _median([t.cpu_s for t in new_runs])
                print(f"  ratio old/new {kind}: build time x{wall:.2f}, cpu x{cpu:.2f}")
        repo = variants["new"][0]
        pages = sorted(((p.stat().st_size, p.relative_to(repo / "site")) for p in (repo / "site").rglob("*.html")),
                       reverse=True)
        for size, name in pages[:3]:
            print(f"  page {name}: {size / 1024:.0f} KiB")
        cold_new = _median([t.wall_s for t in timings[("new", "cold, new run")]])
        within = "within" if cold_new <= 5.0 else "OVER"
        time_note = f"cold build of a new run {within} the 5 s target" if rows <= 600_000 else "no time target at this size"
        html_pages = [(size, name) for size, name in pages if name.name == "index.html"]
        size_note = "within" if html_pages[0][0] <= PAGE_LIMIT_BYTES else "OVER"
        print(f"  targets: {time_note}; largest page {size_note} 1.5 MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[576_000, 5_000_000],
                        help="request rows per run (one run per value)")
    parser.add_argument("--against", default="a40a36d", metavar="COMMIT",
                        help="also build with the code of this commit (git archive) and print the ratio; "
                        "'' to build the current code only")
    parser.add_argument("--repeat", type=int, default=3, help="builds per variant and state (median shown)")
    args = parser.parse_args()
    for rows in args.rows:
        bench(rows, args.against or None, args.repeat)


if __name__ == "__main__":
    main()
