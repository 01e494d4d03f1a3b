"""JUnit XML of a run evaluation: one test case per SLO category and phase.

FAIL is a ``<failure>``; NA or NOT-EXERCISED in a required category is a ``<failure>`` too
(it makes the run NO-GO); NA or NOT-EXERCISED in a category that is not required is
``<skipped>`` (its message carries the spec's justification). INVALID (the
load generator, not the service, limited the measurement) is an ``<error>``: the test could
not be carried out, which is neither a pass nor a failure of the service. In a phase that did
not run its planned course a FAIL stays a ``<failure>`` and every other category is an
``<error type="NOT-EVALUATED">``: measured so far, not judged; so is every category of a phase
that had nothing to judge (NOT-EVALUATED: its NAs are no failure of the service), and every
per-request threshold but a FAIL in a stopped phase. A run that did not complete has a suite
``run`` with one case ``status``: a ``<failure>`` when the breaker aborted it (NO-GO), else an
``<error type="NOT-EVALUATED">``, so a run cut short never reads as all green, even when the
phase it stopped in had no samples. Each suite's ``<properties>`` carry the phase's drops and
generator health (NA properties are left out).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from phase5site.reporting.endpoint_tables import endpoint_junit
from phase5site.reporting.models import GeneratorHealth, RunEvaluation
from phase5site.reporting.render import fmt_pooled, fmt_value
from phase5site.slo.models import NOT_EVALUATED, CategoryVerdict, PhaseEvaluation
from phase5site.slo.reconcile import Reconciliation


HEALTH_PROPERTIES = ("intended", "dropped", "dropped_share", "send_lag_p50_ms", "send_lag_p99_ms",
                     "send_lag_max_ms", "generator_lag_p99_ms", "generator_lag_max_ms",
                     "generator_cpu_ratio_max", "loop_lag_max_ms")


def _health_properties(suite: ET.Element, health: GeneratorHealth | None) -> None:
    if health is None:
        return
    properties = ET.SubElement(suite, "properties")
    for name in HEALTH_PROPERTIES:
        value = getattr(health, name)
        if value is not None:
            ET.SubElement(properties, "property", name=name, value=f"{value:g}")
    limited = ",".join(str(n) for n in health.limited_samples)
    ET.SubElement(properties, "property", name="generator_limited_samples", value=limited)


UNJUDGED = ("NA", "NOT-EXERCISED")


def _blocks(category: CategoryVerdict) -> bool:
    return category.verdict == "FAIL" or bool(category.required and category.verdict in UNJUDGED)


def _reconciliation_properties(suite: ET.Element, reconciliation: Reconciliation | None) -> None:
    """Client vs server counts of the phase, and each warning (``reconciliation_warning``)."""
    if reconciliation is None or reconciliation.phase is None:
        return
    properties = suite.find("properties")
    if properties is None:
        properties = ET.SubElement(suite, "properties")
    total = reconciliation.phase
    for name in ("client_answered", "client_timed", "server_requests", "client_failures", "server_errors"):
        value = getattr(total, name)
        if value is not None:
            ET.SubElement(properties, "property", name=f"reconcile_{name}", value=f"{value:g}")
    for warning in reconciliation.warnings:
        ET.SubElement(properties, "property", name="reconciliation_warning", value=warning)


def _unjudged_message(phase: PhaseEvaluation, category: CategoryVerdict) -> str | None:
    """Why a category of a phase without a verdict is no test result, or None when the phase
    has one: stopped ('phase ended interrupted ...: PASS so far, not judged'), or nothing to
    judge in it ('no category has a value to judge: ...')."""
    if phase.stopped:
        return f"phase {phase.stopped}: {category.verdict_label} so far, not judged"
    if phase.decision == NOT_EVALUATED:
        return f"{phase.reasons[0] if phase.reasons else 'not evaluated'}: {category.reason or category.verdict}"
    return None


def _run_status(suites: ET.Element, evaluation: RunEvaluation) -> None:
    """Suite ``run``, case ``status``, for a run that did not complete (module docstring)."""
    status = evaluation.status
    if status in (None, "completed"):
        return
    why = evaluation.exit_reason or "no reason recorded"
    aborted = status == "aborted"
    suite = ET.SubElement(suites, "testsuite", name="run", tests="1", failures=str(int(aborted)),
                          errors=str(int(not aborted)), skipped="0")
    case = ET.SubElement(suite, "testcase", classname="run", name="status")
    if aborted:
        ET.SubElement(case, "failure", message=f"run aborted: {why} (the breaker stops the load only when "
                                               "the service suffers)")
    else:
        ET.SubElement(case, "error", type=NOT_EVALUATED, message=f"run {status}: incomplete evidence ({why})")


def render_junit(evaluation: RunEvaluation) -> str:
    suites = ET.Element("testsuites", name=f"phase5site {evaluation.run_id}")
    for phase in evaluation.evaluated_phases():
        assert phase.evaluation is not None
        cases = phase.evaluation.categories
        unjudged = {c.category: _unjudged_message(phase.evaluation, c) for c in cases}
        stopped = phase.evaluation.stopped
        failures = sum(1 for c in cases if c.verdict == "FAIL" or (unjudged[c.category] is None and _blocks(c)))
        if stopped or phase.evaluation.decision == NOT_EVALUATED:
            skipped = 0
            errors = len(cases) - failures
        else:
            skipped = sum(1 for c in cases if not c.required and c.verdict in UNJUDGED)
            errors = sum(1 for c in cases if c.verdict == "INVALID")
        suite = ET.SubElement(
            suites, "testsuite", name=f"slo.{phase.phase}", tests=str(len(cases)),
            failures=str(failures), errors=str(errors), skipped=str(skipped),
        )
        _health_properties(suite, phase.generator)
        _reconciliation_properties(suite, phase.reconciliation)
        for category in cases:
            case = ET.SubElement(suite, "testcase", classname=f"slo.{phase.phase}", name=category.category)
            values = "; ".join(
                f"{row.source} {fmt_pooled(row)} (threshold {row.comparison} "
                f"{fmt_value(row.threshold, row.unit)}, {row.verdict_label})"
                for row in category.rows
            )
            message = unjudged[category.category]
            if category.verdict == "FAIL" or (message is None and _blocks(category)):
                failure = ET.SubElement(case, "failure", message=category.reason or category.verdict)
                failure.text = values
            elif message is not None:
                error = ET.SubElement(case, "error", type=NOT_EVALUATED, message=message)
                error.text = values
            elif category.verdict == "INVALID":
                error = ET.SubElement(case, "error", type="INVALID", message=category.reason or "generator-limited")
                error.text = values
            elif category.verdict in UNJUDGED:
                message = category.reason or "not measured"
                if category.justification:
                    message += f"; not required: {category.justification}"
                ET.SubElement(case, "skipped", message=message)
            if category.significant is False:  # passes, but the data cannot tell it from a FAIL
                values = f"{category.verdict_label}: {values}"
            ET.SubElement(case, "system-out").text = values
    endpoint_junit(suites, evaluation)
    _run_status(suites, evaluation)
    if not evaluation.evaluated_phases():
        suite = ET.SubElement(suites, "testsuite", name="slo", tests="1", failures="0", errors="1", skipped="0")
        case = ET.SubElement(suite, "testcase", classname="slo", name="samples")
        ET.SubElement(case, "error", type="NOT-EVALUATED", message="no phase has samples: nothing to judge")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
