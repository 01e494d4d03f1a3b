"""The SLO draft document (what ``slo recommend`` writes, what ``slo finalize`` reads).

The draft is YAML: a human may edit ``proposed_target`` values before finalizing. It is
converted to and from plain dicts here (pure); reading and writing files is reporting's job.

Units in the draft: ratios 0-1, latency in milliseconds, memory in MiB.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from phase5site.errors import UsageError
from phase5site.slo.categories import CATEGORIES
from phase5site.slo.recommend import Draft
from phase5site.runspec.models import SloSpec

DRAFT_KIND = "phase5site/slo-draft"
DRAFT_VERSION = 1


def draft_document(
    draft: Draft, *, service: str, selector: str, first_start: float | None, last_end: float | None,
    allowed: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The draft as a plain dict, ready for YAML (NA is null). ``first_start``/``last_end``
    span the samples used; ``allowed`` lists weak evidence let through with ``--allow``
    ({reason, run, detail}), which ``slo finalize`` carries into the document's caveats."""
    return {
        "kind": DRAFT_KIND,
        "draft_version": DRAFT_VERSION,
        "service": service,
        "selector": selector,
        "headroom": draft.headroom,
        "sources": list(draft.sources),
        "measurement": {
            "phases": draft.n_phases,
            "measured_seconds": draft.measured_seconds,
            "request_rate_per_s": draft.measured_request_rate,
            "first_start_epoch_s": first_start,
            "last_end_epoch_s": last_end,
        },
        "categories": [asdict(proposal) for proposal in draft.proposals],
        "notes": list(draft.notes),
        "evidence_allowed": list(allowed or []),
    }


@dataclass(frozen=True)
class Objective:
    """One final objective: the target and what was observed when it was set."""

    category: str
    title: str
    mandatory: bool
    comparison: str
    unit: str
    target: float
    observed: float | None
    confidence: str
    confidence_note: str
    required: bool = True
    justification: str | None = None  # why not required (the run spec's words)


@dataclass(frozen=True)
class SloTargets:
    """What ``slo finalize`` turns into documents."""

    version: str
    service: str
    selector: str
    objectives: list[Objective]
    from_draft: bool
    measured_request_rate: float | None = None
    measured_seconds: float | None = None
    first_start: float | None = None
    last_end: float | None = None
    sources: list[str] = field(default_factory=list)
    headroom: float | None = None
    allowed: list[str] = field(default_factory=list)  # weak evidence let through (--allow)

    def objective(self, category: str) -> Objective:
        return next(o for o in self.objectives if o.category == category)


def targets_from_release_criteria(version: str, *, service: str = "metasheet", selector: str = "") -> SloTargets:
    """Targets from DESIGN.md's release criteria (no draft, no measurement)."""
    slo = SloSpec()
    objectives = [
        Objective(c.name, c.title, c.mandatory, c.comparison, c.unit, c.threshold(slo), None, "none",
                  "no baseline measurement: release criteria used as they are")
        for c in CATEGORIES
    ]
    return SloTargets(version, service, selector, objectives, from_draft=False)


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"draft: {where} must be a number or null (got {value!r})", hint="fix the draft file and retry")
    return float(value)


def targets_from_draft(document: Mapping[str, Any], version: str) -> SloTargets:
    """Parse a draft dict; every category needs a numeric ``proposed_target``, except one the
    runs' spec did not require (``required: false`` with a justification), which keeps its
    release criterion (``current_threshold``) when nothing was measured for it."""
    if document.get("kind") != DRAFT_KIND:
        raise UsageError(
            f"not a phase5site SLO draft (kind {document.get('kind')!r}, expected {DRAFT_KIND!r})",
            hint="create one with `phase5site slo recommend RUN_DIR...`",
        )
    entries = {entry.get("category"): entry for entry in document.get("categories") or [] if isinstance(entry, Mapping)}
    objectives = []
    for category in CATEGORIES:
        entry = entries.get(category.name)
        if entry is None:
            raise UsageError(f"draft: category {category.name!r} is missing", hint="re-run `slo recommend`")
        target = _number(entry.get("proposed_target"), f"{category.name}.proposed_target")
        required = entry.get("required", category.mandatory) is not False
        justification = str(entry["justification"]) if entry.get("justification") else None
        note = str(entry.get("confidence_note") or "")
        current = _number(entry.get("current_threshold"), f"{category.name}.current_threshold")
        unmeasured = target is None
        if unmeasured and not required and (justification or not category.mandatory):
            # Not measured by the baseline and not required (a mandatory one only with the
            # spec's reason; MetaSheet exports no plugin reload sample at all): the release
            # criterion stands as the objective, marked as not measured.
            target = current if current is not None else category.threshold(SloSpec())
            note = "not measured in the baseline: the release criterion is kept"
        if target is None:
            raise UsageError(
                f"draft: {category.name}.proposed_target is null (nothing was measured for it)",
                hint="set a target by hand in the draft, or measure a run with server metrics",
            )
        if category.unit == "ratio" and not 0.0 < target < 1.0:
            raise UsageError(f"draft: {category.name}.proposed_target must be between 0 and 1, exclusive (got {target!r})")
        if category.unit != "ratio" and not target > 0.0:
            raise UsageError(f"draft: {category.name}.proposed_target must be > 0 {category.unit} (got {target!r})")
        objectives.append(
            Objective(
                category.name, category.title, category.mandatory, category.comparison, category.unit, target,
                _number(entry.get("observed_pooled"), f"{category.name}.observed_pooled"),
                "none" if unmeasured else str(entry.get("confidence") or "none"), note, required, justification,
            )
        )
    measurement = document.get("measurement") or {}
    if not isinstance(measurement, Mapping):
        raise UsageError(f"draft: measurement must be a mapping (got {measurement!r:.80})",
                         hint="re-run `slo recommend`, or restore the measurement block")
    return SloTargets(
        version=version,
        service=str(document.get("service") or "metasheet"),
        selector=str(document.get("selector") or ""),
        objectives=objectives,
        from_draft=True,
        measured_request_rate=_number(measurement.get("request_rate_per_s"), "measurement.request_rate_per_s"),
        measured_seconds=_number(measurement.get("measured_seconds"), "measurement.measured_seconds"),
        first_start=_number(measurement.get("first_start_epoch_s"), "measurement.first_start_epoch_s"),
        last_end=_number(measurement.get("last_end_epoch_s"), "measurement.last_end_epoch_s"),
        sources=[str(s) for s in document.get("sources") or []],
        headroom=_number(document.get("headroom"), "headroom"),
        allowed=[f"{e.get('run')}: {e.get('reason')}: {e.get('detail')}"
                 for e in document.get("evidence_allowed") or [] if isinstance(e, Mapping)],
    )
