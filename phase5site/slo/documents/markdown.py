"""SLO_v<version>.md in the SRE Workbook layout (ch. 2 "Implementing SLOs", appendix A
"Example SLO Document"): header, service overview, SLIs and SLOs, rationale, error budget,
clarifications and caveats. Pure: the caller gives targets and warnings, gets text.

Header fields that only people can fill in (status, date, approvers) are marked
``[fill in: ...]``: they are form fields, never numbers.
"""

from __future__ import annotations

import datetime as dt

from phase5site.slo.documents.prometheus import BURN_RATE_WINDOWS, LATENCY_SLICE_TARGET, error_budget
from phase5site.slo.draft import Objective, SloTargets

SECONDS_PER_30_DAYS = 30 * 24 * 3600
MINUTES_PER_30_DAYS = 30 * 24 * 60
FORM_FIELD = "**[fill in: {}]**"

SLI_WORDS: dict[str, tuple[str, str]] = {
    "success_rate": ("requests answered 2xx or 3xx", "all HTTP requests counted by http_requests_total"),
    "error_rate": ("requests answered 4xx or 5xx", "all HTTP requests counted by http_requests_total"),
    "latency_p95": (
        "5-minute evaluations whose P95 (from http_server_requests_seconds buckets) is at or under the threshold",
        "all 5-minute evaluations",
    ),
    "latency_p99": (
        "5-minute evaluations whose P99 (from http_server_requests_seconds buckets) is at or under the threshold",
        "all 5-minute evaluations",
    ),
    "effective_fallback": (
        "effective fallbacks (metasheet_fallback_effective_total; cache misses excluded unless COUNT_CACHE_MISS_AS_FALLBACK=true)",
        "all HTTP requests",
    ),
    "memory": ("mean resident memory of the process (process_resident_memory_bytes)", "not a ratio: a gauge averaged over the period"),
    "cache_hit_rate": ("cache lookups that hit (cache_hits_total)", "all cache lookups (cache_hits_total + cache_miss_total)"),
    "plugin_reload_success": ("successful plugin reloads", "all plugin reloads (metasheet_plugin_reload_total)"),
    "snapshot_success": ("successful snapshot creates and restores", "all snapshot creates and restores"),
}


def fmt_target(objective: Objective, value: float | None) -> str:
    if value is None:
        return "NA"
    if objective.unit == "ratio":
        return f"{value * 100:.2f}%"
    return f"{value:.1f} {objective.unit}" if value != int(value) else f"{value:.0f} {objective.unit}"


def _time(epoch_s: float | None) -> str:
    if epoch_s is None:
        return "NA"
    return dt.datetime.fromtimestamp(epoch_s, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def span_text(seconds: float | None) -> str:
    """A measured length a reader can take in: ``'48 s'``, ``'12.5 min'``, ``'2.00 h'``.

    >>> span_text(48.0), span_text(750.0), span_text(7200.0), span_text(None)
    ('48 s', '12.5 min', '2.00 h', 'NA')
    """
    if seconds is None:
        return "NA"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _header(targets: SloTargets) -> list[str]:
    origin = "a baseline draft (`phase5site slo recommend`)" if targets.from_draft else "the release criteria of DESIGN.md (no baseline draft)"
    return [
        f"# SLO: {targets.service} {targets.version}",
        "",
        "| field | value |",
        "|---|---|",
        f"| Status | {FORM_FIELD.format('Draft / In review / Approved')} |",
        f"| Date | {FORM_FIELD.format('date of approval, YYYY-MM-DD')} |",
        f"| Approvers | {FORM_FIELD.format('names and roles of the approvers')} |",
        f"| Owner | {FORM_FIELD.format('team that owns the service')} |",
        f"| Release | {targets.version} |",
        f"| Targets from | {origin} |",
        "",
        "Fields marked *fill in* are form fields for the people who approve this document. "
        "Every number below is derived from measured data or from a rule stated in the rationale.",
        "",
    ]


def _overview(targets: SloTargets) -> list[str]:
    return [
        "## Service overview",
        "",
        f"{targets.service} is a Node/TypeScript platform serving an HTTP API (`/health`, `/api/v2/*`, "
        "`/api/plugins`), with a cache, fallbacks to secondary paths (HTTP adapter, message bus, cache), "
        "hot plugin reloads and snapshots. It exports Prometheus metrics; the SLIs below are computed "
        f"from them{' with the selector `' + targets.selector + '`' if targets.selector else ''}.",
        "",
    ]


def _required(objective: Objective) -> str:
    """'yes', 'no', or 'no: <the spec's justification>' for a category not required."""
    if objective.required:
        return "yes"
    return f"no: {objective.justification}" if objective.justification else "no"


def _sli_table(targets: SloTargets) -> list[str]:
    lines = [
        "## SLIs and SLOs",
        "",
        "| SLO | numerator | denominator | objective | measured in baseline | confidence | required |",
        "|---|---|---|---|---|---|---|",
    ]
    for objective in targets.objectives:
        numerator, denominator = SLI_WORDS[objective.category]
        if objective.category.startswith("latency"):
            goal = f"{objective.comparison} {fmt_target(objective, objective.target)} in {LATENCY_SLICE_TARGET * 100:g}% of evaluations"
        else:
            goal = f"{objective.comparison} {fmt_target(objective, objective.target)}"
        lines.append(
            f"| {objective.title} | {numerator} | {denominator} | {goal} | {fmt_target(objective, objective.observed)} | "
            f"{objective.confidence} | {_required(objective)} |"
        )
    lines += ["", "Measurement window of every SLO: rolling 30 days. Memory is a release criterion on a gauge, without an error budget.", ""]
    return lines


def _rationale(targets: SloTargets) -> list[str]:
    lines = ["## Rationale", ""]
    if targets.from_draft:
        seconds = targets.measured_seconds
        lines += [
            f"The targets were proposed from a production baseline whose samples span {_time(targets.first_start)} to "
            f"{_time(targets.last_end)} ({span_text(seconds)} of sampled windows), "
            f"from: {', '.join(targets.sources) or 'NA'}.",
            "",
            "Rounding rules:",
            "",
            "- minimum ratios (success, cache hit, plugin reload, snapshot): pooled value less a headroom, rounded down "
            "to 0.1%, at most 99.9%; maximum ratios (error rate, effective fallback): pooled value plus the headroom, "
            "rounded up to 0.1%; the headroom is the larger of half the distance to the release threshold and the "
            "width of the pooled value's 95% confidence interval, so the next baseline does not fail by chance;",
            f"- latency: worst sample x (1 + headroom), rounded up to the next 50 ms; memory: worst sample x (1 + headroom), "
            f"rounded up to the next 50 MiB; headroom {'NA' if targets.headroom is None else f'{targets.headroom * 100:g}%'}.",
            "",
            "Confidence per SLO (low below 12 valid samples). The worst of n samples exceeds the q-quantile of "
            "windows like these with probability 1 - q^n: with 12 samples it bounds, with 95% probability, only "
            "the 77.9% quantile (q = 0.05^(1/n)), so a target from the worst sample is not a worst case.",
            "",
        ]
        lines += [f"- {o.title}: {o.confidence} ({o.confidence_note.split(':')[0]})" for o in targets.objectives]
    else:
        lines += [
            "No baseline draft was given, so the targets are the release criteria as written in DESIGN.md. "
            "Measure a baseline and run `phase5site slo recommend` to set them from data.",
        ]
    return lines + [""]


def _budget_line(objective: Objective, rate: float | None) -> str:
    budget = error_budget(objective.category, objective.target)
    if objective.category.startswith("latency"):
        minutes = budget * MINUTES_PER_30_DAYS
        return (
            f"| {objective.title} | {budget * 100:.2f}% of evaluations | {minutes:,.0f} minutes per 30 days with the "
            f"percentile above {objective.target:g} ms | not applicable (time based) |"
        )
    minutes = budget * MINUTES_PER_30_DAYS
    if rate is None or objective.category in ("cache_hit_rate", "plugin_reload_success", "snapshot_success"):
        counts = "NA (no measured rate of these events)"
    else:
        requests = rate * SECONDS_PER_30_DAYS
        counts = f"{budget * requests:,.0f} of {requests:,.0f} requests (at {rate:.2f} req/s)"
    return f"| {objective.title} | {budget * 100:.2f}% | {minutes:,.0f} minutes of total failure | {counts} |"


def _error_budget(targets: SloTargets) -> list[str]:
    lines = [
        "## Error budget",
        "",
        "The budget is the share of events allowed to be bad over 30 days: 1 - target for minimums, the maximum itself "
        "for error and fallback ratios. Worked counts use the request rate measured in the baseline.",
        "",
        "| SLO | budget | as time | as events per 30 days |",
        "|---|---|---|---|",
    ]
    lines += [_budget_line(o, targets.measured_request_rate) for o in targets.objectives if o.category != "memory"]
    lines += [
        "",
        "Alerting (SRE Workbook ch. 5, multi-window multi-burn-rate; rules in `prometheus-rules.yml`):",
        "",
        "| severity | burn rate | long window | short window | budget spent when it fires |",
        "|---|---|---|---|---|",
    ]
    spent = {"1h": "2% in 1 h", "6h": "5% in 6 h", "1d": "10% in 1 day", "3d": "10% in 3 days"}
    lines += [f"| {w.severity} | {w.factor:g}x | {w.long} | {w.short} | {spent[w.long]} |" for w in BURN_RATE_WINDOWS]
    lines += [
        "",
        "Policy: when the 30-day budget of a mandatory SLO is spent, releases other than fixes wait until the "
        "budget recovers; the approvers above own exceptions.",
        "",
    ]
    return lines


def _caveats(targets: SloTargets, warnings: list[str]) -> list[str]:
    lines = [
        "## Clarifications and caveats",
        "",
        "- Success and error rates are server-side (http_requests_total); the baseline also measured them client-side, "
        "where timeouts and connection errors count as failures.",
        "- A 4xx answer counts as an error in the error-rate SLO (the release criterion), though it may be the client's fault.",
        "- Latency SLOs judge the 5-minute percentile from histogram buckets (.01 .025 .05 .1 .25 .5 1 2 5 s); between "
        "bucket edges Prometheus interpolates linearly, so thresholds that are not bucket edges are approximate.",
        "- Cache misses are excluded from effective fallback unless COUNT_CACHE_MISS_AS_FALLBACK=true.",
        "- Plugin reload and snapshot SLOs see few events: their error budgets are a handful of events and their alerts are noisy.",
        "- The baseline was measured under a known, gentle load; production traffic may differ in mix and volume.",
    ]
    lines += [f"- **Weak evidence allowed** (`slo recommend --allow`): {item}." for item in targets.allowed]
    lines += [f"- {objective.title}: low confidence ({objective.confidence_note})" for objective in targets.objectives if objective.confidence == "low"]
    lines += [f"- {objective.title}: not required for a release: {objective.justification}"
              for objective in targets.objectives if not objective.required and objective.justification]
    lines += [f"- Alert omitted: {warning}" for warning in warnings]
    return lines + [""]


def slo_markdown(targets: SloTargets, warnings: list[str]) -> str:
    """The whole SLO document as Markdown."""
    sections = _header(targets) + _overview(targets) + _sli_table(targets) + _rationale(targets)
    sections += _error_budget(targets) + _caveats(targets, warnings)
    return "\n".join(sections)
