"""Adapter between ``phase5site.reporting.evaluate_run`` and the pages.

The site never computes a verdict (CONTRACTS.md: "the site uses evaluate_run too; it never
recomputes a verdict itself"). This module only reshapes whatever ``evaluate_run`` returns
into the flat rows the templates print. If the reporting part is missing or fails on a run,
the page says so and every verdict is NA: an unknown verdict is never shown as a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class VerdictRow:
    phase: str | None
    category: str
    pooled: str
    worst_sample: str
    target: str
    verdict: str  # PASS | FAIL | NA | INVALID | NOT-EXERCISED
    note: str = ""
    pooled_value: float | None = None
    ci_low: float | None = None  # confidence interval of the pooled value, when evaluated
    ci_high: float | None = None
    key: str = ""  # stable id "category/source", used to line runs up on the comparison page
    unit: str = ""
    significant: bool | None = None  # False: a PASS whose confidence interval crosses the threshold


@dataclass(frozen=True)
class RunVerdicts:
    decision: str | None  # GO | NO-GO | INVALID | None (not evaluated)
    reasons: list[str] = field(default_factory=list)
    rows: list[VerdictRow] = field(default_factory=list)
    unavailable: str | None = None  # why there is no evaluation
    caveats: list[str] = field(default_factory=list)
    phases: list[PhaseDecision] = field(default_factory=list)
    health: list[PhaseHealth] = field(default_factory=list)  # generator health and drops
    warnings: list[str] = field(default_factory=list)  # client and server counts disagree
    synthetic: list[str] = field(default_factory=list)  # diagnostics requests of the mix
    # per phase: the reconciliation (slo.reconcile.Reconciliation, or its JSON), as given
    reconciliations: list[tuple[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class PhaseDecision:
    phase: str
    decision: str | None  # GO | NO-GO | INVALID | NOT-EVALUATED | None (phase not observed)
    reasons: list[str] = field(default_factory=list)
    stopped: str | None = None  # how the phase fell short of its course: its rows are "so far"
    outside: str | None = None  # the requests outside every sample window, in words


@dataclass(frozen=True)
class PhaseHealth:
    """A phase's ``reporting.GeneratorHealth`` (drops, send lag, own lag, windows), as given."""

    phase: str
    health: Any


Evaluator = Callable[[Path], Any]


def default_evaluator() -> Evaluator | None:
    """``evaluate_run`` from the reporting part, or None while it is not installed."""
    try:
        from phase5site.reporting import evaluate_run
    except ImportError:
        return None
    return evaluate_run  # type: ignore[no-any-return]


def evaluate(run_dir: Path, evaluator: Evaluator | None) -> RunVerdicts:
    """Run the evaluator on one run and flatten its answer; never raises."""
    if evaluator is None:
        return RunVerdicts(None, unavailable="the SLO evaluator (phase5site.reporting) is not installed")
    try:
        evaluation = evaluator(run_dir)
    except Exception as error:  # noqa: BLE001 - one broken run must not break the site
        return RunVerdicts(None, unavailable=f"the SLO evaluation failed: {error}")
    return flatten(evaluation)


def get_field(obj: Any, *names: str, default: Any = None) -> Any:
    """The first of ``names`` that ``obj`` has, as a key or an attribute (evaluations come as
    dataclasses or as their JSON); ``default`` when none."""
    for name in names:
        if isinstance(obj, Mapping) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    return default


def _decision(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "GO" if value else "NO-GO"
    text = str(getattr(value, "value", value)).upper().replace("_", "-")
    return {"GO": "GO", "NO-GO": "NO-GO", "NOGO": "NO-GO", "INVALID": "INVALID"}.get(text, text)


def value_text(value: float | None, unit: str) -> str:
    """A measured value with its unit; ratios as percentages; NA for None.

    Example: ``value_text(0.98765, "ratio")`` -> ``'98.77%'``; ``value_text(120.5, "ms")`` -> ``'120.5 ms'``.
    """
    if value is None:
        return "NA"
    if unit == "ratio":
        return f"{value:.2%}"
    return f"{value:.4g} {unit}".strip()


def _interval(raw: Any) -> tuple[float | None, float | None]:
    interval = get_field(raw, "interval")
    if interval is None:
        return _number(get_field(raw, "ci_low")), _number(get_field(raw, "ci_high"))
    return _number(get_field(interval, "low")), _number(get_field(interval, "high"))


VERDICTS = ("PASS", "FAIL", "NA", "INVALID", "NOT-EXERCISED")
TIMED_ONLY = ("success_rate", "error_rate")


def _source_row(phase: str | None, category: Any, raw: Any, server_caveat: str | None = None) -> VerdictRow:
    """One SourceRow of the SLO evaluation (phase5site.slo.models) as a table row."""
    unit = str(get_field(raw, "unit", default="") or "")
    pooled = _number(get_field(raw, "pooled"))
    worst_num, worst_value = get_field(raw, "worst_sample"), _number(get_field(raw, "worst_value"))
    worst_bound = "≥ " if get_field(raw, "worst_censored", default=False) else ""
    worst = "NA" if worst_value is None else f"{worst_bound}{value_text(worst_value, unit)} (sample {worst_num})"
    threshold = _number(get_field(raw, "threshold"))
    comparison = str(get_field(raw, "comparison", default="") or "")
    target = "NA" if threshold is None else f"{comparison} {value_text(threshold, unit)}".strip()
    title = get_field(category, "title", "category", default=get_field(raw, "category", default="?"))
    source = get_field(raw, "source")
    notes = [str(get_field(raw, "na_reason"))] if get_field(raw, "na_reason") else []
    if get_field(raw, "invalid_reason"):
        notes.append(f"INVALID: {get_field(raw, 'invalid_reason')}")
    censored = bool(get_field(raw, "censored", default=False))
    if censored:
        notes.append(f"censored: the percentile fell on one of {get_field(raw, 'dropped', default=0)} dropped "
                     "requests, so it is a lower bound")
    notes += [str(note) for note in get_field(raw, "notes", default=[]) or []]
    significant = get_field(raw, "significant", default=None)
    if significant is False:
        notes.append("PASS, not significant: the 95% confidence interval reaches past the threshold")
    share = _number(get_field(raw, "share_within"))
    if share is not None:
        notes.append(f"{share:.3%} of requests within the threshold")
    required = get_field(category, "required", "mandatory", default=True)
    justification = get_field(category, "justification", default=None)
    if required is False and justification:
        notes.append(f"not required: {justification}")
    elif required is False:
        notes.append("optional: NA is neutral")
    verdict = str(get_field(raw, "verdict", default="NA")).upper()
    moved_by = get_field(category, "moved_by", default=None)
    if verdict == "NOT-EXERCISED" and moved_by:
        notes.append(f"what would exercise it: {moved_by}")
    if server_caveat and source == "server" and get_field(category, "category", default="") in TIMED_ONLY:
        notes.insert(0, f"⚠ {server_caveat}")
    low, high = _interval(raw)
    return VerdictRow(
        phase=phase,
        category=f"{title} ({source})" if source else str(title),
        pooled=("≥ " if censored and pooled is not None else "") + value_text(pooled, unit),
        worst_sample=worst,
        target=target,
        verdict=verdict or "NA",  # a state this site does not know is shown by its name
        note="; ".join(notes),
        pooled_value=pooled,
        ci_low=low,
        ci_high=high,
        key=f"{get_field(category, 'category', default=title)}/{source}",
        unit=unit,
        significant=significant if isinstance(significant, bool) else None,
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _phase_rows(phase: Any) -> list[VerdictRow]:
    name = get_field(phase, "phase", "name")
    judged = get_field(phase, "evaluation", default=None) or phase  # PhaseReport wraps PhaseEvaluation
    # a phase cut short shows what it measured so far, labelled so on every row
    label = None if name is None else str(name) + (" (so far)" if get_field(judged, "stopped") else "")
    caveat = _server_caveat(get_field(phase, "reconciliation", default=None))
    rows = []
    for category in get_field(judged, "categories", default=[]) or []:
        for raw in get_field(category, "rows", default=[]) or []:
            rows.append(_source_row(label, category, raw, caveat))
    return rows


def _server_caveat(reconciliation: Any) -> str | None:
    """The reconciliation's caveat of the server's success and error rates (object or JSON)."""
    if reconciliation is None:
        return None
    caveat = getattr(reconciliation, "caveat", None)
    if caveat is not None or not isinstance(reconciliation, Mapping):
        return caveat  # type: ignore[no-any-return]
    total = reconciliation.get("phase") or {}
    if total.get("server_requests") is None:
        return None
    if not (total.get("count_warning") or total.get("error_warning") or reconciliation.get("untimed")):
        return None
    untimed = reconciliation.get("untimed") or []
    names = f" (not timed: {', '.join(map(str, untimed))})" if untimed else ""
    return (f"the service counted {total['server_requests']:,.0f} of {total.get('client_answered', 0):,} requests{names}: "
            "its success and error rates describe only the requests it counts (timed routes)")


def _outside_text(outside: Any) -> str | None:
    """Example: '40 requests outside every sample window (1 errors, 0 dropped, P95 12.0 ms):
    counted apart, not in the pooled figures'."""
    requests = _number(get_field(outside, "requests")) if outside is not None else None
    if not requests:
        return None
    p95 = _number(get_field(outside, "latency_p95_ms"))
    return (f"{requests:,.0f} requests outside every sample window ({get_field(outside, 'errors', default=0):,} errors, "
            f"{get_field(outside, 'dropped', default=0):,} dropped, P95 {'NA' if p95 is None else f'{p95:.1f} ms'}): "
            "counted apart, not in the pooled figures")


def _endpoint_rows(evaluation: Any) -> list[VerdictRow]:
    """The per-request thresholds (spec ``requests[].slo``), as rows of the verdict table."""
    rows = []
    for endpoint in get_field(evaluation, "endpoints", default=[]) or []:
        name = get_field(endpoint, "name")
        for t in get_field(endpoint, "thresholds", default=[]) or []:
            value = _number(get_field(t, "value_ms"))
            bound = "≥ " if get_field(t, "censored", default=False) and value is not None else ""
            quantile = str(get_field(t, "quantile", default="?"))
            threshold = _number(get_field(t, "threshold_ms"))
            reason = get_field(t, "reason")
            rows.append(VerdictRow(
                phase=str(get_field(endpoint, "phase")),
                category=f"request {name} {quantile.upper()} (client)",
                pooled=bound + value_text(value, "ms"),
                worst_sample="NA",
                target="NA" if threshold is None else f"<= {value_text(threshold, 'ms')}",
                verdict=str(get_field(t, "verdict", default="NA")).upper(),
                note="; ".join([str(reason)] if reason else []
                               + ["per-request threshold (spec requests[].slo), over every request of that name"]),
                pooled_value=value,
                key=f"request:{name}:{quantile}/client",
                unit="ms",
            ))
    return rows


def flatten(evaluation: Any) -> RunVerdicts:
    """Reshape a ``RunEvaluation`` (object or mapping) into ``RunVerdicts``."""
    phases = get_field(evaluation, "phases", default=None)
    if isinstance(phases, Mapping):
        phases = list(phases.values())
    rows: list[VerdictRow] = []
    decisions: list[PhaseDecision] = []
    health: list[PhaseHealth] = []
    reconciliations: list[tuple[str, Any]] = []
    for phase in phases or []:
        rows.extend(_phase_rows(phase))
        if get_field(phase, "reconciliation") is not None:
            reconciliations.append((str(get_field(phase, "phase", "name")), get_field(phase, "reconciliation")))
        if get_field(phase, "generator") is not None:
            health.append(PhaseHealth(str(get_field(phase, "phase", "name")), get_field(phase, "generator")))
        judged = get_field(phase, "evaluation", default=None)
        if judged is not None:
            decisions.append(PhaseDecision(str(get_field(phase, "phase", "name")), _decision(get_field(judged, "decision")),
                                           [str(r) for r in get_field(judged, "reasons", default=[]) or []],
                                           stopped=get_field(judged, "stopped"),
                                           outside=_outside_text(get_field(judged, "outside"))))
    if not phases and get_field(evaluation, "categories") is not None:
        rows.extend(_phase_rows(evaluation))
    rows.extend(_endpoint_rows(evaluation))
    reasons = [str(reason) for reason in get_field(evaluation, "reasons", default=[]) or []]
    caveats = [str(c) for c in get_field(evaluation, "caveats", default=[]) or []]
    return RunVerdicts(
        decision=_decision(get_field(evaluation, "decision", "go_no_go", "verdict")),
        reasons=reasons,
        rows=rows,
        caveats=caveats,
        phases=decisions,
        health=health,
        warnings=[str(w) for w in get_field(evaluation, "warnings", default=[]) or []],
        synthetic=[str(n) for n in get_field(evaluation, "synthetic", default=[]) or []],
        reconciliations=reconciliations,
    )
