"""Propose SLO targets from baseline data (pure).

Rules (DESIGN.md "SLO recommendation"):
- minimum ratios (success, cache hit, plugin reload, snapshot): the pooled value less a
  headroom, rounded DOWN to 0.1% (``floor(v * 1000) / 1000``), capped at 99.9% because a
  100% target leaves no error budget; maximum ratios (error rate, effective fallback): the
  pooled value plus the headroom, rounded UP to 0.1%. The headroom is the larger of half
  the distance from the pooled value to the release threshold and the width of the pooled
  value's 95% confidence interval (``ratio_headroom``): a target on the measured value
  itself (cache hit >= 89.70% against a measured 89.73%) fails the next baseline by chance;
- latency: the worst sample (worst of server and client) times (1 + headroom), rounded UP
  to the next 50 ms;
- memory: the largest sample RSS times (1 + headroom), rounded UP to the next 50 MiB;
- latency and memory: when the worst window is more than 3x the median window of its
  source it is an outlier (one stalled window, not the service's level): the proposal warns
  and shows a robust choice beside it, the k-th worst window with k = 1 + the number of
  outlier windows (the worst window that is not an outlier), and the target it would give;
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
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from phase5site import quantiles
from phase5site.slo.categories import CATEGORIES, Category, number
from phase5site.slo.evaluate import PhaseData, evaluate_phase
from phase5site.slo.models import INVALID, NOT_EXERCISED, PhaseEvaluation, SourceRow
from phase5site.slo.stats import Interval, max_exceeds_quantile_probability
from phase5site.runspec.models import SloSpec

LOW_CONFIDENCE_BELOW = 12
AVAILABILITY_STEP = 0.001
AVAILABILITY_CAP = 0.999
LATENCY_STEP_MS = 50.0
MEMORY_STEP_MB = 50.0
DEFAULT_HEADROOM = 0.2
OUTLIER_FACTOR = 3.0


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
    # Latency/memory: the worst window that is not an outlier (None: no outlier, or ratios).
    robust_sample: WorstSample | None = None
    robust_k: int | None = None
    robust_target: float | None = None
    robust_rule: str | None = None


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


def _observed(rows: Sequence[SourceRow], category: Category) -> SourceRow | None:
    """The pooled row that constrains the target most (worst of the sources)."""
    valued = [row for row in rows if row.pooled is not None and _usable(row)]
    if not valued:
        return None
    pick = min if category.comparison == ">=" else max
    return pick(valued, key=lambda r: r.pooled)  # type: ignore[arg-type,return-value]


def ratio_headroom(pooled: float, threshold: float, comparison: str, interval: Interval | None) -> float:
    """How far a ratio target keeps from the measured value: the larger of half the
    distance to the release threshold and the width of the 95% interval (0 if unknown).

    >>> round(ratio_headroom(0.8973, 0.80, ">=", None), 5)  # cache hit 89.73% vs >= 80%
    0.04865
    >>> round(ratio_headroom(0.995, 0.98, ">=", Interval("wilson", 0.95, 0.99, 0.998)), 5)
    0.008
    """
    distance = pooled - threshold if comparison == ">=" else threshold - pooled
    width = 0.0
    if interval is not None and interval.low is not None and interval.high is not None:
        width = max(0.0, interval.high - interval.low)
    return max(distance / 2.0, width, 0.0)


def _ratio_target(category: Category, row: SourceRow | None, threshold: float) -> tuple[float | None, str]:
    rule = ("pooled value {sign} max(half the distance to the release threshold, the 95% interval's width), "
            "rounded {way} to 0.1%{cap}")
    if category.comparison == ">=":
        rule = rule.format(sign="-", way="down", cap=", at most 99.9%")
    else:
        rule = rule.format(sign="+", way="up", cap=", at least 0.1%")
    if row is None or row.pooled is None:
        return None, rule
    room = ratio_headroom(row.pooled, threshold, category.comparison, row.interval)
    if category.comparison == ">=":
        return min(AVAILABILITY_CAP, floor_step(max(0.0, row.pooled - room), AVAILABILITY_STEP)), rule
    return max(AVAILABILITY_STEP, ceil_step(min(1.0, row.pooled + room), AVAILABILITY_STEP)), rule


def _scaled_target(category: Category, value: float | None, headroom: float) -> float | None:
    step = LATENCY_STEP_MS if category.kind == "latency" else MEMORY_STEP_MB
    return None if value is None else max(step, ceil_step(value * (1.0 + headroom), step))


def _target(category: Category, row: SourceRow | None, worst: WorstSample | None, headroom: float,
            threshold: float) -> tuple[float | None, str]:
    if category.kind == "ratio":
        return _ratio_target(category, row, threshold)
    step, unit = (LATENCY_STEP_MS, "ms") if category.kind == "latency" else (MEMORY_STEP_MB, "MiB")
    rule = f"worst sample x {1 + headroom:g} (headroom {headroom * 100:g}%), rounded up to the next {step:g} {unit}"
    return _scaled_target(category, None if worst is None else worst.value, headroom), rule


def window_values(category: Category, data: PhaseData, source: str) -> list[tuple[int, float]]:
    """(sample number, value) of each window with a value, for latency (ms) and memory (MiB):
    server latency from the window's bucket deltas (else its stored column), client latency
    from the window's client column, memory from rss_mb."""
    if category.kind == "memory":
        rows, column = (data.server_samples if source == "server" else []), "rss_mb"
    elif source == "server":
        rows, column = data.server_samples, ""
    else:
        rows, column = data.client_samples, f"client_p{round((category.quantile or 0) * 100)}_ms"
    values = []
    for index, row in enumerate(rows):
        value = number(row, column) if column else _server_latency_ms(row, category.quantile or 0.0)
        if value is not None:
            values.append((int(row.get("sample_num") or index + 1), value))
    return values


def _server_latency_ms(row: dict, q: float) -> float | None:
    buckets = quantiles.parse_buckets(row.get("latency_buckets"))
    value_s = quantiles.histogram_quantile(q, buckets) if buckets else number(row, f"p{round(q * 100)}_latency")
    return None if value_s is None else value_s * 1000.0


def robust_choice(windows: Sequence[tuple[str, float]]) -> tuple[int, tuple[str, float], float] | None:
    """(k, the k-th worst window, the median) when the worst window is an outlier (more than
    3x the median window), k = 1 + the number of outlier windows; None otherwise.

    >>> robust_choice([("#1", 80.0), ("#2", 90.0), ("#3", 1021.0), ("#4", 85.0)])
    (2, ('#2', 90.0), 87.5)
    >>> robust_choice([("#1", 80.0), ("#2", 90.0)]) is None
    True
    """
    if len(windows) < 2:
        return None
    median = statistics.median(value for _, value in windows)
    ranked = sorted(windows, key=lambda w: w[1], reverse=True)
    if median <= 0 or ranked[0][1] <= OUTLIER_FACTOR * median:
        return None
    k = 1 + sum(1 for _, value in ranked if value > OUTLIER_FACTOR * median)
    return (k, ranked[k - 1], median) if k <= len(ranked) else None


def _robust(evaluations: Sequence[tuple[str, PhaseEvaluation]], phases: Sequence[tuple[str, PhaseData]],
            category: Category) -> tuple[int, WorstSample, float, str] | None:
    """The robust choice over the sources whose worst window is an outlier (the largest),
    with the warning that names the outlier."""
    found: list[tuple[int, WorstSample, float, str]] = []
    for source in ("server", "client"):
        windows = []
        for (label, evaluation), (_, data) in zip(evaluations, phases):
            rows = [r for r in evaluation.category(category.name).rows if r.source == source and _usable(r)]
            if rows:
                windows += [(f"{label} #{num}", value) for num, value in window_values(category, data, source)]
        choice = robust_choice(windows)
        if choice is not None:
            k, (label, value), median = choice
            worst = max(windows, key=lambda w: w[1])
            warning = (f"{source} worst window {worst[0]} ({worst[1]:.1f} {category.unit}) is "
                       f"{worst[1] / median:.1f}x the median window ({median:.1f} {category.unit}): an outlier, "
                       f"not the service's level; robust choice: the k-th worst window with k = {k} ({label}, "
                       f"{value:.1f} {category.unit}): the worst one not above {OUTLIER_FACTOR:g}x the median")
            found.append((k, WorstSample(label, source, value), median, warning))
    return max(found, key=lambda f: f[1].value) if found else None


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
        observed = _observed(pooled.category(category.name).rows, category)
        worst = _worst(evaluations, category)
        target, rule = _target(category, observed, worst, headroom, category.threshold(slo))
        n_valid, n_total = _counts(evaluations, category)
        level, note = confidence_note(n_valid)
        warnings = _warnings(evaluations, category)
        robust = _robust(evaluations, phases, category) if category.kind != "ratio" else None
        if robust is not None:
            warnings.append(robust[3])
        if warnings and level == "adequate":
            level, note = "low", f"{note}; weak evidence: {len(warnings)} warning(s)"
        verdict = pooled.category(category.name)
        proposals.append(
            Proposal(
                category=category.name, title=category.title, mandatory=category.mandatory,
                comparison=category.comparison, unit=category.unit,
                observed_pooled=None if observed is None else observed.pooled,
                observed_source=None if observed is None else observed.source, worst_sample=worst,
                proposed_target=target, current_threshold=category.threshold(slo), rule=rule,
                n_valid_samples=n_valid, n_samples=n_total, coverage=(n_valid / n_total) if n_total else None,
                confidence=level, confidence_note=note, warnings=warnings,
                required=bool(verdict.required), justification=verdict.justification,
                robust_sample=None if robust is None else robust[1],
                robust_k=None if robust is None else robust[0],
                robust_target=None if robust is None else _scaled_target(category, robust[1].value, headroom),
                robust_rule=None if robust is None else (
                    f"the k-th worst window, k = {robust[0]} (1 + the windows above {OUTLIER_FACTOR:g}x the median "
                    f"{robust[2]:.1f} {category.unit}) x {1 + headroom:g}, rounded up like the worst"),
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
