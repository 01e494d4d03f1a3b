"""Render a ``RunEvaluation`` as Markdown (production-report.md / summary.md). Pure text."""

from __future__ import annotations

import datetime as dt

from phase5site.reporting.endpoint_tables import endpoint_markdown
from phase5site.reporting.models import GeneratorHealth, PhaseReport, RunEvaluation
from phase5site.slo.models import CategoryVerdict, SourceRow
from phase5site.slo.reconcile import Reconciliation
from phase5site.slo.stats import Interval

NA_TEXT = "NA"


def fmt_value(value: float | None, unit: str) -> str:
    """A value in its display unit. Example: ``fmt_value(0.99512, 'ratio') == '99.512%'``."""
    if value is None:
        return NA_TEXT
    if unit == "ratio":
        return f"{value * 100:.3f}%"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "MiB":
        return f"{value:.1f} MiB"
    return f"{value:.4g}"


def fmt_pooled(row: SourceRow) -> str:
    """The pooled value; a censored percentile (its rank fell on a dropped request) as a
    lower bound. Example: ``'≥ 1611.0 ms (censored: 240 dropped)'``."""
    if row.censored and row.pooled is not None:
        return f"≥ {fmt_value(row.pooled, row.unit)} (censored: {row.dropped:,} dropped)"
    return fmt_value(row.pooled, row.unit)


def fmt_threshold(row: SourceRow) -> str:
    return f"{row.comparison} {fmt_value(row.threshold, row.unit)}"


def fmt_interval(interval: Interval | None, unit: str) -> str:
    if interval is None:
        return NA_TEXT
    low = fmt_value(interval.low, unit) if interval.low is not None else "unbounded"
    high = fmt_value(interval.high, unit) if interval.high is not None else "unbounded"
    return f"[{low}, {high}]"


def fmt_time(epoch_s: float | None) -> str:
    if epoch_s is None:
        return NA_TEXT
    return dt.datetime.fromtimestamp(epoch_s, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _count(value: float | int | None) -> str:
    return NA_TEXT if value is None else f"{value:,.0f}"


def _worst(row: SourceRow) -> str:
    if row.worst_sample is None:
        return NA_TEXT
    bound = "≥ " if row.worst_censored else ""
    return f"#{row.worst_sample}: {bound}{fmt_value(row.worst_value, row.unit)}"


def _spread(row: SourceRow) -> str:
    if row.n_valid == 0:
        return NA_TEXT
    sd = NA_TEXT if row.sample_stddev is None else fmt_value(row.sample_stddev, row.unit)
    return (
        f"{fmt_value(row.sample_min, row.unit)} / {fmt_value(row.sample_mean, row.unit)} / "
        f"{fmt_value(row.sample_max, row.unit)} (sd {sd})"
    )


def _required(category: CategoryVerdict) -> str:
    return "yes" if category.required else "no"


def verdict_table(categories: list[CategoryVerdict], server_caveat: str | None = None) -> list[str]:
    """The verdict rows; ``server_caveat`` (the reconciliation's) marks the server's success
    and error rates, which then describe only the requests the service counted."""
    lines = [
        "| category | required | source | pooled | threshold | verdict | worst sample | "
        "min / mean / max (sd) | valid samples | 95% CI | share within threshold |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for category in categories:
        for row in category.rows:
            interval = fmt_interval(row.interval, row.unit)
            if row.exact_interval is not None:
                interval += f" (exact {fmt_interval(row.exact_interval, row.unit)})"
            share = NA_TEXT if row.share_within is None else f"{row.share_within * 100:.3f}%"
            pooled = fmt_pooled(row)
            if server_caveat and row.source == "server" and category.category in ("success_rate", "error_rate"):
                pooled += " ⚠ timed routes only"
            lines.append(
                f"| {category.title} | {_required(category)} | {row.source} | "
                f"{pooled} | {fmt_threshold(row)} | **{row.verdict_label}** | "
                f"{_worst(row)} | {_spread(row)} | {row.n_valid}/{row.n_samples} | {interval} | {share} |"
            )
    lines.append("")
    lines.append("| category | verdict | reason | not required because |")
    lines.append("|---|---|---|---|")
    for category in categories:
        why = category.justification if not category.required and category.justification else ""
        lines.append(f"| {category.title} | **{category.verdict_label}** | {category.reason or ''} | {why} |")
    if server_caveat:
        lines += ["", f"⚠ Server success and error rates: {server_caveat}; see *Client vs server counts*."]
    return lines


def reconciliation_table(reconciliation: Reconciliation) -> list[str]:
    """Per window and for the phase: what the client sent vs what the service counted."""
    lines = [
        "| sample | client intended | answered | answered on timed routes | server counted | gap | "
        "client errors (rate) | server errors (rate) | beyond noise |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [*reconciliation.windows, *([reconciliation.phase] if reconciliation.phase else [])]
    for row in rows:
        flags = [name for name, on in (("count", row.count_warning), ("errors", row.error_warning)) if on]
        server_errors = (NA_TEXT if row.server_errors is None
                         else f"{row.server_errors:,.0f} ({fmt_value(row.server_error_rate, 'ratio')})")
        lines.append(
            f"| {'phase' if row.sample_num is None else f'#{row.sample_num}'} | {row.client_intended:,} | "
            f"{row.client_answered:,} | {row.client_timed:,} | {_count(row.server_requests)} | "
            f"{NA_TEXT if row.count_gap is None else f'{row.count_gap:+,.0f}'} | "
            f"{row.client_failures:,} ({fmt_value(row.client_error_rate, 'ratio')}) | {server_errors} | "
            f"{'**' + ', '.join(flags) + '**' if flags else 'no'} |"
        )
    lines.append("")
    untimed = ", ".join(f"`{name}`" for name in reconciliation.untimed) or "none"
    lines.append(
        f"Requests the service does not time (spec `requests[].timed`, else the profile's rule): {untimed}. "
        "A gap is beyond counting noise when it is more than 1 % and more than 5 requests."
    )
    return lines


def not_significant_lines(evaluation: RunEvaluation) -> list[str]:
    """One line per PASS whose confidence interval crosses its threshold, for the terminal.

    Example: ``'baseline: effective_fallback: PASS, not significant'``.
    """
    return [f"{phase.phase}: {category.category}: {category.verdict_label}"
            for phase in evaluation.evaluated_phases()
            for category in phase.evaluation.categories  # type: ignore[union-attr]
            if category.significant is False]


def evidence_lines(evaluation: RunEvaluation) -> list[str]:
    """Terminal lines beside the verdict: reconciliation warnings, categories not required
    (with the spec's justification) and the synthetic requests.

    Example: ``'warning: baseline: the service counted 167 of 300 requests (...)'``.
    """
    lines = [f"warning: {warning}" for warning in evaluation.warnings]
    seen: set[str] = set()
    for phase in evaluation.evaluated_phases():
        for category in phase.evaluation.categories:  # type: ignore[union-attr]
            if not category.required and category.justification and category.category not in seen:
                seen.add(category.category)
                lines.append(f"not required: {category.category} ({category.verdict_label}): {category.justification}")
    if evaluation.synthetic:
        lines.append(f"synthetic: the mix includes diagnostics requests: {', '.join(evaluation.synthetic)}")
    return lines


def _breakdowns(categories: list[CategoryVerdict]) -> list[str]:
    lines: list[str] = []
    by_name = {c.category: c for c in categories}
    errors = by_name.get("error_rate")
    if errors:
        lines += ["", "Errors by class (pooled share of requests; client: of every request intended, dropped ones included):",
                  "", "| source | 4xx | 5xx | transport | dropped |", "|---|---|---|---|---|"]
        for row in errors.rows:
            parts = row.breakdown
            client_only = {key: fmt_value(parts[key], "ratio") if key in parts else "not applicable (server)"
                           for key in ("transport", "dropped")}
            lines.append(
                f"| {row.source} | {fmt_value(parts.get('4xx'), 'ratio')} | {fmt_value(parts.get('5xx'), 'ratio')} | "
                f"{client_only['transport']} | {client_only['dropped']} |"
            )
    fallback = by_name.get("effective_fallback")
    if fallback:
        parts = fallback.rows[0].breakdown
        lines += [
            "",
            "Fallback by source (pooled): raw fallback over requests, and each source over its own operations.",
            "",
            "| effective | raw | http (over adapter ops) | message (over RPC attempts) | cache (over cache gets) |",
            "|---|---|---|---|---|",
            f"| {fmt_value(fallback.rows[0].pooled, 'ratio')} | {fmt_value(parts.get('raw'), 'ratio')} | "
            f"{fmt_value(parts.get('http'), 'ratio')} | {fmt_value(parts.get('message'), 'ratio')} | "
            f"{fmt_value(parts.get('cache'), 'ratio')} |",
        ]
    return lines


def _latency_comparison(categories: list[CategoryVerdict]) -> list[str]:
    lines = ["| percentile | server (pooled histogram) | client (all requests) | difference |", "|---|---|---|---|"]
    for category in categories:
        if not category.category.startswith("latency"):
            continue
        server = next((r for r in category.rows if r.source == "server"), None)
        client = next((r for r in category.rows if r.source == "client"), None)
        s = server.pooled if server else None
        c = client.pooled if client else None
        diff = fmt_value(c - s, "ms") if s is not None and c is not None else NA_TEXT
        if client is not None and client.censored and diff != NA_TEXT:
            diff = f"≥ {diff}"
        shown = fmt_pooled(client) if client is not None else NA_TEXT
        if client is not None and client.verdict == "INVALID":
            shown += " (INVALID: generator-limited)"
        lines.append(f"| {category.title} | {fmt_value(s, 'ms')} | {shown} | {diff} |")
    lines.append("")
    lines.append(
        "Client latency is measured from the *intended* send time (it includes queueing in the "
        "load generator, no coordinated omission); server latency is what the service's histogram saw. "
        "Dropped requests rank above every sent one, so a percentile that falls on one is a lower bound (≥)."
    )
    return lines


def _in_bucket(breakdown: dict[str, float | None], label: str) -> str:
    """'95.0 ms (bucket 0-100 ms)': a coarse histogram's quantile with the edges it lies between."""
    value = fmt_value(breakdown.get(f"{label}_ms"), "ms")
    low, high = breakdown.get(f"{label}_low_ms"), breakdown.get(f"{label}_high_ms")
    if breakdown.get(f"{label}_ms") is None or low is None:
        return value
    return f"{value} (bucket {low:g}-{high:g} ms)" if high is not None else f"{value} (bucket above {low:g} ms)"


def _optional(categories: list[CategoryVerdict]) -> list[str]:
    lines = []
    for category in categories:
        if category.mandatory:
            continue
        row = category.rows[0]
        why = f" Not required: {category.justification}." if not category.required and category.justification else ""
        counts = f"{_count(row.good)} good of {_count(row.total)}" if row.total is not None else "no events counted"
        durations = ""
        if "p95_ms" in row.breakdown:
            durations = (f"; duration P95 {_in_bucket(row.breakdown, 'p95')}, "
                         f"P99 {_in_bucket(row.breakdown, 'p99')} (pooled histogram, interpolated inside the bucket)")
        lines.append(f"- {category.title}: **{category.verdict_label}**, {fmt_value(row.pooled, row.unit)} ({counts})"
                     + durations + (f"; {row.na_reason}" if row.na_reason else "") + why)
    return lines


def _na_reasons(categories: list[CategoryVerdict]) -> list[str]:
    lines = []
    for category in categories:
        for row in category.rows:
            if row.verdict in ("NA", "NOT-EXERCISED"):
                lines.append(f"- {category.title} ({row.source}): {row.na_reason}")
        if category.verdict == "NOT-EXERCISED" and category.moved_by:
            lines.append(f"  - what would exercise it: {category.moved_by}")
    return lines or ["- none: every value could be measured"]


def _throughput(phases: list[PhaseReport]) -> list[str]:
    lines = [
        "| phase | status | offered rate | achieved rate | requests sent | dropped | duration (planned) |",
        "|---|---|---|---|---|---|---|",
    ]
    for phase in phases:
        t = phase.throughput
        offered = NA_TEXT if t.offered_rate is None else f"{t.offered_rate:g} req/s"
        achieved = NA_TEXT if t.achieved_rate is None else f"{t.achieved_rate:.2f} req/s"
        duration = NA_TEXT if t.duration_s is None else f"{t.duration_s:.0f} s"
        planned = NA_TEXT if t.planned_duration_s is None else f"{t.planned_duration_s:.0f} s"
        lines.append(
            f"| {phase.phase} | {phase.status or NA_TEXT} | {offered} | {achieved} | {_count(t.requests_sent)} | "
            f"{_count(t.dropped)} | {duration} ({planned}) |"
        )
    return lines


def _phase_section(phase: PhaseReport) -> list[str]:
    evaluation = phase.evaluation
    assert evaluation is not None
    lines = [
        f"## Phase `{phase.phase}`: {evaluation.decision}",
        "",
        f"{evaluation.n_samples} samples; server source: {evaluation.server_source or 'none'}; "
        f"flags: {', '.join(f'{k}={v}' for k, v in sorted(phase.flags.items())) or 'as the run'}.",
        "",
    ]
    if evaluation.reasons:
        lines += [f"{evaluation.decision} because:", ""] + [f"- {reason}" for reason in evaluation.reasons] + [""]
    caveat = phase.reconciliation.caveat if phase.reconciliation is not None else None
    if evaluation.stopped:
        lines += [f"> **Measured so far, not a verdict**: the phase {evaluation.stopped}. The rows below are "
                  "what its samples measured before it stopped; only a FAIL among them counts.", ""]
    outside = evaluation.outside
    if outside is not None and outside.requests:
        lines += [f"Requests outside every sample window: {outside.requests:,} ({outside.ok:,} ok, "
                  f"{outside.errors:,} errors, {outside.dropped:,} dropped; P95 {_ms(outside.latency_p95_ms)}; "
                  f"intended {fmt_time(outside.first_at)} to {fmt_time(outside.last_at)}): counted apart, "
                  "not in the pooled figures below.", ""]
    title = "### SLO verdicts (measured so far)" if evaluation.stopped else "### SLO verdicts"
    lines += [title, ""] + verdict_table(evaluation.categories, caveat)
    lines += _breakdowns(evaluation.categories)
    lines += ["", "### Client vs server latency", ""] + _latency_comparison(evaluation.categories)
    lines += ["", "### Plugin reload and snapshot (optional categories)", ""] + _optional(evaluation.categories)
    lines += ["", "### NA and not-exercised reasons", ""] + _na_reasons(evaluation.categories)
    if phase.reconciliation is not None:
        lines += ["", "### Client vs server counts", ""]
        lines += [f"- ⚠ {warning}" for warning in phase.reconciliation.warnings]
        lines += ([""] if phase.reconciliation.warnings else []) + reconciliation_table(phase.reconciliation)
    if phase.generator is not None and phase.generator.windows:
        lines += ["", "### Generator health per window", ""] + window_table(phase.generator)
    return lines + [""]


def _ms(value: float | None) -> str:
    return NA_TEXT if value is None else f"{value:.1f} ms"


def _cpu(value: float | None) -> str:
    return NA_TEXT if value is None else f"{value * 100:.1f}% of a core"


def _limited(value: bool | None) -> str:
    return {True: "**yes**", False: "no"}.get(value, "not measured")  # type: ignore[arg-type]


def generator_table(phases: list[PhaseReport]) -> list[str]:
    """Per phase: drops, send lag of every send, the generator's own lag (sends that had a
    free slot), its worst CPU share and event-loop lag, and its generator-limited windows."""
    lines = [
        "| phase | intended | dropped | send lag p50 / p99 / max | own lag p99 / max (sends with a free slot) | "
        "generator CPU (worst window) | loop lag max | generator-limited windows |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for phase in phases:
        health = phase.generator
        if health is None:
            continue
        share = NA_TEXT if health.dropped_share is None else f"{health.dropped_share * 100:.2f}%"
        own = (f"{_ms(health.generator_lag_p99_ms)} / {_ms(health.generator_lag_max_ms)} ({health.free_slot_sends:,})"
               if health.free_slot_sends else "not measured")
        limited = ", ".join(f"#{n}" for n in health.limited_samples) or ("none" if health.measured else "not measured")
        lines.append(
            f"| {phase.phase} | {health.intended:,} | {health.dropped:,} ({share}) | "
            f"{_ms(health.send_lag_p50_ms)} / {_ms(health.send_lag_p99_ms)} / {_ms(health.send_lag_max_ms)} | "
            f"{own} | {_cpu(health.generator_cpu_ratio_max)} | {_ms(health.loop_lag_max_ms)} | {limited} |"
        )
    return lines


def window_table(health: GeneratorHealth) -> list[str]:
    lines = [
        "| sample | window end | intended | dropped | own lag p99 | own lag max | generator CPU | loop lag max | generator-limited |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for w in health.windows:
        lines.append(
            f"| {NA_TEXT if w.sample_num is None else w.sample_num} | {fmt_time(w.window_end)} | {_count(w.intended)} | "
            f"{_count(w.dropped)} | {_ms(w.generator_lag_p99_ms)} | {_ms(w.generator_lag_max_ms)} | "
            f"{_cpu(w.generator_cpu_ratio)} | {_ms(w.loop_lag_max_ms)} | {_limited(w.generator_limited)} |"
        )
    return lines


METHOD_NOTES = [
    "- Ratios are pooled over the phase: sum of good events / sum of all events over the samples "
    "(never the mean of per-sample ratios). Memory is the mean of per-sample RSS, the maximum beside it.",
    "- Server percentiles: `histogram_quantile` over bucket deltas summed across samples (Prometheus "
    "interpolation). Client percentiles: nearest rank over every request of the phase's sample windows, the "
    "requests the samples cover, so a pooled percentile never exceeds the worst sample's; requests intended "
    "outside every window are counted apart.",
    "- Ratio intervals: Wilson score (and exact Clopper-Pearson), 95%, assuming independent requests. "
    "Percentile intervals: distribution-free order statistics (Binomial(n, q)); server-side ones are "
    "widened to histogram bucket edges.",
    "- Worst sample: the sample with the lowest value for a minimum criterion, the highest for a maximum.",
    "- Dropped requests (never sent: backlog full, or not sent by the end of the phase) count: client "
    "requests are every request intended, success = ok / intended, error = (4xx + 5xx + transport + dropped) "
    "/ intended; in client percentiles each drop ranks above every sent request at max(its wait, the largest "
    "sent latency). A percentile that falls on a drop is censored (≥, a lower bound) and never PASSes.",
    "- Generator health: send lag = actual minus intended send time. When a slot was free, it is the load "
    "generator's own delay; a window whose own-lag p99 exceeds `target.max_generator_lag` (default 10 ms) is "
    "generator-limited, and the phase's client latency is INVALID: a measurement of the tool, not the service. "
    "Server-side categories are judged as always.",
    "- A phase that did not run its planned course (aborted, interrupted, failed) is NOT-EVALUATED: its rows "
    "are what was measured so far, and only a FAIL among them counts (NO-GO). A phase where no category has "
    "a value (e.g. an import of placeholders) is NOT-EVALUATED too.",
    "- Exit codes of `phase5site report`: 0 GO, 3 NO-GO, 5 INVALID, 6 NOT-EVALUATED, 1 runtime error, "
    "2 usage error.",
]


def render_report(evaluation: RunEvaluation, *, partial: bool = False) -> str:
    """The whole Markdown report: verdict first, then per-phase tables, method and caveats."""
    title = "Partial summary" if partial else "Production report"
    lines = [
        f"# {title}: {evaluation.name or evaluation.run_id}",
        "",
        f"**Verdict: {evaluation.decision}**",
        "",
    ]
    if evaluation.reasons:
        lines += [f"- {reason}" for reason in evaluation.reasons] + [""]
    if evaluation.synthetic:
        lines += [f"**Synthetic load**: the mix includes diagnostics requests that are not production traffic "
                  f"({', '.join(f'`{name}`' for name in evaluation.synthetic)}); their categories show what the "
                  "service does when exercised, not what production does.", ""]
    if evaluation.warnings:
        lines += ["## Warnings: client and server disagree", ""] + [f"- ⚠ {w}" for w in evaluation.warnings] + [""]
    lines += [
        f"- run: `{evaluation.run_id}` (status {evaluation.status or NA_TEXT}, source {evaluation.source or NA_TEXT})",
        f"- started {fmt_time(evaluation.started_at)}, ended {fmt_time(evaluation.ended_at)}",
        f"- thresholds: {evaluation.thresholds_from}",
    ]
    if evaluation.exit_reason:
        lines.append(f"- exit reason: {evaluation.exit_reason}")
    if partial or evaluation.missing:
        lines += ["", "## What is missing", ""] + ([f"- {item}" for item in evaluation.missing] or ["- nothing"])
    lines += ["", "## Throughput: offered vs achieved", ""] + _throughput(evaluation.phases) + [""]
    if any(phase.generator is not None for phase in evaluation.phases):
        lines += ["## Generator health and drops", ""] + generator_table(evaluation.phases) + [""]
    lines += endpoint_markdown(evaluation)
    for phase in evaluation.phases:
        if phase.evaluation is not None:
            lines += _phase_section(phase)
        else:
            lines += [f"## Phase `{phase.phase}`: not evaluated", "", "No samples (phase not observed or no sample completed).", ""]
    lines += ["## How the values are combined", "", evaluation.combination_rule, ""] + METHOD_NOTES
    lines += ["", "## Caveats", ""] + ([f"- {c}" for c in evaluation.caveats] or ["- none"])
    return "\n".join(lines) + "\n"
