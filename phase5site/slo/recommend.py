"""Propose SLO targets from baseline data (pure).

Rules (DESIGN.md "SLO recommendation"):
- minimum ratios (success, cache hit, plugin reload, snapshot): the pooled value rounded
  DOWN to 0.1% (``floor(v * 1000) / 1000``), capped at 99.9% because a 100% target leaves
  no error budget;
- maximum ratios (error rate, effective fallback): the pooled value rounded UP to 0.1%;
- latency: the worst sample (worst of server and client) times (1 + headroom), rounded UP
  to the next 50 ms;
- memory: the largest sample RSS times (1 + headroom), rounded UP to the next 50 MiB;
- INVALID rows (client latency of a generator-limited phase) measured the load generator,
  not the service: they propose nothing; nor do server rows with too few valid samples
  ("insufficient data"), which are named in the proposal's warnings;
- a PASS that is not significant (its confidence interval crosses the threshold) is never
  used silently: the proposal carries a warning naming it and its confidence is "low".
Each proposal carries n valid samples, coverage (non-NA share of samples) and a confidence
note: "low" below 12 valid samples. The maximum of n samples exceeds the population
q-quantile of per-sample values with probability 1 - q**n; we report the q for which that
probability is 95% (q = 0.05 ** (1/n)): with 12 samples the worst sample is, with 95%
probability, above only the 77.9% quantile of windows like these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from phase5site.slo.categories import CATEGORIES, Category
from phase5site.slo.evaluate import PhaseData, evaluate_phase
from phase5site.slo.models import INVALID, NOT_EXERCISED, PhaseEvaluation, SourceRow
from phase5site.slo.stats import max_exceeds_quantile_probability
from phase5site.runspec.models import SloSpec

LOW_CONFIDENCE_BELOW = 12
AVAILABILITY_STEP = 0.001
AVAILABILITY_CAP = 0.999
LATENCY_STEP_MS = 50.0
MEMORY_STEP_MB = 50.0
DEFAULT_HEADROOM = 0.2


@dataclass(frozen=True)
class WorstSample:
    label: str  # "<run> / <phase> #<sample>"
    source: str
    value: float


@dataclass(frozen=True)
class Proposal:
    category: str
    title: str
    mandatory: bool
    comparison: str
    unit: str
    observed_pooled: float | None
    observed_source: str | None
    worst_sample: WorstSample | None
    proposed_target: float | None
    current_threshold: float
    rule: str
    n_valid_samples: int
    n_samples: int
    coverage: float | None
    confidence: str  # 'low' | 'adequate' | 'none'
    confidence_note: str
    warnings: list[str] = field(default_factory=list)
    required: bool = True  # the runs' spec (slo.categories), default: mandatory
    justification: str | None = None  # why not required, in the spec's words


@dataclass(frozen=True)
class Draft:
    headroom: float
    sources: list[str]
    n_phases: int
    measured_request_rate: float | None  # pooled requests / measured seconds
    measured_seconds: float | None
    proposals: list[Proposal]
    notes: list[str] = field(default_factory=list)


def _on_grid(multiple: int, step: float) -> float:
    # multiple * step in binary floating point is off by an ulp for many multiples
    # (950 * 0.001 == 0.9500000000000001): "rounded down" would then end above the
    # measured 0.95. Rounding to 12 decimals gives the double nearest the decimal target.
    return round(multiple * step, 12)


def floor_step(value: float, step: float) -> float:
    """Round down to a multiple of ``step``. Example: ``floor_step(0.99568, 0.001) == 0.995``."""
    return _on_grid(math.floor(value / step + 1e-9), step)


def ceil_step(value: float, step: float) -> float:
    """Round up to a multiple of ``step``. Example: ``ceil_step(187.3, 50) == 200``."""
    return _on_grid(math.ceil(value / step - 1e-9), step)


def confidence_note(n_valid: int) -> tuple[str, str]:
    """('low'|'adequate'|'none', sentence) for n valid samples.

    Example: n = 12 -> ('adequate', '... 1 - q^12; for q = 0.779 that is 95% ...').
    """
    if n_valid == 0:
        return "none", "no valid sample: no target can be proposed"
    q95 = 0.05 ** (1.0 / n_valid)
    chance_q90 = max_exceeds_quantile_probability(n_valid, 0.9)
    level = "low" if n_valid < LOW_CONFIDENCE_BELOW else "adequate"
    return level, (
        f"{n_valid} valid samples: the worst of n samples exceeds the q-quantile of windows like "
        f"these with probability 1 - q^n, so with 95% probability it bounds only the "
        f"{q95 * 100:.1f}% quantile (it exceeds the 90% quantile with probability {chance_q90 * 100:.1f}%)"
        + (f"; fewer than {LOW_CONFIDENCE_BELOW} samples" if level == "low" else "")
    )


def _worst(evaluations: Sequence[tuple[str, PhaseEvaluation]], category: Category) -> WorstSample | None:
    candidates: list[WorstSample] = []
    for label, evaluation in evaluations:
        for row in evaluation.category(category.name).rows:
            if row.worst_value is not None and _usable(row):
                candidates.append(WorstSample(f"{label} #{row.worst_sample}", row.source, row.worst_value))
    if not candidates:
        return None
    pick = min if category.comparison == ">=" else max
    return pick(candidates, key=lambda c: c.value)


def _usable(row: SourceRow) -> bool:
    """Evidence a target may rest on: not the load generator's (INVALID), not too few samples,
    not counters the load never moved (NOT-EXERCISED: a 0 % fallback where nothing ran)."""
    return row.verdict not in (INVALID, NOT_EXERCISED) and not row.insufficient


def _warnings(evaluations: Sequence[tuple[str, PhaseEvaluation]], category: Category) -> list[str]:
    """Why the evidence behind a proposal is weak: not-significant PASS rows, and server
    rows left out for too few valid samples."""
    warnings = []
    for label, evaluation in evaluations:
        for row in evaluation.category(category.name).rows:
            if row.significant is False:
                warnings.append(f"{label}: {row.source} {row.verdict_label}: its 95% interval "
                                f"crosses {row.comparison} {row.threshold:g}, so the data behind this target "
                                "cannot tell it from a failure")
            if row.insufficient:
                warnings.append(f"{label}: {row.source} left out: {row.na_reason}")
    return warnings


def _observed(rows: Sequence[SourceRow], category: Category) -> tuple[float | None, str | None]:
    """The pooled value that constrains the target most (worst of the sources)."""
    valued = [row for row in rows if row.pooled is not None and _usable(row)]
    if not valued:
        return None, None
    pick = min if category.comparison == ">=" else max
    row = pick(valued, key=lambda r: r.pooled)  # type: ignore[arg-type,return-value]
    return row.pooled, row.source


def _target(category: Category, pooled: float | None, worst: WorstSample | None, headroom: float) -> tuple[float | None, str]:
    if category.kind == "ratio" and category.comparison == ">=":
        rule = "pooled value rounded down to 0.1%, at most 99.9%"
        return (None if pooled is None else min(AVAILABILITY_CAP, floor_step(pooled, AVAILABILITY_STEP))), rule
    if category.kind == "ratio":
        rule = "pooled value rounded up to 0.1%, at least 0.1%"
        return (None if pooled is None else max(AVAILABILITY_STEP, ceil_step(pooled, AVAILABILITY_STEP))), rule
    step, unit = (LATENCY_STEP_MS, "ms") if category.kind == "latency" else (MEMORY_STEP_MB, "MiB")
    rule = f"worst sample x {1 + headroom:g} (headroom {headroom * 100:g}%), rounded up to the next {step:g} {unit}"
    if worst is None:
        return None, rule
    return max(step, ceil_step(worst.value * (1.0 + headroom), step)), rule


def _counts(evaluations: Sequence[tuple[str, PhaseEvaluation]], category: Category) -> tuple[int, int]:
    """(valid, total) samples: per phase, the source with the most valid samples."""
    valid = total = 0
    for _, evaluation in evaluations:
        rows = evaluation.category(category.name).rows
        best = max(rows, key=lambda r: (r.n_valid, r.n_samples))
        valid += best.n_valid
        total += best.n_samples
    return valid, total


def recommend(
    phases: Sequence[tuple[str, PhaseData]], slo: SloSpec | None = None, headroom: float = DEFAULT_HEADROOM
) -> Draft:
    """Proposals pooled over every given phase (of one or more runs).

    ``phases`` are (label, data) pairs, the label naming run and phase for the worst sample.
    Example: one phase, success 9 950 of 10 000 -> proposed success target 0.995.
    """
    slo = slo or SloSpec()
    evaluations = [(label, evaluate_phase(data, slo)) for label, data in phases]
    pooled_data = PhaseData(
        phase="pooled",
        server_samples=[row for _, d in phases for row in d.server_samples],
        client_samples=[row for _, d in phases for row in d.client_samples],
        client_latencies_ms=_merged_latencies([d.client_latencies_ms for _, d in phases]),
        client_dropped_waits_ms=[wait for _, d in phases for wait in d.client_dropped_waits_ms],
    )  # its samples keep generator_limited: pooled client latency is INVALID if any phase's was
    pooled = evaluate_phase(pooled_data, slo)
    proposals = []
    for category in CATEGORIES:
        observed, source = _observed(pooled.category(category.name).rows, category)
        worst = _worst(evaluations, category)
        target, rule = _target(category, observed, worst, headroom)
        n_valid, n_total = _counts(evaluations, category)
        level, note = confidence_note(n_valid)
        warnings = _warnings(evaluations, category)
        if warnings and level == "adequate":
            level, note = "low", f"{note}; weak evidence: {len(warnings)} warning(s)"
        verdict = pooled.category(category.name)
        proposals.append(
            Proposal(
                category=category.name, title=category.title, mandatory=category.mandatory,
                comparison=category.comparison, unit=category.unit, observed_pooled=observed,
                observed_source=source, worst_sample=worst, proposed_target=target,
                current_threshold=category.threshold(slo), rule=rule, n_valid_samples=n_valid,
                n_samples=n_total, coverage=(n_valid / n_total) if n_total else None,
                confidence=level, confidence_note=note, warnings=warnings,
                required=bool(verdict.required), justification=verdict.justification,
            )
        )
    notes = [f"{label}: client latency left out, generator-limited (samples "
             f"{', '.join(map(str, e.generator_limited_samples))})"
             for label, e in evaluations if e.generator_limited_samples]
    return Draft(
        notes=notes,
        headroom=headroom,
        sources=[label for label, _ in phases],
        n_phases=len(phases),
        measured_request_rate=_request_rate(pooled_data),
        measured_seconds=_measured_seconds(pooled_data),
        proposals=proposals,
    )


def _merged_latencies(lists: Sequence[Sequence[float] | None]) -> list[float] | None:
    present = [values for values in lists if values is not None and len(values)]
    if not present:
        return None
    return sorted(float(v) for values in present for v in values)


def _measured_seconds(data: PhaseData) -> float | None:
    rows = data.server_samples or data.client_samples
    seconds = [row.get("window_s") for row in rows if row.get("window_s")]
    return float(sum(seconds)) if seconds else None  # type: ignore[arg-type]


def _request_rate(data: PhaseData) -> float | None:
    """Requests per second over the measured windows (server counts, else client counts)."""
    for rows, column in ((data.server_samples, "server_requests"), (data.client_samples, "client_requests")):
        # A server count covers its server window (between two scrapes inside the window,
        # schema 3), which can be shorter than the nominal window_s.
        seconds = "server_window_s" if column == "server_requests" else "window_s"
        pairs = [(row.get(column), row.get(seconds) or row.get("window_s")) for row in rows]
        pairs = [(float(n), float(w)) for n, w in pairs if n is not None and w]
        if pairs:
            return sum(n for n, _ in pairs) / sum(w for _, w in pairs)
    return None
