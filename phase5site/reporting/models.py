"""The evaluation of a whole run: plain dataclasses (``dataclasses.asdict`` gives JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field

from phase5site.reporting.endpoints import EndpointStats
from phase5site.slo.models import PhaseEvaluation
from phase5site.slo.reconcile import Reconciliation

COMBINATION_RULE = (
    "Success rate, error rate and latency are judged on every source that has a value "
    "(server metrics and client measurements): a category FAILs if any source fails, is "
    "INVALID if none fails and one is INVALID (client latency of a phase whose load generator "
    "was delayed while slots were free), PASSes if at least one source has a value and none "
    "fails, is NOT-EXERCISED when no source has a value and the counters behind it were measured "
    "but never moved over the phase (the load did not reach it), and is NA only when no source "
    "has a value. Fallback, memory, cache, plugin reload and snapshot exist server-side only. A run "
    "is NO-GO if a category FAILs on valid evidence (or a required one is NA or NOT-EXERCISED in a "
    "phase that ran its course, or the circuit breaker aborted the run); else NOT-EVALUATED if a "
    "phase did not run its planned course (interrupted, failed) or nothing could be judged; else "
    "INVALID if a category is INVALID, else GO. Required: the mandatory categories, unless the "
    "spec marks one required: false with a justification."
)


@dataclass(frozen=True)
class PhaseThroughput:
    """Offered vs achieved load of a phase, from the phases table (None when unknown)."""

    offered_rate: float | None
    achieved_rate: float | None
    requests_sent: int | None
    dropped: int | None
    duration_s: float | None
    planned_duration_s: float | None


@dataclass(frozen=True)
class WindowHealth:
    """The load generator in one sample window (``samples`` columns; None = not measured)."""

    sample_num: int | None
    window_end: float | None
    intended: float | None  # requests intended in the window, dropped ones included
    dropped: float | None
    generator_lag_p99_ms: float | None
    generator_lag_max_ms: float | None
    generator_cpu_ratio: float | None
    loop_lag_max_ms: float | None
    generator_limited: bool | None


@dataclass(frozen=True)
class GeneratorHealth:
    """Drops, send lag and the generator's own health over a phase (DESIGN.md "Generator
    health"). Send lag = sent_at - intended_at of sent requests; the generator's own lag is
    the send lag of those that had a free slot when due. Quantiles are nearest-rank."""

    intended: int
    dropped: int
    dropped_share: float | None
    sends: int
    send_lag_p50_ms: float | None
    send_lag_p99_ms: float | None
    send_lag_max_ms: float | None
    free_slot_sends: int
    generator_lag_p50_ms: float | None
    generator_lag_p99_ms: float | None
    generator_lag_max_ms: float | None
    generator_cpu_ratio_max: float | None
    loop_lag_max_ms: float | None
    measured: bool  # False for runs recorded before the generator's own health was measured
    windows: list[WindowHealth] = field(default_factory=list)
    limited_samples: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class PhaseReport:
    """One phase of a run: its status, load figures and (when observed) its evaluation."""

    phase: str
    status: str | None
    observed: bool
    planned_samples: int | None
    throughput: PhaseThroughput
    evaluation: PhaseEvaluation | None
    flags: dict[str, object] = field(default_factory=dict)
    generator: GeneratorHealth | None = None  # None: the phase has no request rows
    # client vs server request and error counts (None: no server samples or no request rows)
    reconciliation: Reconciliation | None = None


@dataclass(frozen=True)
class RunEvaluation:
    """Verdict of a run (``reporting.evaluate.run_decision``): NO-GO if a phase is NO-GO or the
    breaker aborted it; else NOT-EVALUATED if it was cut short or a phase is not evaluated;
    else INVALID if a phase is INVALID; else GO. ``reasons`` explain the decision."""

    run_id: str
    name: str | None
    run_dir: str
    status: str | None
    source: str | None
    started_at: float | None
    ended_at: float | None
    exit_reason: str | None
    thresholds: dict[str, float]
    thresholds_from: str
    decision: str
    reasons: list[str]
    phases: list[PhaseReport]
    caveats: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    combination_rule: str = COMBINATION_RULE
    # "phase: ..." lines where the client's and the server's counts disagree (slo.reconcile)
    warnings: list[str] = field(default_factory=list)
    # names of the synthetic (diagnostics, not production) requests of the mix
    synthetic: list[str] = field(default_factory=list)
    # request names the service does not time (spec requests[].timed, else the profile's rule)
    untimed: list[str] = field(default_factory=list)
    # Per phase and request name, from the requests table (empty for an imported run).
    endpoints: list[EndpointStats] = field(default_factory=list)

    def evaluated_phases(self) -> list[PhaseReport]:
        return [phase for phase in self.phases if phase.evaluation is not None]
