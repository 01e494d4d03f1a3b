"""JUnit XML of a run evaluation: one test case per SLO category and phase.

FAIL is a ``<failure>``; NA or NOT-EXERCISED in a required category is a ``<failure>`` too
(it makes the run NO-GO); NA or NOT-EXERCISED in a category that is not required is
``<skipped>`` (its message carries the spec's justification). INVALID (the
load generator, not the service, limited the measurement) is an ``<error>``: the test could
not be carried out, which is neither a pass nor a failure of the service. In a phase that did
not run its planned course (NOT-EVALUATED) a FAIL stays a ``<failure>`` and every other
category is an ``<error type="NOT-EVALUATED">``: measured so far, not judged. Each suite's
``<properties>`` carry the phase's drops and generator health (NA properties are left out).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from phase5site.reporting.endpoint_tables import endpoint_junit
from phase5site.reporting.models import GeneratorHealth, RunEvaluation
from phase5site.reporting.render import fmt_pooled, fmt_value
from phase5site.slo.models import CategoryVerdict
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


def render_junit(evaluation: RunEvaluation) -> str:
    suites = ET.Element("testsuites", name=f"phase5site {evaluation.run_id}")
    for phase in evaluation.evaluated_phases():
        assert phase.evaluation is not None
        cases = phase.evaluation.categories
        stopped = phase.evaluation.stopped
        failures = sum(1 for c in cases if c.verdict == "FAIL" or (not stopped and _blocks(c)))
        skipped = 0 if stopped else sum(1 for c in cases if not c.required and c.verdict in UNJUDGED)
        errors = len(cases) - failures if stopped else sum(1 for c in cases if c.verdict == "INVALID")
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
            if category.verdict == "FAIL" or (not stopped and _blocks(category)):
                failure = ET.SubElement(case, "failure", message=category.reason or category.verdict)
                failure.text = values
            elif stopped:
                error = ET.SubElement(case, "error", type="NOT-EVALUATED",
                                      message=f"phase {stopped}: {category.verdict_label} so far, not judged")
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
    if not evaluation.evaluated_phases():
        suite = ET.SubElement(suites, "testsuite", name="slo", tests="1", failures="0", errors="1", skipped="0")
        case = ET.SubElement(suite, "testcase", classname="slo", name="samples")
        ET.SubElement(case, "error", type="NOT-EVALUATED", message="no phase has samples: nothing to judge")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
