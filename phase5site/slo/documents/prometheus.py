"""Prometheus recording rules and multi-window, multi-burn-rate alerts for the SLOs (pure).

Source: Google SRE Workbook, ch. 5 "Alerting on SLOs", section 6 ("Multiwindow,
Multi-Burn-Rate Alerts"): page when the 1h and 5m error ratios both exceed 14.4x the
budget (2% of a 30-day budget in 1 hour) or the 6h and 30m ones exceed 6x (5% in 6 h);
open a ticket for 3x over 1d and 2h (10% in 1 day) or 1x over 3d and 6h. The short window
(1/12 of the long one) makes the alert stop soon after the burn stops.

Each SLI gets a recording rule ``<service>:slo_<category>_errors:ratio_rate<W>`` for W in
5m, 30m, 1h, 2h, 6h, 1d, 3d. Latency SLOs are percentile thresholds, so their "error" is
a bad time slice: the 5m rule is 1 when the 5-minute percentile is above the threshold,
longer windows average it (share of bad slices). An alert whose threshold
``factor x (1 - target)`` exceeds 1 can never fire (an error ratio is at most 1); it is
omitted and reported as a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from phase5site.slo.draft import Objective, SloTargets

WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
LATENCY_SLICE_TARGET = 0.99  # share of 5-minute slices whose percentile must meet the threshold


@dataclass(frozen=True)
class BurnRateWindow:
    severity: str
    factor: float
    long: str
    short: str


BURN_RATE_WINDOWS: tuple[BurnRateWindow, ...] = (
    BurnRateWindow("page", 14.4, "1h", "5m"),
    BurnRateWindow("page", 6.0, "6h", "30m"),
    BurnRateWindow("ticket", 3.0, "1d", "2h"),
    BurnRateWindow("ticket", 1.0, "3d", "6h"),
)


def selector_matchers(selector: str) -> str:
    """'{job="api"}' -> 'job="api"'; '' -> ''."""
    return selector.strip().removeprefix("{").removesuffix("}").strip()


def metric(name: str, selector: str, *matchers: str) -> str:
    """A metric with matchers. Example: ``metric('x', '{job="a"}', 'code="5"')`` -> 'x{code="5",job="a"}'."""
    parts = [m for m in (*matchers, selector_matchers(selector)) if m]
    return f"{name}{{{','.join(parts)}}}" if parts else name


def _rate(name: str, selector: str, window: str, *matchers: str) -> str:
    return f"sum(rate({metric(name, selector, *matchers)}[{window}]))"


def _rate_or_zero(name: str, selector: str, window: str, *matchers: str) -> str:
    """``_rate`` that is 0 instead of empty when no series exists yet, for use in a sum.

    ``a + b`` in PromQL is empty when either side is: a labelled counter has no series
    until its first increment (prom-client), so without this the snapshot error ratio would
    vanish when create failures occur but no restore ever failed.
    """
    return f"({_rate(name, selector, window, *matchers)} or vector(0))"


def error_ratio_expr(category: str, selector: str, window: str, threshold: float | None = None) -> str | None:
    """PromQL for the error ratio of a ratio SLI over ``window`` (None: not a ratio SLI)."""
    requests = "http_requests_total"
    not_ok, errors, failure = 'status!~"2..|3.."', 'status=~"4..|5.."', 'result="failure"'
    if category == "success_rate":
        return f"{_rate(requests, selector, window, not_ok)} / {_rate(requests, selector, window)}"
    if category == "error_rate":
        return f"{_rate(requests, selector, window, errors)} / {_rate(requests, selector, window)}"
    if category == "effective_fallback":
        return f"{_rate('metasheet_fallback_effective_total', selector, window)} / {_rate(requests, selector, window)}"
    if category == "cache_hit_rate":
        misses = _rate_or_zero("cache_miss_total", selector, window)
        return f"{misses} / ({_rate_or_zero('cache_hits_total', selector, window)} + {misses})"
    if category == "plugin_reload_success":
        reload = "metasheet_plugin_reload_total"
        return f"{_rate(reload, selector, window, failure)} / {_rate(reload, selector, window)}"
    if category == "snapshot_success":
        create, restore = "metasheet_snapshot_create_total", "metasheet_snapshot_restore_total"
        failed = f"{_rate_or_zero(create, selector, window, failure)} + {_rate_or_zero(restore, selector, window, failure)}"
        return f"({failed}) / ({_rate_or_zero(create, selector, window)} + {_rate_or_zero(restore, selector, window)})"
    return None


def latency_quantile_expr(quantile: float, selector: str, window: str) -> str:
    bucket = metric("http_server_requests_seconds_bucket", selector)
    return f"histogram_quantile({quantile:g}, sum by (le) (rate({bucket}[{window}])))"


def _name(service: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", service) or "service"


def record_name(service: str, category: str, window: str) -> str:
    return f"{_name(service)}:slo_{category}_errors:ratio_rate{window}"


def error_budget(category: str, target: float) -> float:
    """Allowed error ratio. Ratio minimums: 1 - target; maximums: the maximum; latency: 1 - slice target."""
    if category in ("error_rate", "effective_fallback"):
        return target
    if category.startswith("latency"):
        return 1.0 - LATENCY_SLICE_TARGET
    return 1.0 - target


def _recording_rules(targets: SloTargets) -> list[dict[str, Any]]:
    groups = []
    for objective in targets.objectives:
        category = objective.category
        rules: list[dict[str, Any]] = []
        if category.startswith("latency"):
            quantile = 0.95 if category.endswith("95") else 0.99
            threshold_s = objective.target / 1000.0
            slice_record = record_name(targets.service, category, "5m")
            rules.append({"record": slice_record, "expr": f"{latency_quantile_expr(quantile, targets.selector, '5m')} > bool {threshold_s:g}"})
            for window in WINDOWS[1:]:
                rules.append({"record": record_name(targets.service, category, window), "expr": f"avg_over_time({slice_record}[{window}])"})
        else:
            for window in WINDOWS:
                expr = error_ratio_expr(category, targets.selector, window)
                if expr is None:
                    break
                rules.append({"record": record_name(targets.service, category, window), "expr": expr})
        if rules:
            groups.append({"name": f"slo-{category.replace('_', '-')}-recording", "rules": rules})
    return groups


def _camel(text: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^a-zA-Z0-9]", text) if part)


def _burn_rate_alert(
    targets: SloTargets, objective: Objective, severity: str, warnings: list[str]
) -> dict[str, Any] | None:
    """The page or ticket alert of one SLI: one clause per (long, short) window pair."""
    category = objective.category
    budget = error_budget(category, objective.target)
    clauses = []
    for window in (w for w in BURN_RATE_WINDOWS if w.severity == severity):
        threshold = window.factor * budget
        if threshold > 1.0:
            warnings.append(
                f"{category}: the {window.factor:g}x burn-rate alert over {window.long}/{window.short} "
                f"needs an error ratio of {window.factor:g} x {budget:.4g} = {threshold:.4g} > 1, "
                "which can never happen; it is omitted"
            )
            continue
        long_rec = record_name(targets.service, category, window.long)
        short_rec = record_name(targets.service, category, window.short)
        clauses.append(f"({long_rec} > {threshold:.6g} and {short_rec} > {threshold:.6g})")
    if not clauses:
        return None
    return {
        "alert": f"{_camel(targets.service)}{_camel(category)}ErrorBudgetBurn{severity.capitalize()}",
        "expr": " or ".join(clauses),
        "labels": {"severity": severity, "slo": category, "service": targets.service},
        "annotations": {
            "summary": f"{objective.title}: error budget burning too fast ({severity})",
            "description": (
                f"SLO {targets.version}: {objective.title} {objective.comparison} "
                f"{_fmt_target(objective.unit, objective.target)}; budget {budget:.4g} over 30 days. "
                "Multi-window multi-burn-rate alert (SRE Workbook ch. 5)."
            ),
        },
    }


def _memory_alert(targets: SloTargets) -> dict[str, Any]:
    memory = targets.objective("memory")
    rss = metric("process_resident_memory_bytes", targets.selector)
    return {
        "alert": f"{_camel(targets.service)}MemoryRssHigh",
        "expr": f"avg_over_time({rss}[1h]) / 1048576 > {memory.target:g}",
        "for": "10m",
        "labels": {"severity": "ticket", "slo": "memory", "service": targets.service},
        "annotations": {
            "summary": f"Mean RSS over 1h above {memory.target:g} MiB",
            "description": "Release criterion on mean resident memory (not an error-budget SLO).",
        },
    }


def _alerts(targets: SloTargets) -> tuple[list[dict[str, Any]], list[str]]:
    alerts: list[dict[str, Any]] = []
    warnings: list[str] = []
    for objective in targets.objectives:
        if objective.category == "memory":
            continue
        for severity in ("page", "ticket"):
            alert = _burn_rate_alert(targets, objective, severity, warnings)
            if alert is not None:
                alerts.append(alert)
    alerts.append(_memory_alert(targets))
    return alerts, warnings


def _fmt_target(unit: str, value: float) -> str:
    return f"{value * 100:.1f}%" if unit == "ratio" else f"{value:g} {unit}"


def prometheus_rules(targets: SloTargets) -> tuple[dict[str, Any], list[str]]:
    """(rule file as a dict, warnings). Example: cache hit target 0.8 -> budget 0.2; the 14.4x
    and 6x alerts would need error ratios 2.88 and 1.2, so both are omitted with a warning."""
    alerts, warnings = _alerts(targets)
    groups = _recording_rules(targets)
    groups.append({"name": f"slo-{_name(targets.service)}-alerts", "rules": alerts})
    return {"groups": groups}, warnings
