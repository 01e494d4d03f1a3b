"""Per-endpoint tables as Markdown (report) and JUnit test cases. Pure text.

A value is NA when it cannot be measured; a percentile that fell on a dropped request is
printed as a lower bound (``≥``), as in the verdict tables.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from phase5site.reporting.endpoints import EndpointStats, EndpointThreshold, TransportErrors
from phase5site.reporting.models import RunEvaluation

NA_TEXT = "NA"
LATENCY_KEYS: tuple[str, ...] = ("min_ms", "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")


def fmt_ms(endpoint: EndpointStats, key: str) -> str:
    """A latency of the endpoint; ``≥`` when censored by drops. Example: ``'≥ 2000.0'``."""
    value = getattr(endpoint, key)
    if value is None:
        return NA_TEXT
    return f"{'≥ ' if key in endpoint.censored else ''}{value:.1f}"


def fmt_rate(value: float | None, digits: int = 2) -> str:
    return NA_TEXT if value is None else f"{value:.{digits}f}"


def fmt_share(value: float | None) -> str:
    return NA_TEXT if value is None else f"{value * 100:.2f}%"


def fmt_statuses(endpoint: EndpointStats) -> str:
    """``'200: 97, 503: 1'``, or ``'none'`` when no request got an answer."""
    return ", ".join(f"{status}: {n:,}" for status, n in sorted(endpoint.status_counts.items())) or "none"


def fmt_transport(endpoint: EndpointStats) -> str:
    """``'timeout 3 (first: seq 812)'`` per kind, ``'none'`` without transport errors."""
    return "; ".join(f"{t.kind} {t.count:,} (first: seq {t.example_seq})" for t in endpoint.transport) or "none"


def fmt_bytes(value: int | None) -> str:
    return NA_TEXT if value is None else f"{value:,} B"


def fmt_sent_bytes(endpoint: EndpointStats) -> str:
    """The bytes sent, or ``'NA (why)'``. Example: ``'NA (not recorded (a run file before schema 4))'``."""
    if endpoint.bytes_sent is None:
        return f"{NA_TEXT} ({endpoint.bytes_sent_na})" if endpoint.bytes_sent_na else NA_TEXT
    return fmt_bytes(endpoint.bytes_sent)


def md_cell(text: str) -> str:
    """Text safe in a Markdown table cell, shown as written when rendered: one line, pipes
    escaped, ``& < >`` as entities (a message may quote what a broken server sent).

    >>> md_cell("unreadable answer: <b>|x</b>")
    'unreadable answer: &lt;b&gt;\\\\|x&lt;/b&gt;'
    """
    text = " ".join(text.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|")


def fmt_messages(group: TransportErrors) -> str:
    """The example message and how many distinct ones the kind had. Example:
    ``'ConnectionRefusedError: [Errno 111] Connection refused (1 of 2 distinct messages)'``."""
    if group.distinct_messages is None or group.distinct_messages <= 1:
        return group.message
    return f"{group.message} (1 of {group.distinct_messages:,} distinct messages)"


def endpoint_markdown(evaluation: RunEvaluation) -> list[str]:
    """The report's per-endpoint section; empty for a run without request rows."""
    if not evaluation.endpoints:
        return []
    lines = [
        "## Per endpoint (client side, from the requests table)", "",
        "Count = every request intended (dropped ones included); success = ok / count; rates over the "
        "phase's measured duration; latency in ms from the intended send time, nearest rank; "
        "min and mean over sent requests; a percentile marked ≥ fell on a dropped request (a lower bound).", "",
        "| phase | request | count | sent | dropped | intended / achieved req/s | success | min | mean | p50 | "
        "p90 | p95 | p99 | max | status codes | transport errors | sent bytes | received |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in evaluation.endpoints:
        latency = " | ".join(fmt_ms(e, key) for key in LATENCY_KEYS)
        lines.append(
            f"| {e.phase} | {e.name} | {e.count:,} | {e.sent:,} | {e.dropped:,} | "
            f"{fmt_rate(e.intended_rate)} / {fmt_rate(e.achieved_rate)} | {fmt_share(e.success_rate)} | {latency} | "
            f"{fmt_statuses(e)} | {fmt_transport(e)} | {fmt_sent_bytes(e)} | {fmt_bytes(e.bytes_received)} |"
        )
    lines += _transport_lines(evaluation.endpoints) + _threshold_lines(evaluation.endpoints)
    return lines + [""]


def _transport_lines(endpoints: list[EndpointStats]) -> list[str]:
    groups = [(e, t) for e in endpoints for t in e.transport]
    if not groups:
        return []
    lines = ["", "Transport errors by kind (the example is the first with a message; messages are the "
             "client's, first line, secrets redacted):", "",
             "| phase | request | kind | count | example | message |", "|---|---|---|---|---|---|"]
    for e, t in groups:
        waited = NA_TEXT if t.example_latency_ms is None else f"{t.example_latency_ms:.1f} ms"
        lines.append(f"| {e.phase} | {md_cell(e.name)} | {t.kind} | {t.count:,} | seq {t.example_seq}, after {waited} | "
                     f"{md_cell(fmt_messages(t))} |")
    return lines


def _threshold_lines(endpoints: list[EndpointStats]) -> list[str]:
    judged = [(e, t) for e in endpoints for t in e.thresholds]
    if not judged:
        return []
    lines = ["", "Per-request latency thresholds (`requests[].slo`; a FAIL makes the run NO-GO):", "",
             "| phase | request | percentile | measured | threshold | verdict | reason |", "|---|---|---|---|---|---|---|"]
    for e, t in judged:
        measured = NA_TEXT if t.value_ms is None else f"{'≥ ' if t.censored else ''}{t.value_ms:.1f} ms"
        lines.append(f"| {e.phase} | {e.name} | {t.quantile.upper()} | {measured} | <= {t.threshold_ms:.1f} ms | "
                     f"**{t.verdict}** | {t.reason or ''} |")
    return lines


def endpoint_junit(suites: ET.Element, evaluation: RunEvaluation) -> None:
    """One suite ``endpoints.<phase>`` per phase with judged thresholds, one case each. In a
    phase that did not run its planned course only a FAIL is a result; every other threshold
    is an ``<error type="NOT-EVALUATED">`` (measured so far, like the phase's categories)."""
    phases: dict[str, list[tuple[EndpointStats, EndpointThreshold]]] = {}
    for e in evaluation.endpoints:
        for t in e.thresholds:
            phases.setdefault(e.phase, []).append((e, t))
    stopped = {p.phase: p.evaluation.stopped for p in evaluation.evaluated_phases()
               if p.evaluation is not None and p.evaluation.stopped}
    for phase, cases in phases.items():
        verdicts = [t.verdict for _, t in cases]
        cut = stopped.get(phase)
        suite = ET.SubElement(suites, "testsuite", name=f"endpoints.{phase}", tests=str(len(cases)),
                              failures=str(verdicts.count("FAIL")),
                              errors=str(len(cases) - verdicts.count("FAIL") if cut else verdicts.count("INVALID")),
                              skipped=str(0 if cut else verdicts.count("NA")))
        for e, t in cases:
            case = ET.SubElement(suite, "testcase", classname=f"endpoints.{phase}",
                                 name=f"{e.name}.{t.quantile}")
            text = (f"client {'NA' if t.value_ms is None else f'{t.value_ms:.1f} ms'} "
                    f"(threshold <= {t.threshold_ms:.1f} ms, {t.verdict})")
            if t.verdict == "FAIL":
                ET.SubElement(case, "failure", message=t.reason or "FAIL").text = text
            elif cut:
                ET.SubElement(case, "error", type="NOT-EVALUATED",
                              message=f"phase {cut}: {t.verdict} so far, not judged").text = text
            elif t.verdict == "INVALID":
                ET.SubElement(case, "error", type="INVALID", message=t.reason or "generator-limited").text = text
            elif t.verdict == "NA":
                ET.SubElement(case, "skipped", message=t.reason or "not measured")
            ET.SubElement(case, "system-out").text = text
