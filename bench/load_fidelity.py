"""Load fidelity of the engine: does it send what the spec asks, on time, cheaply?

Runs ``run_spec`` against a fast loopback HTTP server (a minimal asyncio protocol server in
a subprocess) for ~10 s at 80, 1000 and 2000 req/s and prints, per rate: achieved/target
(responses / planned sends), send lag p50/p99 (actual send minus intended time), dropped,
runner CPU % of one core during the phase (user+sys of this process, writer thread
included; "(all)" also counts start-up and shutdown) and RSS.

Goals: at 80/s achieved >= 99.5 %, lag p99 <= 5 ms, CPU <= 5 % of a core; at higher rates no
collapse — a shortfall must show up as counted drops, never as a silently slower schedule.

    .venv/bin/python bench/load_fidelity.py                 # 80, 1000, 2000 req/s, 10 s each
    .venv/bin/python bench/load_fidelity.py --rates 80 --duration 5
    .venv/bin/python bench/load_fidelity.py --layout httpx  # one httpx AsyncClient per worker

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class _Fast(asyncio.Protocol):
    """Answers every request on a keep-alive connection with a fixed 200 (pipelining-safe)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.buffer = self.buffer[end + 4:]  # the bench sends GETs without bodies
            self.transport.write(RESPONSE)  # type: ignore[attr-defined]


def serve() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Fast, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


def _spec_text(port: int, rate: float, concurrency: int, duration_s: float) -> str:
    return f"""
version: 1
name: bench-{rate:g}
target:
  base_url: http://127.0.0.1:{port}
  allow_hosts: [127.0.0.1]
  timeout: 5s
  requests: [{{name: ok, path: /ok}}]
circuit_breaker: {{enabled: false}}
phases:
  - {{name: main, rate: {rate:g}, concurrency: {concurrency}, duration: {duration_s:g}, observe: false}}
"""


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _shared_factory(timeout_s: float, concurrency: int):
    from phase5site.engine.transport import HttpxTransport

    shared: list[HttpxTransport] = []

    class _Shared:
        async def send(self, request):  # noqa: ANN001
            if not shared:
                shared.append(HttpxTransport(timeout_s=timeout_s, max_connections=concurrency))
            return await shared[0].send(request)

        async def aclose(self) -> None:
            if shared:
                transport = shared.pop()
                await transport.aclose()

    return lambda: _Shared()


class _CpuProbe:
    """A progress sink that notes CPU time at the phase's first and last heartbeat, so the
    steady-state CPU excludes start-up (imports, DuckDB file, target check)."""

    def __init__(self) -> None:
        self.first: tuple[float, float] | None = None
        self.last: tuple[float, float] | None = None

    def update(self, status: dict) -> None:
        if status.get("phase") != "main" or status.get("status") != "running":
            return
        times = os.times()
        point = (time.monotonic(), times.user + times.system)
        if self.first is None:
            self.first = point
        self.last = point

    def cpu_pct(self) -> float:
        if self.first is None or self.last is None or self.last[0] <= self.first[0]:
            return float("nan")
        return 100.0 * (self.last[1] - self.first[1]) / (self.last[0] - self.first[0])


def measure(port: int, rate: float, concurrency: int, duration_s: float, layout: str) -> dict:
    from phase5site.engine import run_spec
    from phase5site.runspec import parse_spec_text
    from phase5site.store import RunReader

    loaded = parse_spec_text(_spec_text(port, rate, concurrency, duration_s), "bench.yaml", {})
    # The load workers build their client from the spec (target.client); the old "shared"
    # layout (one httpx client for every slot) cannot cross process boundaries and is gone.
    loaded = parse_spec_text(_spec_text(port, rate, concurrency, duration_s).replace(
        "  timeout: 5s\n", f"  timeout: 5s\n  client: {layout}\n"), "bench.yaml", {})
    with tempfile.TemporaryDirectory() as results:
        before = os.times()
        wall_start = time.monotonic()
        probe = _CpuProbe()
        outcome = run_spec(loaded, results_dir=Path(results), progress=probe)
        wall_s = time.monotonic() - wall_start
        after = os.times()
        rss_mb = _rss_mb()
        with RunReader(outcome.run_dir) as reader:
            row = reader.con.execute(
                """SELECT count(*) AS planned,
                          count(*) FILTER (WHERE outcome = 'ok') AS ok,
                          count(*) FILTER (WHERE outcome = 'dropped') AS dropped,
                          quantile_cont((sent_at - intended_at) * 1000, 0.5) AS lag_p50,
                          quantile_cont((sent_at - intended_at) * 1000, 0.99) AS lag_p99,
                          quantile_cont(service_ms, 0.5) AS service_p50
                   FROM requests"""
            ).fetchone()
    # The parent and its (reaped) load worker processes.
    cpu_s = sum(getattr(after, f) - getattr(before, f)
                for f in ("user", "system", "children_user", "children_system"))
    planned, ok, dropped, lag_p50, lag_p99, service_p50 = row
    return {
        "rate": rate, "concurrency": concurrency, "planned": planned, "ok": ok,
        "achieved": ok / planned if planned else float("nan"), "dropped": dropped,
        "lag_p50_ms": lag_p50, "lag_p99_ms": lag_p99, "service_p50_ms": service_p50,
        "cpu_pct": probe.cpu_pct(), "cpu_total_pct": 100.0 * cpu_s / wall_s, "rss_mb": rss_mb, "status": outcome.status,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="run the loopback server (internal)")
    parser.add_argument("--rates", type=float, nargs="+", default=[80, 1000, 2000])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate")
    parser.add_argument("--layout", choices=["httptools", "httpx"], default="httptools",
                        help="httptools: the default client, one per worker; httpx: one AsyncClient per "
                        "worker; shared: one AsyncClient for all workers (encode/httpx#3215)")
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        print(f"loopback server pid {server.pid} port {port}; layout {args.layout}; "
              f"{args.duration:g} s per rate; {os.cpu_count()} CPUs (shared)")
        print(f"{'rate':>6} {'conc':>4} {'planned':>7} {'achieved':>9} {'dropped':>7} "
              f"{'lag p50':>8} {'lag p99':>8} {'svc p50':>8} {'cpu %':>6} {'(all)':>6} {'rss MB':>7}  status")
        for rate in args.rates:
            concurrency = 20 if rate <= 100 else min(200, int(rate / 20))
            m = measure(port, rate, concurrency, args.duration, args.layout)
            print(f"{m['rate']:>6g} {m['concurrency']:>4} {m['planned']:>7} {m['achieved']:>8.2%} "
                  f"{m['dropped']:>7} {m['lag_p50_ms']:>7.2f}ms {m['lag_p99_ms']:>7.2f}ms "
                  f"{m['service_p50_ms']:>6.2f}ms {m['cpu_pct']:>6.1f} {m['cpu_total_pct']:>6.1f} {m['rss_mb']:>7.1f}  {m['status']}",
                  flush=True)
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
