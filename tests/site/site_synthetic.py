"""Synthetic runs for the site tests and the build benchmark, written through the real
store API (``RunWriter``), so the site reads exactly what a real run would leave behind.

No __init__.py in tests/site: a package named ``site`` would shadow Python's own module.
"""

from __future__ import annotations

import math
import random
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phase5site.store import RequestRows, RunWriter

HOSTILE = "<script>alert(1)</script>"
TIMEOUT_MESSAGE = "no complete answer within 5 s: the request was written, no byte of the answer came"
BUCKET_BOUNDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


def make_token() -> str:
    return "eyJ" + secrets.token_urlsafe(24)


@dataclass
class PhasePlan:
    name: str
    rate: float
    duration_s: int
    samples: int = 0  # 0 = not observed
    concurrency: int = 10


@dataclass
class RunPlan:
    name: str
    started_at: float
    phases: list[PhasePlan]
    request_names: tuple[str, ...] = ("health", "hello", HOSTILE)
    bearer: str | None = None  # planted where a careless writer might leave it
    error_share: float = 0.004
    seed: int = 7
    extra_events: list[tuple[str, str]] = field(default_factory=list)
    dir_name: str | None = None  # folder name when ``name`` is not file-safe
    report: bool = True  # write production-report.md through the reporting part
    limited: dict[str, tuple[int, ...]] = field(default_factory=dict)  # phase -> generator-limited samples
    tags: list[str] = field(default_factory=list)  # spec key tags: ["test"] leaves the run out of the release
    # (kind, message, every n-th request): transport failures with the client's message
    transport_errors: list[tuple[str, str, int]] = field(default_factory=list)
    bytes_sent: int | None = None  # what the client wrote per sent request (None: not recorded)


def _buckets(latencies_s: list[float]) -> list[list[Any]]:
    pairs: list[list[Any]] = [[b, sum(1 for v in latencies_s if v <= b)] for b in BUCKET_BOUNDS]
    pairs.append(["+Inf", len(latencies_s)])
    return pairs


def _spec(plan: RunPlan) -> dict[str, Any]:
    bearer = plan.bearer if plan.bearer is not None else "***"
    return {
        "version": 1, "name": plan.name, "description": f"Synthetic run {HOSTILE}",
        "target": {"base_url": "http://127.0.0.1:9/", "allow_hosts": ["127.0.0.1"],
                   "auth": {"bearer": bearer},
                   "requests": [{"name": n, "path": "/x", "headers": {"X-Api": bearer},
                                 "secret_headers": ["X-Api"]} for n in plan.request_names]},
        "slo": {"latency_p95_ms": 150.0, "latency_p99_ms": 250.0, "cache_hit_rate_min": 0.8,
                "effective_fallback_max": 0.05, "rss_mean_mb_max": 500.0},
        "phases": [{"name": p.name, "rate": p.rate, "concurrency": p.concurrency} for p in plan.phases],
        "tags": plan.tags,
    }


def _requests(writer: RunWriter, phase: PhasePlan, t0: float, rng: random.Random,
              plan: RunPlan) -> tuple[int, int, list[float]]:
    """Write the phase's requests one second at a time; returns (sent, dropped, latencies_s)."""
    rows, sent, dropped, seq = RequestRows(), 0, 0, 0
    kept: list[float] = []
    per_second = int(phase.rate)
    for second in range(phase.duration_s):
        for i in range(per_second):
            intended = t0 + second + i / phase.rate
            draw = rng.random()
            name = plan.request_names[seq % len(plan.request_names)]
            if draw < 0.0005:  # waited 1.2 s in the backlog, then dropped
                rows.append(phase.name, seq, name, intended, None, 1200.0, None, None, "dropped", None,
                            slot_free=False)
                dropped += 1
            elif failure := next(((k, m) for k, m, every in plan.transport_errors if seq % every == 1), None):
                rows.append(phase.name, seq, name, intended, intended + 0.0005, 5000.0, 4999.5, None,
                            failure[0], None, slot_free=True, error=failure[1], bytes_sent=plan.bytes_sent)
                sent += 1
            else:
                latency = rng.lognormvariate(math.log(25.0), 0.6)
                status, outcome = 200, "ok"
                if draw < plan.error_share:
                    status, outcome = (500, "http_5xx") if draw < plan.error_share / 2 else (404, "http_4xx")
                rows.append(phase.name, seq, name, intended, intended + 0.0005, latency, latency - 0.5,
                            status, outcome, 120, slot_free=True, bytes_sent=plan.bytes_sent)
                sent += 1
                if len(kept) < 20000:
                    kept.append(latency / 1000)
            seq += 1
        if len(rows) >= 50_000:
            writer.append_requests(rows)
    writer.append_requests(rows)
    return sent, dropped, kept


def _sample(writer: RunWriter, phase: PhasePlan, num: int, start: float, end: float,
            rng: random.Random, latencies_s: list[float], limited: bool) -> None:
    client = writer.client_window(phase.name, start, end)
    if limited:  # the engine's verdict on its own lag, as if the host had stalled it
        client.update(generator_lag_p99_ms=48.0, generator_lag_max_ms=612.0)
    served = client["client_requests"] or 0
    hits = int(900 + rng.random() * 100)
    row: dict[str, Any] = {
        "phase": phase.name, "sample_num": num, "source": "prometheus",
        "timestamp": "2026-11-27 03:00:00", "window_start": start, "window_end": end,
        "window_s": end - start, "server_requests": served, "server_ok": client["client_ok"],
        "server_4xx": client["client_4xx"], "server_5xx": client["client_5xx"],
        "http_success_rate": client["client_success_rate"], "error_rate": client["client_error_rate"],
        "error_rate_4xx": client["client_error_rate_4xx"], "error_rate_5xx": client["client_error_rate_5xx"],
        "p50_latency": 0.025, "p90_latency": 0.06, "p95_latency": 0.08 + rng.random() * 0.02,
        "p99_latency": 0.15 + rng.random() * 0.05, "latency_buckets": _buckets(latencies_s[:2000]),
        "request_rate": served / (end - start), "raw_fallback_ratio": 0.03, "effective_fallback_ratio": 0.01,
        "raw_fallback_total": 30, "effective_fallback_total": 10, "fb_http_ratio": 0.01,
        "fb_message_ratio": 0.0, "fb_cache_ratio": 0.02, "fallback_http": 4, "http_adapter_ops": 400,
        "rss_mb": 210.0 + num, "cpu_percent": 12.0 + rng.random() * 5, "cache_hits_raw": hits,
        "cache_misses_raw": 1000 - hits, "cache_hit_rate": hits / 1000,
        "plugin_reload_success": 2, "plugin_reload_failure": 0, "plugin_reload_p95": 0.2,
        "plugin_reload_p99": 0.3, "plugin_reload_success_rate": 1.0, "snapshot_create_success": 1,
        "snapshot_create_failure": 0, "snapshot_restore_success": 1, "snapshot_restore_failure": 0,
        "snapshot_operation_p95": 0.4, "snapshot_operation_p99": 0.45, "snapshot_success_rate": 1.0,
        "na_reasons": {"fb_message_ratio": f"no RPC attempts {HOSTILE}"},
        "generator_cpu_ratio": 0.9 if limited else 0.05, "loop_lag_max_ms": 580.0 if limited else 1.0,
        "generator_limited": limited,
        **client,
    }
    writer.add_sample(row)


def make_run(results_dir: Path, plan: RunPlan) -> Path:
    """A completed run folder under ``results_dir`` with requests, samples and events."""
    from phase5site.store import RunReader
    from phase5site.store.csv_v3 import export_csv

    stamp = plan.started_at
    run_dir = results_dir / f"{plan.dir_name or plan.name}-{int(stamp)}"
    rng = random.Random(plan.seed)
    environment = {"host": "test-box", "python": "3.11", "authorization_header": plan.bearer or "***"}
    writer = RunWriter.create(run_dir, run_id=run_dir.name, name=plan.name, spec_path="runspecs/x.yaml",
                              spec_sha256="0" * 64, spec_redacted=_spec(plan), environment=environment,
                              tool_version="test", started_at=stamp)
    with writer:
        writer.add_event("run_start", f"run {HOSTILE} started", at=stamp)
        t = stamp
        for ordinal, phase in enumerate(plan.phases, start=1):
            interval = phase.duration_s / phase.samples if phase.samples else None
            writer.begin_phase(phase.name, ordinal=ordinal, rate=phase.rate, concurrency=phase.concurrency,
                               planned_duration_s=float(phase.duration_s), samples=phase.samples or None,
                               interval_s=interval, observe=bool(phase.samples), flags={}, started_at=t)
            writer.add_event("phase_start", f"phase {phase.name}", at=t, phase=phase.name)
            sent, dropped, latencies = _requests(writer, phase, t, rng, plan)
            for num in range(1, phase.samples + 1):
                assert interval is not None
                _sample(writer, phase, num, t + (num - 1) * interval, t + num * interval, rng, latencies,
                        num in plan.limited.get(phase.name, ()))
            writer.end_phase(phase.name, ended_at=t + phase.duration_s, status="completed",
                             requests_sent=sent, dropped=dropped)
            t += phase.duration_s
        for kind, message in plan.extra_events:
            writer.add_event(kind, message, at=t - 1)
        writer.add_event("run_end", "done", at=t)
        writer.finish("completed", ended_at=t)
    with RunReader(run_dir) as reader:
        export_csv(reader, run_dir / "metrics.csv")
    if plan.report:
        from phase5site.reporting import write_report

        write_report(run_dir)
    return run_dir


def standard_runs(results_dir: Path, bearer: str) -> list[Path]:
    """A day-1 baseline, a day-2 extended run (its sample 2 generator-limited: INVALID) and an
    older run whose name and phase are hostile markup (as a legacy import could carry), with
    5% errors (success rate FAIL: NO-GO) and tagged ``test`` (so it does not count toward the
    release decision), small enough for fast tests."""
    day1 = RunPlan("day1-production-baseline", 1_795_000_000.0,
                   [PhasePlan("warmup", 20, 20), PhasePlan("baseline", 40, 120, samples=4)],
                   bearer=bearer, extra_events=[("breaker_trip", f"error rate 3% > 2% {HOSTILE}"),
                                                ("na", "fb_message_ratio: no RPC attempts")],
                   transport_errors=[("timeout", TIMEOUT_MESSAGE, 1999), ("connect_error", f"unreadable answer: {HOSTILE}", 2503)],
                   bytes_sent=131)
    day2 = RunPlan("day2-extended", 1_795_090_000.0, [PhasePlan("extended", 40, 90, samples=3)],
                   bearer=bearer, seed=11, limited={"extended": (2,)})
    hostile = RunPlan(f"imported{HOSTILE}", 1_794_900_000.0, [PhasePlan(f"p{HOSTILE}", 10, 30, samples=1)],
                      bearer=bearer, seed=3, dir_name="imported-hostile", report=False, error_share=0.05,
                      tags=["test"])
    return [make_run(results_dir, day1), make_run(results_dir, day2), make_run(results_dir, hostile)]
