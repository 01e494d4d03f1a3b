"""Per-endpoint figures of a run and their optional latency thresholds (``requests[].slo``).

The store computes the figures (``store.endpoints``); this module attaches the thresholds a
spec gives one named request and judges them the way the global client latency is judged:
nearest rank over the request's own ranking, a percentile that falls on a dropped request
is a lower bound and never PASSes, a phase whose load generator was limited has INVALID
client latency, and no value is NA with its reason. A FAIL makes the run NO-GO.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from phase5site.slo.models import FAIL, INVALID, NA, PASS
from phase5site.store.endpoints import BYTES_SENT_OLD_FILE, bytes_sent_missing_reason

QUANTILE_KEYS: tuple[str, ...] = ("p50", "p90", "p95", "p99")


@dataclass(frozen=True)
class TransportErrors:
    """Transport failures of one kind for one request name, with an example: the first that
    has a message (``message`` is then that message, else NA with its reason)."""

    kind: str
    count: int
    example_seq: int
    example_at: float
    example_latency_ms: float | None
    message: str
    distinct_messages: int | None = None  # None: the run file did not record messages


@dataclass(frozen=True)
class EndpointThreshold:
    """One ``requests[].slo`` threshold and its verdict."""

    quantile: str  # 'p95'
    threshold_ms: float
    value_ms: float | None
    censored: bool
    verdict: str  # PASS | FAIL | NA | INVALID
    reason: str | None


@dataclass(frozen=True)
class EndpointStats:
    """The requests of one name in one phase (see ``store.endpoints`` for each formula)."""

    phase: str
    name: str
    count: int
    sent: int
    ok: int
    http_4xx: int
    http_5xx: int
    transport_errors: int
    dropped: int
    success_rate: float | None
    intended_rate: float | None
    achieved_rate: float | None
    duration_s: float | None
    min_ms: float | None
    mean_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    bytes_received: int | None
    bytes_sent: int | None = None
    bytes_sent_na: str | None = None  # why bytes_sent is NA
    bytes_sent_missing: int = 0  # sent requests whose bytes were not recorded
    censored: list[str] = field(default_factory=list)
    status_counts: dict[int, int] = field(default_factory=dict)
    transport: list[TransportErrors] = field(default_factory=list)
    thresholds: list[EndpointThreshold] = field(default_factory=list)


def request_thresholds(spec: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """{request name: {'p95': ms, ...}} from a stored (redacted) spec, whose durations are
    seconds. Example: ``{'target': {'requests': [{'name': 'hello', 'slo': {'p95': 0.12}}]}}``
    -> ``{'hello': {'p95': 120.0}}``."""
    target = spec.get("target") if isinstance(spec.get("target"), Mapping) else {}
    found: dict[str, dict[str, float]] = {}
    for request in (target or {}).get("requests") or []:
        slo = request.get("slo") if isinstance(request, Mapping) else None
        if isinstance(slo, Mapping):
            limits = {key: float(slo[key]) * 1000.0 for key in QUANTILE_KEYS
                      if isinstance(slo.get(key), (int, float)) and not isinstance(slo.get(key), bool)}
            if limits:
                found[str(request.get("name"))] = limits
    return found


def judge(quantile: str, threshold_ms: float, value_ms: float | None, censored: bool,
          invalid_reason: str | None) -> EndpointThreshold:
    """One threshold's verdict.

    >>> judge("p95", 120.0, 80.0, False, None).verdict, judge("p95", 120.0, 130.0, False, None).verdict
    ('PASS', 'FAIL')
    >>> judge("p95", 120.0, 80.0, True, None).reason
    '>= 80.0 ms (censored by dropped requests) cannot show <= 120.0 ms'
    """
    if value_ms is None:
        return EndpointThreshold(quantile, threshold_ms, None, False, NA, "no request of this name has a latency")
    if invalid_reason is not None:
        return EndpointThreshold(quantile, threshold_ms, value_ms, censored, INVALID, invalid_reason)
    if censored:
        return EndpointThreshold(quantile, threshold_ms, value_ms, True, FAIL,
                                 f">= {value_ms:.1f} ms (censored by dropped requests) cannot show <= {threshold_ms:.1f} ms")
    if value_ms <= threshold_ms:
        return EndpointThreshold(quantile, threshold_ms, value_ms, False, PASS, None)
    return EndpointThreshold(quantile, threshold_ms, value_ms, False, FAIL,
                             f"{value_ms:.1f} ms breaks <= {threshold_ms:.1f} ms")


def endpoint_reports(rows: list[dict[str, Any]], thresholds: Mapping[str, Mapping[str, float]],
                     judged_phases: Mapping[str, str | None]) -> list[EndpointStats]:
    """``store.endpoints`` rows as ``EndpointStats``, thresholds judged in the phases of
    ``judged_phases`` ({phase: INVALID reason or None}); other phases (not observed) carry
    their figures only."""
    reports = []
    for row in rows:
        limits = thresholds.get(row["name"], {}) if row["phase"] in judged_phases else {}
        judged = [judge(key, limit, row[f"{key}_ms"], f"{key}_ms" in row["censored"], judged_phases[row["phase"]])
                  for key, limit in limits.items()]
        values = {k: v for k, v in row.items() if k not in ("transport", "status_counts", "censored")}
        reports.append(EndpointStats(
            **values, censored=list(row["censored"]), status_counts=dict(row["status_counts"]),
            transport=[TransportErrors(**t) for t in row["transport"]], thresholds=judged,
        ))
    return reports


def phase_bytes(endpoints: list[EndpointStats], phase: str) -> tuple[int | None, int | None, str | None]:
    """(bytes sent, bytes received, why sent is NA) of a phase, summed over its request names.

    Sent is NA unless every sent request recorded its bytes; received sums the answers
    counted (None when none was). The reason names how many sent requests lack a count.
    """
    rows = [e for e in endpoints if e.phase == phase]
    received = [e.bytes_received for e in rows if e.bytes_received is not None]
    received_total = sum(received) if received else None
    if not rows:
        return None, None, "no request rows"
    if any(e.bytes_sent_na == BYTES_SENT_OLD_FILE for e in rows):
        return None, received_total, BYTES_SENT_OLD_FILE
    missing, sent = sum(e.bytes_sent_missing for e in rows), sum(e.sent for e in rows)
    if missing:
        return None, received_total, bytes_sent_missing_reason(missing, sent)
    return sum(e.bytes_sent or 0 for e in rows), received_total, None


def endpoint_reasons(endpoints: list[EndpointStats], verdict: str) -> list[str]:
    """Decision reasons, e.g. ``'baseline: request hello p95 130.0 ms breaks <= 120.0 ms'``."""
    return [f"{e.phase}: request {e.name} {t.quantile} {t.reason}"
            for e in endpoints for t in e.thresholds if t.verdict == verdict]
