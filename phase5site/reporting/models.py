"""The evaluation of a whole run: plain dataclasses (``dataclasses.asdict`` gives JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field

from phase5site.slo.models import PhaseEvaluation

COMBINATION_RULE = (
    "Success rate, error rate and latency are judged on every source that has a value "
    "(server metrics and client measurements): a category FAILs if any source fails, PASSes "
    "if at least one source has a value and none fails, and is NA only when no source has a "
    "value. Fallback, memory, cache, plugin reload and snapshot exist server-side only."
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
class PhaseReport:
    """One phase of a run: its status, load figures and (when observed) its evaluation."""

    phase: str
    status: str | None
    observed: bool
    planned_samples: int | None
    throughput: PhaseThroughput
    evaluation: PhaseEvaluation | None
    flags: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class RunEvaluation:
    """Verdict of a run: GO iff it completed and every evaluated phase is GO (each judged alone)."""

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

    def evaluated_phases(self) -> list[PhaseReport]:
        return [phase for phase in self.phases if phase.evaluation is not None]
