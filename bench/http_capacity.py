"""HTTP client capacity of one phase5site process: CPU per request and the highest paced rate.

For each load-worker client — ``raw`` (the stream-based client as it was before the httptools
one replaced it, loaded from git history, never copied), ``httptools`` (the default,
``engine/httpclient.py``), ``aiohttp`` (a ``ClientSession`` per worker, for contrast) and
``httpx`` — it measures, against a local target (nginx from Debian with one worker and
``return 200 "ok"``, or phase5site's own simulator):

- CPU seconds of the client process per 1,000 requests, paced at ``--cpu-rate``;
- capacity: the highest open-model rate one process sustains through phase5site's own
  ``PhaseLoad`` (engine/load.py, transport factory injected): responses >= 99 % of planned,
  dropped <= 0.1 %, send lag p99 <= 5 ms. Found by doubling from 500 req/s, then bisecting
  to 5 %;
- overhead at 200 req/s: the client's latency p50 (from intended send time) minus wrk2's
  p50 on the same target at the same rate (wrk2 corrects for coordinated omission too).

wrk2 (``../shared/tools/wrk2/wrk``) also measures the target's own capacity, so a client
figure near it says "target-bound", not "client-bound". Every trial runs in a fresh
subprocess, every load goes to 127.0.0.1 and is bounded in time (and so in requests), and
each measurement runs ``--repeats`` times (min/median/max): the host is shared.

    .venv/bin/python bench/http_capacity.py                       # all clients, nginx, ~25 min
    .venv/bin/python bench/http_capacity.py --clients httptools aiohttp --repeats 1
    .venv/bin/python bench/http_capacity.py --target simulator    # phase5site target

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WRK2 = REPO.parent / "shared" / "tools" / "wrk2" / "wrk"
CLIENTS = ["raw", "httptools", "aiohttp", "httpx"]
RAW_PATH = "phase5site/engine/rawhttp.py"
MAX_LAG_P99_MS = 5.0
MIN_ACHIEVED = 0.99
MAX_DROPPED = 0.001
MAX_RATE = 128_000.0  # the capacity search stops there
NGINX_CONF = """worker_processes 1;
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


# --- clients (inside a trial's subprocess) -----------------------------------------------


def _legacy_raw_module():
    """engine/rawhttp.py as of the last commit that had it (HEAD, or the deletion's parent)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True,
                              text=True).stdout

    rev = "HEAD"
    if not git("ls-tree", "HEAD", RAW_PATH).strip():
        rev = git("log", "-n1", "--diff-filter=D", "--format=%H", "--", RAW_PATH).strip() + "^"
    with tempfile.TemporaryDirectory(prefix="legacy-raw-") as tmp:
        source = Path(tmp) / "legacy_rawhttp.py"
        source.write_text(git("show", f"{rev}:{RAW_PATH}"))
        spec = importlib.util.spec_from_file_location("legacy_rawhttp", source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


class AiohttpTransport:
    """The seam on one aiohttp ``ClientSession`` (one connection) per worker; body counted."""

    def __init__(self, timeout_s: float) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = None

    async def send(self, request):  # noqa: ANN001, ANN201
        from phase5site.engine.transport import SendResult, _shared_ssl_context

        aiohttp = self._aiohttp
        if self._session is None:  # a session wants a running loop
            connector = aiohttp.TCPConnector(limit=1, ssl=_shared_ssl_context())
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout,
                                                  auto_decompress=False, trust_env=False)
        try:
            async with self._session.request(request.method, request.url, headers=request.headers,
                                             data=request.body, allow_redirects=False) as response:
                size = 0
                async for piece in response.content.iter_any():
                    size += len(piece)
                return SendResult(status=response.status, bytes=size)
        except TimeoutError:
            return SendResult(status=None, bytes=None, error="timeout")
        except (aiohttp.ClientError, OSError):
            return SendResult(status=None, bytes=None, error="connect_error")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _factory(client: str, timeout_s: float):  # noqa: ANN202
    if client == "raw":
        return _legacy_raw_module().raw_factory(timeout_s)
    if client == "httptools":
        from phase5site.engine.httpclient import httptools_factory

        return httptools_factory(timeout_s)
    if client == "httpx":
        from phase5site.engine.transport import httpx_factory

        return httpx_factory(timeout_s)
    return lambda: AiohttpTransport(timeout_s)


# --- one trial: PhaseLoad at one rate, in this process ------------------------------------


class _Rows:
    """A row sink keeping only what the trial reports (cheap, the same for every client)."""

    def __init__(self) -> None:
        self.lag_ms: list[float] = []
        self.latency_ms: list[float] = []
        self.ok = self.dropped = self.other = 0

    def append(self, phase, seq, request_name, intended_at, sent_at, latency_ms, service_ms,  # noqa: ANN001
               status, outcome, bytes, slot_free=None, worker=None, error=None,  # noqa: A002, ANN001
               bytes_sent=None) -> None:  # noqa: ANN001
        if outcome == "dropped":
            self.dropped += 1
            return
        self.ok += outcome == "ok"
        self.other += outcome != "ok"
        self.lag_ms.append((sent_at - intended_at) * 1000.0)
        self.latency_ms.append(latency_ms)


def _cpu_s() -> float:
    """User + system CPU seconds of this process (getrusage: microseconds, not 10 ms ticks)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_trial(client: str, url: str, rate: float, duration_s: float, concurrency: int) -> dict:
    from phase5site.engine.clock import WallAxis
    from phase5site.engine.load import PhaseLoad
    from phase5site.engine.mix import PreparedRequest, RequestMix

    mix = RequestMix([PreparedRequest("ok", "GET", url, (), None)], [1.0], seed=1)
    rows = _Rows()
    load = PhaseLoad(phase="main", rate=rate, concurrency=concurrency, duration_s=duration_s,
                     mix=mix, transport_factory=_factory(client, 5.0), sink_provider=lambda: rows,
                     axis=WallAxis())

    async def go() -> float:
        load.prepare()
        before = _cpu_s()
        await load.run(time.monotonic() + 0.1)
        return _cpu_s() - before

    cpu_s = asyncio.run(go())
    planned = load.stats.planned
    return {"client": client, "rate": rate, "planned": planned, "ok": rows.ok,
            "dropped": rows.dropped, "other": rows.other, "cpu_s": cpu_s,
            "achieved": rows.ok / planned if planned else 0.0,
            "lag_p99_ms": _quantile(rows.lag_ms, 0.99),
            "latency_p50_ms": _quantile(rows.latency_ms, 0.5)}


def run_closed_loop(client: str, url: str, requests: int) -> dict:
    """CPU of the client alone: one transport, each request sent when the last one is back."""
    from phase5site.engine.mix import PreparedRequest

    transport = _factory(client, 5.0)()
    request = PreparedRequest("ok", "GET", url, (), None)

    async def go() -> tuple[float, int]:
        for _ in range(200):  # connect and warm up outside the measurement
            await transport.send(request)
        before = _cpu_s()
        ok = sum([(await transport.send(request)).status == 200 for _ in range(requests)])
        cpu_s = _cpu_s() - before
        await transport.aclose()
        return cpu_s, ok

    cpu_s, ok = asyncio.run(go())
    return {"client": client, "requests": requests, "ok": ok, "cpu_s": cpu_s}


def sustained(trial: dict) -> bool:
    return (trial["achieved"] >= MIN_ACHIEVED and trial["dropped"] <= MAX_DROPPED * trial["planned"]
            and trial["lag_p99_ms"] <= MAX_LAG_P99_MS)


# --- the driver: targets, wrk2, searches ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_listening(port: int, process: subprocess.Popen, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"target on port {port} did not come up (exit code {process.poll()})")


@contextmanager
def target(kind: str) -> Iterator[tuple[str, int]]:
    """(URL, pid) of a running target; stopped by its pid on exit."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="http-capacity-") as tmp:
        if kind == "nginx":
            conf = Path(tmp) / "nginx.conf"
            conf.write_text(NGINX_CONF.format(tmp=tmp, port=port))
            command = [shutil.which("nginx") or "/usr/sbin/nginx", "-p", tmp, "-c", str(conf)]
            path = "/ok"
        else:
            command = [str(Path(sys.executable).with_name("phase5site")), "target", "--port", str(port)]
            path = "/health"
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_listening(port, process)
            yield f"http://127.0.0.1:{port}{path}", process.pid
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(15)


def _in_subprocess(**kwargs: object) -> dict:
    """Run one trial in a fresh interpreter (no state carried between clients or rates)."""
    out = subprocess.run([sys.executable, __file__, "--trial", json.dumps(kwargs)], check=True,
                         capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def trial(client: str, url: str, rate: float, duration_s: float, concurrency: int) -> dict:
    return _in_subprocess(client=client, url=url, rate=rate, duration_s=duration_s,
                          concurrency=concurrency)


def closed_loop_cpu_ms(client: str, url: str, requests: int) -> float:
    """CPU seconds per 1,000 requests of the client alone (closed loop, one connection)."""
    measured = _in_subprocess(client=client, url=url, requests=requests)
    return 1000.0 * measured["cpu_s"] / max(1, measured["ok"])


def capacity(client: str, url: str, duration_s: float, concurrency: int, verbose: bool) -> float:
    """Highest sustained rate: double from 500 req/s until a rate fails, bisect to 5 %.

    A rate fails only when two trials in a row miss a goal, so one hiccup of the shared host
    does not end the search early."""
    passed, failed, rate = 0.0, None, 500.0
    while True:
        ok = any(_logged(trial(client, url, rate, duration_s, concurrency), verbose)
                 for _ in range(2))
        if ok:
            passed = rate
        else:
            failed = rate
        if failed is None and rate >= MAX_RATE:
            return passed  # the search is bounded: report the cap, never load without end
        if failed is None:
            rate *= 2
        elif (passed and failed - passed <= 0.05 * passed) or rate < 100:
            return passed
        else:
            rate = (passed + failed) / 2 if passed else rate / 2


def _logged(result: dict, verbose: bool) -> bool:
    verdict = sustained(result)
    if verbose:
        print(f"  {result['client']} {result['rate']:,.0f}/s: achieved {result['achieved']:.2%} "
              f"dropped {result['dropped']} lag p99 {result['lag_p99_ms']:.2f} ms -> "
              f"{'pass' if verdict else 'fail'}", file=sys.stderr, flush=True)
    return verdict


def _wrk2_ms(text: str) -> float:
    """wrk2's duration text in milliseconds: '870.00us', '0.87ms', '1.20s', '1.00m'."""
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)


def wrk2(url: str, rate: float, duration_s: int, connections: int) -> dict:
    """wrk2's throughput and latency p50 (ms) at a constant rate (after its 10 s calibration)."""
    out = subprocess.run([str(WRK2), "-t1", f"-c{connections}", f"-d{duration_s}s", f"-R{round(rate)}",
                          "--latency", url], check=True, capture_output=True, text=True,
                         timeout=duration_s + 60).stdout
    result = {"rps": float("nan"), "p50_ms": float("nan")}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            result["rps"] = float(words[1])
        elif words[:1] == ["50.000%"]:
            result["p50_ms"] = _wrk2_ms(words[1])
    return result


def _spread(values: list[float], fmt: str) -> str:
    if not values:
        return "n/a"
    return "/".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trial", help=argparse.SUPPRESS)  # JSON: the arguments of one trial
    parser.add_argument("--clients", nargs="+", choices=CLIENTS, default=CLIENTS)
    parser.add_argument("--target", choices=["nginx", "simulator"], default="nginx")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--trial-s", type=float, default=5.0, help="seconds per capacity trial")
    parser.add_argument("--cpu-rate", type=float, default=4000.0, help="req/s of the paced CPU trial")
    parser.add_argument("--closed-n", type=int, default=20000, help="requests of the closed-loop CPU trial")
    parser.add_argument("--cpu-s", type=float, default=10.0, help="seconds of the CPU trial")
    parser.add_argument("--overhead-s", type=float, default=15.0, help="seconds at 200 req/s")
    parser.add_argument("--verbose", action="store_true", help="log every capacity trial on stderr")
    parser.add_argument("--concurrency", type=int, default=50, help="load slots (connections)")
    args = parser.parse_args()
    if args.trial:
        kwargs = json.loads(args.trial)
        print(json.dumps(run_closed_loop(**kwargs) if "requests" in kwargs else run_trial(**kwargs)))
        return
    report(args)


def _wrk2_figures(url: str, args: argparse.Namespace) -> float:
    """Print wrk2's view of the target; its median p50 at 200 req/s (NaN without wrk2)."""
    if not WRK2.exists():
        print(f"wrk2 not found at {WRK2}: no target capacity, no overhead figure")
        return float("nan")
    peer = [wrk2(url, 200, int(args.overhead_s) + 10, 20) for _ in range(args.repeats)]
    top = [wrk2(url, 1_000_000, 15, 64) for _ in range(args.repeats)]
    print(f"wrk2: target capacity {_spread([t['rps'] for t in top], ',.0f')} req/s; "
          f"p50 at 200 req/s {_spread([p['p50_ms'] for p in peer], '.3f')} ms", flush=True)
    return statistics.median(p["p50_ms"] for p in peer)


def report(args: argparse.Namespace) -> None:
    print(f"http_capacity: target {args.target}, {os.cpu_count()} CPUs, SHARED HOST (other "
          f"people's tests may run): each figure is min/median/max of {args.repeats} runs.")
    print(f"cpu paced = CPU s per 1,000 requests of the whole process (PhaseLoad, pacer, sink, "
          f"client) at {args.cpu_rate:g} req/s for {args.cpu_s:g} s; cpu alone = the client "
          f"alone, {args.closed_n} requests in a closed loop on one connection.")
    print(f"capacity = highest rate with responses >= {MIN_ACHIEVED:.0%} of planned, dropped <= "
          f"{MAX_DROPPED:.1%}, send lag p99 <= {MAX_LAG_P99_MS:g} ms ({args.trial_s:g} s trials, "
          f"{args.concurrency} slots); overhead = client p50 at 200 req/s minus wrk2's p50.",
          flush=True)
    with target(args.target) as (url, pid):
        print(f"target pid {pid} at {url}", flush=True)
        wrk2_p50 = _wrk2_figures(url, args)
        print(f"{'client':<10} {'cpu paced s/1k':>20} {'cpu alone s/1k':>20} "
              f"{'capacity req/s':>24} {'overhead p50 ms':>22}")
        for client in args.clients:
            row = measure_client(client, url, args, wrk2_p50)
            print(f"{client:<10} {_spread(row['paced'], '.3f'):>20} {_spread(row['alone'], '.4f'):>20} "
                  f"{_spread(row['capacity'], ',.0f'):>24} {_spread(row['overhead'], '+.3f'):>22}",
                  flush=True)


def measure_client(client: str, url: str, args: argparse.Namespace, wrk2_p50: float) -> dict:
    """Each figure of one client's row, ``args.repeats`` times."""
    row: dict[str, list[float]] = {"paced": [], "alone": [], "capacity": [], "overhead": []}
    for _ in range(args.repeats):
        paced = trial(client, url, args.cpu_rate, args.cpu_s, args.concurrency)
        row["paced"].append(1000.0 * paced["cpu_s"] / max(1, paced["ok"] + paced["other"]))
        row["alone"].append(closed_loop_cpu_ms(client, url, args.closed_n))
        row["capacity"].append(capacity(client, url, args.trial_s, args.concurrency, args.verbose))
        slow = trial(client, url, 200, args.overhead_s, 20)
        row["overhead"].append(slow["latency_p50_ms"] - wrk2_p50)
    return row


if __name__ == "__main__":
    main()
