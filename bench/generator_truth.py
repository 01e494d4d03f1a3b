"""Does the load generator tell the truth on a busy machine? Three measurements, printed.

1. fidelity: phase5site at 20 and 80 req/s against the simulator (its own process), without
   and with a busy-loop process pinned to each core. Per case: achieved share of the
   planned sends, drops, the generator's own send lag (slot free, yet sent late) p99/max,
   generator-limited windows, runner CPU (parent + load workers, % of one core) and the
   parent's RSS at the first and last heartbeat.
2. truth: N demo runs (runspecs/demo.yaml) with a hog on every core: each must end GO or
   INVALID-with-a-reason, never NO-GO because of the tool (the simulator is healthy).
3. drops: a 3 s latency stall at 80 req/s, phase5site and wrk2 (the coordinated-omission-
   correct meter in ../shared/tools/wrk2) loading the same simulator at the same time:
   client p95/p99 of each over the whole run (phase5site's drops count, censored).

Only 127.0.0.1 is loaded, every load is bounded in time and requests. The CPU hogs are
this script's own processes, ended by pid. Not a test: it prints, it asserts nothing.

    .venv/bin/python bench/generator_truth.py                      # all three, short
    .venv/bin/python bench/generator_truth.py --duration 600       # the 10-minute fidelity cases
    .venv/bin/python bench/generator_truth.py --only truth --runs 10
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WRK2 = ROOT.parent / "shared" / "tools" / "wrk2" / "wrk"
WRK2_CALIBRATION_S = 10.0  # wrk2 measures nothing during its first ~10 s


def loadavg_1m() -> float:
    """The host's 1-minute load average: printed beside every figure (the host is shared)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def _hog(core: int) -> None:
    os.sched_setaffinity(0, {core})
    while True:
        pass


class Hogs:
    """One busy-loop process pinned to each core, for the length of a ``with`` block."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.processes: list[multiprocessing.Process] = []

    def __enter__(self) -> Hogs:
        cores = sorted(os.sched_getaffinity(0))
        for index in range(self.count):
            process = multiprocessing.Process(target=_hog, args=(cores[index % len(cores)],), daemon=True)
            process.start()
            self.processes.append(process)
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.terminate()  # our own child, by pid
            process.join(5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Simulator:
    """``phase5site target`` in its own process (so its CPU is not the runner's)."""

    def __init__(self, faults: list[str] | None = None) -> None:
        self.port = _free_port()
        self.faults = faults or []

    def __enter__(self) -> Simulator:
        args = [str(ROOT / ".venv/bin/phase5site"), "target", "--port", str(self.port)]
        for fault in self.faults:
            args += ["--fault", fault]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("simulator did not start")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(10)


def _spec(port: int, rate: float, duration_s: float, samples: int, name: str) -> str:
    interval = duration_s / samples
    return f"""
version: 1
name: {name}
target:
  base_url: http://127.0.0.1:{port}
  allow_hosts: [127.0.0.1]
  timeout: 5s
  requests:
    - {{name: health, path: /health, weight: 1}}
    - {{name: hello, path: /api/v2/hello, weight: 2}}
circuit_breaker: {{enabled: false}}
metrics: {{source: none}}
phases:
  - {{name: main, rate: {rate:g}, concurrency: 20, samples: {samples}, interval: {interval:g}s}}
"""


class _Probe:
    """Progress sink: the parent's RSS at the first and the last heartbeat of the phase."""

    def __init__(self) -> None:
        self.rss_mb: list[float] = []

    def update(self, status: dict) -> None:
        if status.get("phase") == "main" and status.get("status") == "running":
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    self.rss_mb.append(int(line.split()[1]) / 1024)


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped load workers
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def fidelity(rate: float, duration_s: float, hogs: int) -> dict:
    from phase5site.engine import run_spec
    from phase5site.runspec import parse_spec_text
    from phase5site.store import RunReader

    samples = max(1, round(duration_s / 60)) if duration_s >= 120 else 2
    with Simulator() as simulator, Hogs(hogs), tempfile.TemporaryDirectory() as results:
        loaded = parse_spec_text(_spec(simulator.port, rate, duration_s, samples, f"fidelity-{rate:g}"),
                                 "bench.yaml", {})
        probe = _Probe()
        cpu_before, wall_before = _cpu_s(), time.monotonic()
        outcome = run_spec(loaded, results_dir=Path(results), progress=probe)
        cpu_pct = 100.0 * (_cpu_s() - cpu_before) / (time.monotonic() - wall_before)
        with RunReader(outcome.run_dir) as reader:
            planned, sent, dropped, own_p99, own_max = reader.con.execute(
                """SELECT count(*), count(*) FILTER (WHERE outcome <> 'dropped'),
                          count(*) FILTER (WHERE outcome = 'dropped'),
                          quantile_disc((sent_at - intended_at) * 1000, 0.99) FILTER (WHERE slot_free),
                          max((sent_at - intended_at) * 1000) FILTER (WHERE slot_free)
                   FROM requests""").fetchone()
            limited = reader.con.execute(
                "SELECT count(*) FILTER (WHERE generator_limited), count(*) FROM samples").fetchone()
    rss = probe.rss_mb or [float("nan")]
    return {"load_after": loadavg_1m(), "rate": rate, "hogs": hogs, "achieved": sent / planned if planned else float("nan"),
            "dropped": dropped, "own_p99": own_p99, "own_max": own_max,
            "limited": f"{limited[0]}/{limited[1]}", "cpu_pct": cpu_pct,
            "rss_first": rss[min(len(rss) - 1, 60)] if len(rss) > 60 else rss[0], "rss_last": rss[-1]}


def truth(runs: int) -> list[tuple[str, str]]:
    results = []
    with Hogs(os.cpu_count() or 1), tempfile.TemporaryDirectory() as folder:
        for _ in range(runs):
            done = subprocess.run([str(ROOT / ".venv/bin/phase5site"), "run", str(ROOT / "runspecs/demo.yaml"),
                                   "--no-site", "--results-dir", folder], capture_output=True, text=True,
                                  cwd=ROOT, timeout=900)
            verdict = next((line for line in done.stdout.splitlines() if line.startswith("verdict:")),
                           f"exit {done.returncode}: {done.stderr.strip()[-200:]}")
            results.append((str(done.returncode), verdict))
    return results


def _wrk2_percentiles(text: str) -> dict[str, float]:
    """p95/p99 in ms from wrk2's detailed spectrum ("Value Percentile TotalCount 1/(1-P)")."""
    spectrum = [(float(value), float(share)) for value, share in
                re.findall(r"^\s*([\d.]+)\s+(0\.\d+|1\.0+)\s+\d+\s+[\d.]+|inf\s*$", text, re.M)
                if value]
    found = {}
    for name, q in (("p95", 0.95), ("p99", 0.99)):
        value = next((v for v, share in spectrum if share >= q), None)
        if value is not None:
            found[name] = value
    return found


def drops(duration_s: float) -> dict:
    from phase5site.engine import run_spec
    from phase5site.runspec import parse_spec_text
    from phase5site.store import RunReader

    stall_at = 3.0 + duration_s / 3  # after the simulator start; both loads are running then
    with Simulator([f"latency_stall:{stall_at:g}s:3s:3000"]) as simulator, \
            tempfile.TemporaryDirectory() as results:
        wrk = None
        if WRK2.exists():
            wrk = subprocess.Popen([str(WRK2), "-t1", "-c20", f"-d{duration_s:g}s", "-R80", "--latency",
                                    f"http://127.0.0.1:{simulator.port}/api/v2/hello"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        loaded = parse_spec_text(_spec(simulator.port, 80, duration_s, 1, "drops"), "drops.yaml", {})
        outcome = run_spec(loaded, results_dir=Path(results))
        with RunReader(outcome.run_dir) as reader:
            (sample,) = reader.samples(phase="main")
            whole = {"p95": sample.get("client_p95_ms"), "p99": sample.get("client_p99_ms"),
                     "dropped": sample.get("dropped"), "success": sample.get("client_success_rate")}
            # wrk2 records only after its ~10 s calibration: compare over the same stretch.
            (start,) = reader.con.execute("SELECT min(intended_at) FROM requests").fetchone()
            late = reader.con.execute(
                "SELECT quantile_disc(latency_ms, [0.95, 0.99]) FROM requests WHERE intended_at >= ?",
                [start + WRK2_CALIBRATION_S]).fetchone()[0]
        ours = {"whole run": whole, f"after {WRK2_CALIBRATION_S:g} s": {"p95": late[0], "p99": late[1]}}
        theirs = _wrk2_percentiles(wrk.communicate(timeout=duration_s + 60)[0]) if wrk else {}
    return {"phase5site": ours, "wrk2": theirs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["fidelity", "truth", "drops"], action="append")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per fidelity case")
    parser.add_argument("--runs", type=int, default=3, help="demo runs for 'truth'")
    parser.add_argument("--rates", type=float, nargs="+", default=[20, 80], help="fidelity rates (req/s)")
    parser.add_argument("--hogs", type=int, nargs="+", default=None,
                        help="fidelity hog counts (default: 0 and one per core)")
    parser.add_argument("--drop-runs", type=int, default=3, help="repeats of the drops case")
    args = parser.parse_args()
    parts = args.only or ["fidelity", "truth", "drops"]
    print(f"{os.cpu_count()} CPUs; a shared host: other processes may be running")
    if "fidelity" in parts:
        print(f"\nfidelity ({args.duration:g} s per case; goal: achieved >= 99.5 %, own-lag p99 <= 5 ms, "
              "no generator-limited window; quiet: lag p99 <= 2 ms, CPU <= 5 %)")
        print(f"{'rate':>5} {'hogs':>4} {'achieved':>9} {'dropped':>7} {'own p99':>9} {'own max':>9} "
              f"{'limited':>8} {'cpu %':>6} {'rss MB min1->last':>19} {'load before->after':>19}")
        for hogs in (args.hogs if args.hogs is not None else (0, os.cpu_count() or 1)):
            for rate in args.rates:
                before = loadavg_1m()
                m = fidelity(rate, args.duration, hogs)
                print(f"{m['rate']:>5g} {m['hogs']:>4} {m['achieved']:>8.2%} {m['dropped']:>7} "
                      f"{m['own_p99'] or float('nan'):>7.2f}ms {m['own_max'] or float('nan'):>7.2f}ms "
                      f"{m['limited']:>8} {m['cpu_pct']:>6.1f} {m['rss_first']:>8.1f} -> {m['rss_last']:<8.1f} "
                      f"{before:>8.2f} -> {m['load_after']:.2f}", flush=True)
    if "truth" in parts:
        print(f"\ntruth ({args.runs} demo runs, a hog on every core; goal: none NO-GO because of the tool)")
        before = loadavg_1m()
        for code, verdict in truth(args.runs):
            print(f"  exit {code}: {verdict}", flush=True)
        print(f"  load average {before:.2f} -> {loadavg_1m():.2f}")
    if "drops" in parts:
        print("\ndrops (3 s stall of 3000 ms at 80 req/s, 20 in flight each; goal: p95/p99 within 10 % of wrk2)")
        print(f"{'run':>3} {'p5s p95':>9} {'wrk2 p95':>9} {'diff':>7} {'p5s p99':>9} {'wrk2 p99':>9} "
              f"{'diff':>7} {'p5s whole p95/p99':>18} {'dropped':>7} {'load before->after':>19}  (ms)")
        for run in range(args.drop_runs):
            before = loadavg_1m()
            measured = drops(30.0)
            ours = measured["phase5site"][f"after {WRK2_CALIBRATION_S:g} s"]
            whole = measured["phase5site"]["whole run"]
            theirs = measured["wrk2"]
            def diff(key: str) -> str:
                return f"{(ours[key] - theirs[key]) / theirs[key]:+.1%}" if theirs.get(key) else "n/a"
            print(f"{run + 1:>3} {ours['p95']:>9.0f} {theirs.get('p95', float('nan')):>9.0f} {diff('p95'):>7} "
                  f"{ours['p99']:>9.0f} {theirs.get('p99', float('nan')):>9.0f} {diff('p99'):>7} "
                  f"{whole['p95'] or float('nan'):>8.0f}/{whole['p99'] or float('nan'):<9.0f} "
                  f"{whole['dropped']!s:>7} {before:>8.2f} -> {loadavg_1m():.2f}", flush=True)
        if not WRK2.exists():
            print(f"  wrk2 not found at {WRK2}: no comparison")


if __name__ == "__main__":
    main()
