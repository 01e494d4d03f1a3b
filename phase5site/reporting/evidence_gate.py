"""Which runs an SLO draft may rest on (``slo recommend``), and why a run is refused.

A target drawn from a run that failed its release criteria, was cut short, or whose load
generator limited the measurement would write that failure into the SLO: the demo once
proposed P95 <= 1100 ms from a NO-GO run whose one stalled window became the "worst
sample". So ``slo recommend`` refuses such evidence unless the user names the reason with
``--allow REASON``; the draft then records what was allowed.

Reasons (stable names, the values of ``--allow``):

- ``no-go``: a phase (or a per-request threshold) is NO-GO on the run's own criteria;
- ``aborted``: the circuit breaker stopped the load;
- ``interrupted``: a signal (or a crash) cut the run short;
- ``failed``: the run failed (a worker died, the disk filled);
- ``invalid``: the load generator was delayed while slots were free (client latency INVALID);
- ``short``: an observed phase ran shorter than planned, or took fewer samples than planned;
- ``not-evaluated``: a phase of a run that ran its course had nothing to judge (every
  category NA or not exercised), so no target can rest on it (a phase cut short is refused
  as aborted, interrupted or failed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from phase5site.errors import UsageError
from phase5site.reporting.endpoints import endpoint_reasons
from phase5site.reporting.models import RunEvaluation

REASONS: tuple[str, ...] = ("no-go", "aborted", "interrupted", "failed", "invalid", "short", "not-evaluated")
# A phase that ends within this share of its planned duration is not short: the engine's
# stop and the clock's resolution are not a shorter measurement.
SHORT_TOLERANCE = 0.01


class EvidenceRefused(UsageError):
    """``slo recommend`` was given a run it must not draw targets from (exit 2);
    ``reasons`` are the ``--allow`` names that would let it through."""

    def __init__(self, message: str, reasons: list[str], hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.reasons = list(reasons)


@dataclass(frozen=True)
class Refusal:
    reason: str  # one of REASONS
    run_id: str
    detail: str

    def text(self) -> str:
        return f"{self.run_id}: {self.reason}: {self.detail}"


def _short(evaluation: RunEvaluation) -> list[str]:
    found = []
    for phase in evaluation.evaluated_phases():
        t = phase.throughput
        planned, measured = t.planned_duration_s, t.duration_s
        if planned and measured is not None and measured < planned * (1.0 - SHORT_TOLERANCE):
            found.append(f"phase {phase.phase} ran {measured:.1f} s of {planned:.1f} s planned")
        got = phase.evaluation.n_samples  # type: ignore[union-attr]
        if phase.planned_samples and got < phase.planned_samples:
            found.append(f"phase {phase.phase} took {got} of {phase.planned_samples} samples")
    return found


def refusals(evaluation: RunEvaluation) -> list[Refusal]:
    """Every reason this run is weak evidence for an SLO target (empty: it is fine).

    Example: a completed run whose baseline FAILs cache_hit_rate ->
    ``[Refusal('no-go', run, 'baseline: cache_hit_rate ...')]``.
    """
    found: list[tuple[str, str]] = []
    if evaluation.status in ("aborted", "interrupted", "failed"):
        found.append((evaluation.status, evaluation.exit_reason or f"run {evaluation.status}"))
    elif evaluation.status not in (None, "completed"):
        found.append(("interrupted", f"run status {evaluation.status}"))
    phases = evaluation.evaluated_phases()
    no_go = [f"{p.phase}: {r}" for p in phases if p.evaluation.decision == "NO-GO"  # type: ignore[union-attr]
             for r in p.evaluation.reasons]  # type: ignore[union-attr]
    no_go += endpoint_reasons(evaluation.endpoints, "FAIL")
    if no_go:
        found.append(("no-go", "; ".join(no_go)))
    limited = [f"{p.phase} (windows {', '.join(f'#{n}' for n in p.evaluation.generator_limited_samples)})"  # type: ignore[union-attr]
               for p in phases if p.evaluation.generator_limited_samples or p.evaluation.decision == "INVALID"]  # type: ignore[union-attr]
    if limited:
        found.append(("invalid", "the load generator limited the client latency in " + ", ".join(limited)))
    short = _short(evaluation)
    if short:
        found.append(("short", "; ".join(short)))
    unjudged = [f"{p.phase}: {r}" for p in phases if p.evaluation.decision == "NOT-EVALUATED"  # type: ignore[union-attr]
                and not p.evaluation.stopped for r in p.evaluation.reasons[:1]]  # type: ignore[union-attr]
    if unjudged:
        found.append(("not-evaluated", "; ".join(unjudged)))
    return [Refusal(reason, evaluation.run_id, detail) for reason, detail in found]


def check_allow(allow: Iterable[str]) -> list[str]:
    """The ``--allow`` values, checked against REASONS (a typo must not pass silently)."""
    names = list(dict.fromkeys(allow))
    unknown = [name for name in names if name not in REASONS]
    if unknown:
        raise UsageError(f"--allow {unknown[0]!r} is not a reason slo recommend refuses a run for",
                         hint=f"reasons are: {', '.join(REASONS)}")
    return names


def gate(evaluations: Iterable[RunEvaluation], allow: Iterable[str]) -> list[Refusal]:
    """The refusals that ``allow`` lets through (for the draft); raises ``EvidenceRefused``
    naming each reason that is not allowed."""
    allowed = set(check_allow(allow))
    every = [refusal for evaluation in evaluations for refusal in refusals(evaluation)]
    blocked = [refusal for refusal in every if refusal.reason not in allowed]
    if blocked:
        reasons = sorted({refusal.reason for refusal in blocked}, key=REASONS.index)
        raise EvidenceRefused(
            "refusing to draft SLO targets from weak evidence: " + "; ".join(r.text() for r in blocked),
            reasons,
            hint=("targets from such a run would write its failure into the SLO; measure a clean baseline, "
                  "or pass " + " ".join(f"--allow {name}" for name in reasons) + " to draft anyway "
                  "(the draft then says what was allowed)"),
        )
    return every
