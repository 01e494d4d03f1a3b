"""The plan of a run: what ``phase5site validate`` prints before any byte is sent."""

from __future__ import annotations

from dataclasses import dataclass

from phase5site.errors import SpecError
from phase5site.runspec.capacity import MemoryEstimate, estimate_memory, format_bytes, memory_problem
from phase5site.runspec.durations import format_duration
from phase5site.runspec.loader import LoadedSpec
from phase5site.runspec.models import PhaseSpec, RequestSpec, RunSpec
from phase5site.runspec.redaction import redact


@dataclass(frozen=True)
class PhasePlan:
    name: str
    rate: float
    concurrency: int
    planned_duration_s: float
    expected_requests: int
    samples: int | None
    interval_s: float | None
    observation: str  # "no", "server + client", "client only"
    enabled: bool


@dataclass(frozen=True)
class Plan:
    spec_path: str
    spec_sha256: str
    name: str
    target: str
    phases: tuple[PhasePlan, ...]
    total_wall_s: float
    total_requests: int
    metrics: str
    notes: tuple[str, ...]
    memory: MemoryEstimate | None = None  # of the phase needing the most
    memory_limit_bytes: int | None = None  # what this machine has


def _observation(spec: RunSpec, phase: PhaseSpec) -> str:
    if not phase.observe:
        return "no"
    if spec.metrics.source == "none":
        return "client only"
    return f"server ({spec.metrics.source}) + client"


def build_plan(loaded: LoadedSpec, only_phases: list[str] | None = None, *,
               memory_limit_bytes: int | None = None) -> Plan:
    """Compute the plan of ``loaded`` for the phases that would run.

    With ``memory_limit_bytes`` (the machine's memory), a run that would need more is a
    ``SpecError`` located at the phase that needs the most (see ``capacity``)."""
    spec = loaded.spec
    selected = {phase.name for phase in spec.enabled_phases(only_phases)}
    phases = tuple(
        PhasePlan(
            name=phase.name,
            rate=phase.rate,
            concurrency=phase.concurrency,
            planned_duration_s=phase.planned_duration_s,
            expected_requests=phase.expected_requests,
            samples=phase.samples,
            interval_s=phase.interval,
            observation=_observation(spec, phase),
            enabled=phase.name in selected,
        )
        for phase in spec.phases
    )
    running = [phase for phase in phases if phase.enabled]
    memory = estimate_memory(spec, spec.enabled_phases(only_phases)) if running else None
    if memory is not None and memory_limit_bytes is not None:
        problem = memory_problem(memory, memory_limit_bytes)
        if problem is not None:
            raise SpecError([redact(loaded.at(("phases", memory.index), problem), loaded.secrets)])
    notes = []
    if spec.metrics.source == "none" and any(p.observation != "no" for p in running):
        notes.append(
            "metrics.source is none: observed phases are sampled client side only; "
            "server-only categories (fallback, memory, cache) will be NA, so the verdict "
            "cannot be GO"
        )
    if spec.target.embedded is not None:
        target = f"embedded {spec.target.embedded.profile} simulator on 127.0.0.1 (free port)"
    else:
        target = f"{spec.target.base_url} (allowed hosts: {', '.join(spec.target.allow_hosts)})"
    return Plan(
        spec_path=str(loaded.path),
        spec_sha256=loaded.sha256,
        name=spec.name,
        target=target,
        phases=phases,
        total_wall_s=sum(p.planned_duration_s for p in running),
        total_requests=sum(p.expected_requests for p in running),
        metrics=_metrics_line(spec),
        notes=tuple(notes),
        memory=memory,
        memory_limit_bytes=memory_limit_bytes,
    )


def _metrics_line(spec: RunSpec) -> str:
    metrics = spec.metrics
    if metrics.source == "none":
        return "none (client side only)"
    where = metrics.url if metrics.source in ("prometheus", "both") else (metrics.scrape_url or "target's /metrics/prom")
    selector = f", selector {metrics.selector}" if metrics.selector else ""
    overrides = f", {len(metrics.overrides)} column override(s)" if metrics.overrides else ""
    return f"{metrics.source} at {where}, profile {metrics.profile}{selector}{overrides}"


def format_plan(plan: Plan, loaded: LoadedSpec) -> str:
    """The plan as plain text, one fact per line; secrets are named, never shown."""
    spec = loaded.spec
    lines = [
        f"Spec:     {plan.spec_path} (sha256 {plan.spec_sha256[:12]})",
        f"Run:      {plan.name}",
        f"Target:   {plan.target}",
        f"          timeout {format_duration(spec.target.timeout)}; request mix: {_mix(spec)}",
        f"Metrics:  {plan.metrics}",
        "Flags:    " + ", ".join(f"{k}={str(v).lower()}" for k, v in spec.flags.model_dump().items()),
        "",
        f"{'#':>2}  {'phase':<12} {'rate':>8} {'in flight':>9} {'duration':>9} {'samples':>12} "
        f"{'requests':>10}  observed",
    ]
    for index, phase in enumerate(plan.phases, start=1):
        samples = f"{phase.samples} x {format_duration(phase.interval_s or 0)}" if phase.samples else "-"
        observed = phase.observation if phase.enabled else "skipped (disabled)"
        lines.append(
            f"{index:>2}  {phase.name:<12} {phase.rate:>6g}/s {phase.concurrency:>9} "
            f"{format_duration(phase.planned_duration_s):>9} {samples:>12} "
            f"{phase.expected_requests:>10}  {observed}"
        )
    lines += [
        "",
        f"Total:    {format_duration(plan.total_wall_s)} of load, {plan.total_requests} requests expected",
        *_memory_lines(plan),
        "SLO:      " + _slo_line(spec),
        "Breaker:  " + _breaker_line(spec),
        "Secrets:  " + (", ".join(loaded.secret_paths) + " (redacted)" if loaded.secret_paths else "none"),
    ]
    lines += [f"Note:     {note}" for note in plan.notes]
    # A secret can sit in any interpolated string (a path's ?api_key=, a URL's password):
    # the plan names where secrets are, so their values must not show anywhere in it.
    return redact("\n".join(lines), loaded.secrets)


def _memory_lines(plan: Plan) -> list[str]:
    memory = plan.memory
    if memory is None:
        return []
    machine = f"; this machine has {format_bytes(plan.memory_limit_bytes)}" if plan.memory_limit_bytes else ""
    return [f"Memory:   about {format_bytes(memory.bytes_needed)} at most (phase {memory.phase}: "
            f"{memory.requests} requests, {memory.concurrency} in flight, up to {memory.backlog} "
            f"waiting){machine}"]


def _mix(spec: RunSpec) -> str:
    total = sum(request.weight for request in spec.target.requests)

    def marks(r: RequestSpec) -> str:
        words = [word for word, on in (("no bearer", r.auth == "none"), ("not timed", r.timed is False),
                                       ("synthetic", r.synthetic)) if on]
        if r.expect_status:
            words.append("expects " + "/".join(map(str, r.expect_status)))
        return f" ({', '.join(words)})" if words else ""

    return ", ".join(
        f"{r.name} {r.method} {r.path} {100 * r.weight / total:.0f}%{marks(r)}" for r in spec.target.requests
    )


def _slo_line(spec: RunSpec) -> str:
    slo = spec.slo
    return (
        f"success >= {slo.success_rate_min:.1%}, errors <= {slo.error_rate_max:.1%}, "
        f"P95 <= {slo.latency_p95_ms:g} ms, P99 <= {slo.latency_p99_ms:g} ms, "
        f"effective fallback <= {slo.effective_fallback_max:.1%}, mean RSS <= {slo.rss_mean_mb_max:g} MB, "
        f"cache hit >= {slo.cache_hit_rate_min:.0%}, plugin reload >= {slo.plugin_reload_success_min:.0%} "
        f"(optional), snapshot >= {slo.snapshot_success_min:.0%} (optional)"
    ) + "".join(f"; {name} {'required' if policy.required else 'not required (justified)'}"
                for name, policy in slo.categories.items() if policy.required is not None)


def _breaker_line(spec: RunSpec) -> str:
    breaker = spec.circuit_breaker
    if not breaker.enabled:
        return "disabled in the spec"
    return (
        f"stop if error rate > {breaker.error_rate:.1%} over {format_duration(breaker.window)} "
        f"(at least {breaker.min_requests} requests), or per sample server error rate > "
        f"{breaker.error_rate:.1%} or effective fallback > {breaker.effective_fallback:.1%}"
    )
