"""Where does the runner's memory go over a long run? RSS per stored request, attributed.

Runs ``run_spec`` in this process at ``--rate`` req/s (default 2,000) for ``--duration``
seconds against our own nginx on 127.0.0.1 (``capacity_peers.nginx``), one sample a
minute, and at every heartbeat notes the parent's memory:

- ``VmRSS`` and its split from ``/proc/self/smaps_rollup`` (anonymous vs file-backed);
- DuckDB's own account (``duckdb_memory()``: its buffer pool by tag, read through a cursor
  of the writer's database, which is safe beside the writer thread) and its
  ``memory_limit``;
- Arrow's allocator (``pyarrow.total_allocated_bytes``) and, with ``--tracemalloc``, every
  Python allocation still alive (tracemalloc's own cost makes the run heavier).

It prints RSS at minute 1 and at the end, and bytes of RSS growth per request stored in
between, with the same for each part, so a growth is pinned on the part that grew.
``--memory-limit`` overrides the store's DuckDB ``memory_limit`` (e.g. 64MB) to check
whether a growth is DuckDB's bounded cache.

    .venv/bin/python bench/runner_rss.py                         # 2,000 req/s for 300 s
    .venv/bin/python bench/runner_rss.py --duration 120 --memory-limit 64MB

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capacity_peers import loadavg_1m, nginx  # noqa: E402

MIB = 2**20


def smaps_rollup() -> dict[str, int]:
    """Bytes of the rollup's Rss, Anonymous and file-backed (Rss minus Anonymous) memory."""
    fields: dict[str, int] = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[-1] == "kB":
            fields[name.strip()] = int(parts[0]) * 1024
    rss, anon = fields.get("Rss", 0), fields.get("Anonymous", 0)
    return {"rss": rss, "anon": anon, "file": rss - anon}


class WriterHolder:
    """Keeps the run's ``RunWriter`` (wrapping ``RunWriter.create``) so the probe can ask
    DuckDB through a cursor of its own."""

    def __init__(self) -> None:
        from phase5site.store import RunWriter

        self.writers: list = []
        original = RunWriter.create.__func__

        def create(cls, *args, **kwargs):  # noqa: ANN001, ANN202
            writer = original(cls, *args, **kwargs)
            self.writers.append(writer)
            return writer

        RunWriter.create = classmethod(create)

    def duckdb_figures(self) -> dict[str, float]:
        if not self.writers or self.writers[-1]._con is None:
            return {}
        cursor = self.writers[-1]._con.cursor()
        try:
            tags = dict(cursor.execute(
                "SELECT tag, memory_usage_bytes FROM duckdb_memory()").fetchall())
            (rows,) = cursor.execute("SELECT count(*) FROM requests").fetchone()
            (limit,) = cursor.execute("SELECT current_setting('memory_limit')").fetchone()
        finally:
            cursor.close()
        return {"duckdb": float(sum(tags.values())), "duckdb_base_table": float(tags.get("BASE_TABLE", 0)),
                "duckdb_in_memory_table": float(tags.get("IN_MEMORY_TABLE", 0)), "rows": float(rows),
                "limit": limit}


class Probe:
    """A progress sink: one memory reading per heartbeat of the phase."""

    def __init__(self, holder: WriterHolder, trace: bool) -> None:
        self.holder = holder
        self.trace = trace
        self.readings: list[dict] = []
        self.start: float | None = None

    def update(self, status: dict) -> None:
        if status.get("phase") != "main" or status.get("status") != "running":
            return
        import pyarrow as pa

        now = time.monotonic()
        self.start = self.start if self.start is not None else now
        reading = {"t": now - self.start, **smaps_rollup(), "arrow": pa.total_allocated_bytes(),
                   **self.holder.duckdb_figures()}
        if self.trace:
            reading["python"] = tracemalloc.get_traced_memory()[0]
        self.readings.append(reading)


def spec_text(base_url: str, rate: float, duration_s: float) -> str:
    samples = max(1, round(duration_s / 60))
    return textwrap.dedent(f"""
        version: 1
        name: runner-rss
        target:
          base_url: {base_url}
          allow_hosts: [127.0.0.1]
          timeout: 5s
          workers: 1
          requests: [{{name: ok, path: /ok}}]
        circuit_breaker: {{enabled: false}}
        metrics: {{source: none}}
        phases:
          - {{name: main, rate: {rate:g}, concurrency: 50, samples: {samples}, interval: {duration_s / samples:g}s}}
        """)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit of the store (default: the store's)")
    parser.add_argument("--tracemalloc", action="store_true", help="trace Python allocations too")
    parser.add_argument("--top", type=int, default=8, help="tracemalloc: lines of the biggest growths")
    args = parser.parse_args()

    from phase5site.engine import run_spec
    from phase5site.runspec import parse_spec_text
    from phase5site.store import connect

    if args.memory_limit:
        connect._CONFIG["memory_limit"] = args.memory_limit
    holder = WriterHolder()
    probe = Probe(holder, args.tracemalloc)
    load_before = loadavg_1m()
    with nginx() as url, tempfile.TemporaryDirectory(prefix="runner-rss-") as results:
        loaded = parse_spec_text(spec_text(url, args.rate, args.duration), "rss.yaml", {})
        if args.tracemalloc:
            tracemalloc.start(10)
        snapshots: list[tracemalloc.Snapshot] = []

        original_update = probe.update

        def update(status: dict) -> None:
            original_update(status)
            if args.tracemalloc and len(probe.readings) == 60:
                snapshots.append(tracemalloc.take_snapshot())

        probe.update = update  # type: ignore[method-assign]
        outcome = run_spec(loaded, results_dir=Path(results), progress=probe)
        if args.tracemalloc and snapshots:
            snapshots.append(tracemalloc.take_snapshot())
        size_mib = (outcome.run_dir / "run.duckdb").stat().st_size / MIB
    report(probe.readings, args, load_before, outcome.status, size_mib, snapshots)


def report(readings: list[dict], args: argparse.Namespace, load_before: float, status: str,
           size_mib: float, snapshots: list) -> None:
    print(f"runner_rss: {args.rate:g} req/s for {args.duration:g} s, run {status}, store file "
          f"{size_mib:.1f} MiB, DuckDB memory_limit {readings[-1].get('limit') if readings else '?'}; "
          f"load 1m {load_before:.2f} -> {loadavg_1m():.2f} (shared host)")
    if len(readings) < 3:
        print("too few heartbeats to compare")
        return
    first = next((r for r in readings if r["t"] >= 60.0), readings[len(readings) // 10])
    last = readings[-1]
    rows = last.get("rows", 0) - first.get("rows", 0)
    print(f"from t={first['t']:.0f}s ({first.get('rows', 0):,.0f} rows stored) to t={last['t']:.0f}s "
          f"({last.get('rows', 0):,.0f} rows): {rows:,.0f} rows")
    print(f"{'part':<24} {'at minute 1 MiB':>16} {'at end MiB':>11} {'growth MiB':>11} {'B/row':>7}")
    parts = [("RSS", "rss"), ("  anonymous", "anon"), ("  file-backed", "file"),
             ("DuckDB duckdb_memory()", "duckdb"), ("  BASE_TABLE", "duckdb_base_table"),
             ("  IN_MEMORY_TABLE", "duckdb_in_memory_table"), ("Arrow pool", "arrow"),
             ("Python (tracemalloc)", "python")]
    for label, key in parts:
        if key not in first or key not in last:
            continue
        growth = last[key] - first[key]
        per_row = growth / rows if rows else float("nan")
        print(f"{label:<24} {first[key] / MIB:>16.1f} {last[key] / MIB:>11.1f} {growth / MIB:>+11.1f} "
              f"{per_row:>7.1f}")
    print("\nRSS over time (MiB): " + ", ".join(
        f"{r['t']:.0f}s {r['rss'] / MIB:.0f} (duckdb {r.get('duckdb', 0) / MIB:.0f})"
        for r in readings[:: max(1, len(readings) // 10)]))
    if len(snapshots) == 2:
        print(f"\ntracemalloc: the {args.top} biggest growths from minute 1 to the end")
        for stat in snapshots[1].compare_to(snapshots[0], "lineno")[: args.top]:
            print(f"  {stat.size_diff / 1024:+9.0f} KiB {stat.count_diff:+8d} blocks  {stat.traceback[0]}")


if __name__ == "__main__":
    main()
