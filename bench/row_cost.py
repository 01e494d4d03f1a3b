"""CPU of the load worker's hot path per 1,000 requests: before/after a change to what a row holds.

One trial runs in a fresh interpreter, exactly the worker's path for one segment: phase5site's
``PhaseLoad`` with the default ``httptools`` client, rows buffered in the store's
``RequestRows`` and handed over every 100 ms as Arrow IPC bytes (``engine.worker.ipc_bytes``),
as the worker does. It reports process CPU seconds (user + system) per 1,000 requests.

Two loads, both to 127.0.0.1 and bounded in time (so in requests):

- ``ok``: paced at ``--rate`` against nginx from Debian (one worker, ``return 200 "ok"``);
- ``refused``: paced at ``--error-rate`` against a port nobody listens on, so every request is
  a ``connect_error`` (the error path: message text and its redaction, when the code has them).

``--micro`` times, without a network, the per-row work a change to the row touches: building a
``SendResult``, ``RequestRows.append`` with the arguments ``PhaseLoad`` passes, and the row's
share of ``to_arrow`` + IPC for batches of 400 rows (a worker's 100 ms at 4,000 req/s).

``--code DIR`` names other copies of the package to measure beside this checkout (e.g. the
commit before a change, unpacked with ``git archive <commit> phase5site | tar -x -C DIR``);
trials of the copies alternate within each repeat, the first one rotating, so a busy shared
host and the order weigh on each alike. The loop is uvloop when installed, as in a worker
(``--loop asyncio`` for asyncio's own).

    .venv/bin/python bench/row_cost.py --code /tmp/base --repeats 5
    .venv/bin/python bench/row_cost.py --rate 2000 --seconds 5

Not a test: it prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _use_code(code: str | None) -> None:
    """Import phase5site from ``code`` instead of the editable install of this checkout."""
    if not code:
        return
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
    sys.path.insert(0, code)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_trial(url: str, rate: float, seconds: float, concurrency: int, loop: str = "uvloop") -> dict:
    """One paced segment through the worker's path; CPU from just before the first send."""
    import phase5site
    from phase5site.engine.clock import WallAxis
    from phase5site.engine.httpclient import httptools_factory
    from phase5site.engine.load import PhaseLoad
    from phase5site.engine.mix import PreparedRequest, RequestMix
    from phase5site.engine.worker import event_loop_runner, ipc_bytes
    from phase5site.store.rows import RequestRows

    rows = RequestRows()
    mix = RequestMix([PreparedRequest("ok", "GET", url, (("Authorization", "Bearer bench-token-0000"),), None)],
                     [1.0], seed=1)
    load = PhaseLoad(phase="main", rate=rate, concurrency=concurrency, duration_s=seconds, mix=mix,
                     transport_factory=httptools_factory(2.0), sink_provider=lambda: rows, axis=WallAxis())
    handed = {"rows": 0, "bytes": 0}

    def hand_over() -> None:
        if len(rows):
            table = rows.to_arrow()
            handed["rows"] += table.num_rows
            handed["bytes"] += len(ipc_bytes(table))
            rows.clear()

    async def flush_every() -> None:
        while True:
            await asyncio.sleep(0.1)
            hand_over()

    async def go() -> float:
        load.prepare()
        flusher = asyncio.create_task(flush_every())
        before = _cpu_s()
        await load.run(time.monotonic() + 0.1)
        hand_over()
        cpu = _cpu_s() - before
        flusher.cancel()
        return cpu

    runner = event_loop_runner() if loop == "uvloop" else asyncio.Runner()  # uvloop: as in a worker
    with runner:
        cpu_s = runner.run(go())
    return {"code": str(Path(phase5site.__file__).parents[1]), "planned": load.stats.planned,
            "rows": handed["rows"], "ipc_bytes": handed["bytes"], "outcomes": dict(load.stats.outcomes),
            "cpu_s": cpu_s}


def run_micro(rows: int) -> dict:
    """Nanoseconds per row of the hot path's bookkeeping (best of 5), in this interpreter."""
    import inspect
    import timeit

    import phase5site
    from phase5site.engine.transport import SendResult
    from phase5site.engine.worker import ipc_bytes
    from phase5site.store.rows import RequestRows

    buffer = RequestRows()
    extra = len(inspect.signature(RequestRows.append).parameters) > 13  # error, bytes_sent
    args = ("main", 1, "ok", 1.0, 1.001, 2.0, 1.9, 200, "ok", 2, True, 0) + ((None, 121) if extra else ())

    def append() -> None:
        buffer.append(*args)

    def send_result() -> None:  # as the httptools client builds an answer's result
        if extra:
            SendResult(200, 2, None, None, None, 121)
        else:
            SendResult(status=200, bytes=2)

    def arrow() -> None:
        for _ in range(400):
            buffer.append(*args)
        ipc_bytes(buffer.to_arrow())
        buffer.clear()

    def best_ns(fn, number: int, per: int = 1) -> float:  # noqa: ANN001
        return min(timeit.repeat(fn, number=number, repeat=5)) / number / per * 1e9

    figures = {"send_result_ns": best_ns(send_result, rows)}
    figures["append_ns"] = best_ns(append, rows)
    buffer.clear()
    figures["append_arrow_ipc_ns"] = best_ns(arrow, max(1, rows // 400), 400)
    return {"code": str(Path(phase5site.__file__).parents[1]), **figures}


def _trial(code: str | None, **kwargs: object) -> dict:
    command = [sys.executable, __file__, "--trial", json.dumps(kwargs)] + (["--as-code", code] if code else [])
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _load1() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trial", help=argparse.SUPPRESS)
    parser.add_argument("--as-code", help=argparse.SUPPRESS)
    parser.add_argument("--code", action="append", default=[], help="another copy of the package to measure")
    parser.add_argument("--rate", type=float, default=4000.0, help="req/s of the ok load")
    parser.add_argument("--error-rate", type=float, default=2000.0, help="req/s of the refused load")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per trial")
    parser.add_argument("--concurrency", type=int, default=50, help="load slots (connections)")
    parser.add_argument("--repeats", type=int, default=5, help="trials of each copy and load")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                        help="event loop of the trials (a worker runs uvloop when installed)")
    parser.add_argument("--micro", action="store_true", help="time the per-row bookkeeping only (no network)")
    args = parser.parse_args()
    if args.trial:
        _use_code(args.as_code)
        kwargs = json.loads(args.trial)
        print(json.dumps(run_micro(kwargs["micro_rows"]) if "micro_rows" in kwargs else run_trial(**kwargs)))
        return
    if args.micro:
        micro(args)
        return
    from http_capacity import target  # nginx, stopped by its pid

    codes: list[str | None] = [None, *args.code]
    figures: dict[tuple[str, str], list[float]] = {}
    print(f"row_cost: {os.cpu_count()} CPUs, SHARED HOST; load 1m {_load1()} at start")
    with target("nginx") as (url, _pid):
        loads = {"ok": (url, args.rate), "refused": (f"http://127.0.0.1:{_closed_port()}/ok", args.error_rate)}
        for repeat in range(args.repeats):
            for load, (load_url, rate) in loads.items():
                for code in codes[repeat % len(codes):] + codes[:repeat % len(codes)]:  # rotate who goes first
                    result = _trial(code, url=load_url, rate=rate, seconds=args.seconds,
                                    concurrency=args.concurrency, loop=args.loop)
                    per_1k = 1000.0 * result["cpu_s"] / max(1, result["rows"])
                    figures.setdefault((load, result["code"]), []).append(per_1k)
                    print(f"  #{repeat + 1} {load:<8} {result['code']:<28} {per_1k * 1000:7.1f} ms CPU/1k "
                          f"rows {result['rows']:,} of {result['planned']:,} {result['outcomes']} "
                          f"ipc {result['ipc_bytes'] / max(1, result['rows']):.1f} B/row  load {_load1()}",
                          file=sys.stderr)
    print(f"{'load':<8} {'code':<28} {'CPU ms per 1k requests: min / median / max':>44}")
    for (load, code), values in figures.items():
        print(f"{load:<8} {code:<28} {min(values) * 1000:>14.1f} / {statistics.median(values) * 1000:.1f} / "
              f"{max(values) * 1000:.1f}")
    print(f"load 1m {_load1()} at end")


def micro(args: argparse.Namespace) -> None:
    figures: dict[str, list[dict]] = {}
    for _ in range(args.repeats):
        for code in [None, *args.code][::1 if _ % 2 == 0 else -1]:
            result = _trial(code, micro_rows=200_000)
            figures.setdefault(result.pop("code"), []).append(result)
    print(f"row_cost --micro: ns per row, median of {args.repeats} (each the best of 5); load 1m {_load1()}")
    print(f"{'code':<28} {'SendResult':>12} {'append':>10} {'append+arrow+ipc':>18}")
    for code, results in figures.items():
        med = {key: statistics.median(r[key] for r in results) for key in results[0]}
        print(f"{code:<28} {med['send_result_ns']:>12.0f} {med['append_ns']:>10.0f} {med['append_arrow_ipc_ns']:>18.0f}")


if __name__ == "__main__":
    main()
