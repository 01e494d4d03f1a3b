"""The page of one run: verdicts, charts, phases, events, metadata, environment, downloads."""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup

from phase5site.site.charts import ChartSpec
from phase5site.site.decision import NOT_EVALUATED, row_class, run_badge, shown_decision
from phase5site.site.escape import html_text, json_attribute, md_text
from phase5site.site.fmt import duration, number, table, utc
from phase5site.site.health import health_section
from phase5site.site.icons import icon
from phase5site.site.rundata import RunData
from phase5site.store import load_span_s

ONE_FILE_NAME = "report.html"  # the one-file report beside the run page (site.onefile)
ONE_FILE_LABEL = "One-file report (report.html)"
MAX_EVENTS = 300  # a page lists at most this many events; the rest are counted


def decision_badge(run: RunData) -> Markup:
    """The run's decision as shown (``decision.shown_decision``: 'not evaluated' included)."""
    return run_badge(run)


def chart_div(chart: ChartSpec) -> str:
    """The chart as a div whose spec charts.js hands to vega-embed, and a closed <details>
    that charts.js fills with the chart's data table when it is opened (the data is in the
    spec already: a table in the page would double its size and the build's work)."""
    return (f'<div class="vega-chart" id="chart-{html_text(chart.name)}" '
            f"data-vega-spec='{json_attribute(chart.spec)}'></div>\n"
            f'<details class="p5-chart-data" data-chart="chart-{html_text(chart.name)}">'
            f"<summary>Data table: {html_text(chart.title)}</summary></details>")


def summary_table(run: RunData) -> str:
    rows = [
        ("Decision", decision_badge(run)),
        ("Status", run.run.get("status")),
        ("Exit reason", run.run.get("exit_reason") or "—"),
        ("Started (UTC)", utc(run.started_at)),
        ("Duration", duration(run.duration_s)),
        ("Requests", number(run.request_count)),
        ("Metrics source", run.primary_source or "none"),
        ("Run id", run.run.get("run_id")),
        ("Tool version", run.run.get("tool_version")),
    ]
    return str(table(["Run", ""], rows, css="p5-summary"))


def verdict_section(run: RunData) -> str:
    verdicts = run.verdicts
    if verdicts.unavailable:
        return f'<p class="p5-note">{icon("NA")} No verdict: {html_text(verdicts.unavailable)}.</p>'
    parts = []
    shown = shown_decision(run)
    if shown.state == NOT_EVALUATED:  # a run cut short, or a placeholder-only import: say why
        parts.append(f'<p class="p5-note">{icon("NA")} Not evaluated: {html_text(shown.reason)}. The rows below '
                     "are what was measured; none of them is a verdict on the release.</p>")
    if verdicts.phases:
        phase_rows = [(p.phase, Markup(icon(p.decision or "NA")),
                       "; ".join([*p.reasons, *([f"measured so far: the phase {p.stopped}"] if p.stopped else []),
                                  *([p.outside] if p.outside else [])]) or "—")
                      for p in verdicts.phases]
        parts.append(str(table(["Phase", "Decision", "Reasons"], phase_rows, css="p5-phase-decisions",
                               row_css=[row_class(p.decision or "NA") for p in verdicts.phases])))
    rows = [(row.phase or "run", row.category, row.pooled, row.worst_sample, row.target,
             Markup(icon(row.verdict, not_significant=row.significant is False)), row.note) for row in verdicts.rows]
    if rows:
        parts.append(str(table(["Phase", "Category", "Pooled", "Worst sample", "Target", "Verdict", "Note"],
                               rows, css="p5-verdicts",
                               row_css=[row_class(row.verdict) for row in verdicts.rows])))
    else:
        parts.append("<p>No category could be judged.</p>")
    if verdicts.reasons:
        items = "".join(f"<li>{html_text(reason)}</li>" for reason in verdicts.reasons)
        parts.append(f"<ul class=\"p5-reasons\">{items}</ul>")
    return "\n\n".join(parts)


def _evidence(run: RunData) -> str:
    """Warnings where the client's and the server's counts disagree, the synthetic label, and
    per phase the reconciliation table (from the evaluation; nothing recomputed)."""
    verdicts = run.verdicts
    parts = []
    if verdicts.synthetic:
        names = ", ".join(f"<code>{html_text(name)}</code>" for name in verdicts.synthetic)
        parts.append(f'<p class="p5-note p5-synthetic">{icon("WARN")} <strong>Synthetic load</strong>: the mix '
                     f"includes diagnostics requests that are not production traffic ({names}).</p>")
    if verdicts.warnings:
        items = "".join(f"<li>{icon('WARN')} {html_text(w)}</li>" for w in verdicts.warnings)
        parts.append(f'<ul class="p5-warnings">{items}</ul>')
    for phase, reconciliation in verdicts.reconciliations:
        rows = []
        windows = list(_get(reconciliation, "windows") or [])
        total = _get(reconciliation, "phase")
        for row in [*windows, *([total] if total is not None else [])]:
            num = _get(row, "sample_num")
            flags = [name for name, key in (("count", "count_warning"), ("errors", "error_warning")) if _get(row, key)]
            rows.append((phase, "phase" if num is None else f"#{num}", number(_get(row, "client_answered")),
                         number(_get(row, "client_timed")), number(_get(row, "server_requests")),
                         number(_get(row, "client_failures")), number(_get(row, "server_errors")),
                         Markup(icon("WARN")) if flags else "no"))
        if rows:
            parts.append(str(table(["Phase", "Sample", "Client answered", "On timed routes", "Server counted",
                                    "Client errors", "Server errors", "Gap beyond noise"], rows,
                                   css="p5-reconciliation")))
    return "\n\n".join(parts)


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def phase_table(run: RunData) -> str:
    rows = []
    for phase in run.phases:
        start, end = phase.get("started_at"), phase.get("ended_at")
        elapsed = None if start is None or end is None else float(end) - float(start)
        # rates over the span the load could send in (not the wait for a last Prometheus scrape)
        span = load_span_s(start, end, phase.get("planned_duration_s"))
        sent, dropped = phase.get("requests_sent"), phase.get("dropped")
        achieved = None if sent is None or not span else sent / span
        offered = None if sent is None or dropped is None or not span else (sent + dropped) / span
        share = None if sent is None or dropped is None or not (sent + dropped) else dropped / (sent + dropped)
        rows.append((phase.get("name"), phase.get("status"), number(phase.get("rate")),
                     number(offered), number(achieved), number(phase.get("concurrency")),
                     duration(phase.get("planned_duration_s")), duration(elapsed), number(sent),
                     number(dropped), "NA" if share is None else f"{share:.2%}"))
    headers = ["Phase", "Status", "Target req/s", "Offered req/s", "Achieved req/s", "In flight max",
               "Planned", "Actual", "Sent", "Dropped", "Dropped share"]
    return str(table(headers, rows, css="p5-phases"))


ENDPOINT_LATENCY = (("min_ms", "min"), ("mean_ms", "mean"), ("p50_ms", "p50"), ("p90_ms", "p90"),
                    ("p95_ms", "p95"), ("p99_ms", "p99"), ("max_ms", "max"))


def _latency(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None:
        return "NA"
    return f"{'≥ ' if key in (row.get('censored') or []) else ''}{value:.1f}"


def _endpoints(run: RunData) -> str:
    """Per phase and request name: a table sorted by count; a click on a header re-sorts it
    (site_src/javascripts/tables.js, offline like everything on the site)."""
    if not run.endpoints:
        return "<p>No request rows (an imported run, or no request was sent).</p>"
    rows = []
    for row in run.endpoints:
        statuses = ", ".join(f"{code}: {n:,}" for code, n in sorted((row.get("status_counts") or {}).items()))
        transport = "; ".join(f"{t['kind']} {t['count']:,}" for t in row.get("transport") or [])
        success = row.get("success_rate")
        rate = row.get("achieved_rate")
        rows.append((row["phase"], row["name"], number(row["count"]), number(row["dropped"]),
                     "NA" if rate is None else f"{rate:.2f}", "NA" if success is None else f"{success:.2%}",
                     *(_latency(row, key) for key, _ in ENDPOINT_LATENCY), statuses or "none",
                     transport or "none", _bytes_sent(row), number(row.get("bytes_received"))))
    headers = ["Phase", "Request", "Count", "Dropped", "Achieved req/s", "Success",
               *(f"{label} ms" for _, label in ENDPOINT_LATENCY), "Status codes", "Transport errors",
               "Bytes sent", "Bytes received"]
    note = ("<p>Client side, from every request row: count includes dropped requests (a failure in the "
            "success rate); latency from the intended send time, nearest rank; min and mean over sent "
            "requests; ≥ marks a percentile that fell on a dropped request (a lower bound); bytes sent are "
            "what the client wrote (request line, headers, body). Click a column header to sort.</p>")
    text = note + "\n\n" + str(table(headers, rows, css="p5-endpoints p5-sortable"))
    errors = transport_details(run.endpoints)
    return text + ("\n\n" + errors if errors else "")


def _bytes_sent(row: dict[str, Any]) -> str:
    if row.get("bytes_sent") is not None:
        return number(row["bytes_sent"])
    return f"NA ({row['bytes_sent_na']})" if row.get("bytes_sent_na") else "NA"


def transport_details(endpoints: list[dict[str, Any]]) -> str:
    """A closed <details> with the transport errors grouped by phase, request and kind: count,
    the example request and its message (the client's first line, secrets redacted). Empty
    when no request failed in transport."""
    groups = [(row, t) for row in endpoints for t in row.get("transport") or []]
    if not groups:
        return ""
    rows = []
    for row, t in groups:
        latency = t.get("example_latency_ms")
        distinct = t.get("distinct_messages")
        rows.append((row["phase"], row["name"], t["kind"], number(t["count"]),
                     f"seq {t['example_seq']} at {utc(t.get('example_at'))}"
                     f"{'' if latency is None else f', after {latency:.1f} ms'}",
                     t.get("message") or "NA", "NA" if distinct is None else number(distinct)))
    total = sum(t["count"] for _, t in groups)
    summary = f"Transport errors by kind: {total:,} in {len(groups)} group(s), one example message each"
    body = table(["Phase", "Request", "Kind", "Count", "Example", "Example message", "Distinct messages"], rows,
                 css="p5-transport-errors")
    return f'<details class="p5-transport"><summary>{html_text(summary)}</summary>\n{body}\n</details>'


def event_table(run: RunData) -> str:
    events = sorted(run.events, key=lambda e: e.get("at") or 0.0)
    rows = [(utc(e.get("at")), e.get("phase") or "—", e.get("kind"), e.get("message")) for e in events[:MAX_EVENTS]]
    if not rows:
        return "<p>No events were recorded.</p>"
    text = str(table(["Time (UTC)", "Phase", "Kind", "Message"], rows, css="p5-events"))
    if len(events) > MAX_EVENTS:
        text += f"\n\n<p>{len(events) - MAX_EVENTS} more events are in run.duckdb (table events).</p>"
    return text


def na_reason_table(run: RunData) -> str:
    """Why values are NA: each (source, column, reason) once, with how many samples had it."""
    counts: dict[tuple[str, str, str], int] = {}
    for sample in run.samples:
        reasons = sample.get("na_reasons")
        if isinstance(reasons, str):
            try:
                reasons = json.loads(reasons)
            except ValueError:
                reasons = {}
        for column, reason in (reasons or {}).items() if isinstance(reasons, dict) else []:
            key = (str(sample.get("source")), str(column), str(reason))
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        return "<p>No value was NA in any sample.</p>"
    rows = [(source, column, reason, count) for (source, column, reason), count in sorted(counts.items())]
    return str(table(["Source", "Column", "Why it is NA", "Samples"], rows, css="p5-na-reasons"))


def _pre(value: Any) -> str:
    text = json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)
    return f'<pre class="p5-json"><code>{html_text(text)}</code></pre>'


def _downloads(downloads: dict[str, str]) -> str:
    if not downloads:
        return "<p>No files to download.</p>"
    items = "".join(f'<li><a href="{html_text(href)}" download="{html_text(name)}">{html_text(name)}</a></li>'
                    if name != ONE_FILE_LABEL else
                    f'<li><a href="{html_text(href)}">{html_text(name)}</a>: one self-contained HTML file '
                    "(charts inline, no script, no network) to attach to a ticket</li>"
                    for name, href in downloads.items())
    return f"<ul>{items}</ul>"


def render_run_page(run: RunData, charts: list[ChartSpec], downloads: dict[str, str]) -> str:
    """Markdown for ``runs/<slug>/index.md``. ``downloads`` maps a file name to its href."""
    chart_html = "\n\n".join(chart_div(chart) for chart in charts) or "<p>No chart has data.</p>"
    description = run.spec.get("description") or ""
    parts = [
        # mkdocs copies the title into <title> unescaped: give it the file-safe slug only.
        # hide: toc gives the wide verdict and phase tables the table of contents' width.
        f"---\ntitle: Run {run.slug}\nhide:\n  - toc\n---",
        f"# Run {md_text(run.name)}",
        f'<p class="p5-one-file"><a href="{ONE_FILE_NAME}">One-file report</a> (HTML, for a ticket)</p>'
        if ONE_FILE_LABEL in downloads else "",
        f"<p>{html_text(description)}</p>" if description else "",
        summary_table(run),
        "## Verdict", verdict_section(run),
        "## Client vs server counts" if run.verdicts.reconciliations or run.verdicts.synthetic else "",
        _evidence(run),
        "## Charts",
        ("<p>Time axis: UTC clock time; dashed grey lines mark phase starts (named at the top), dashed "
         "red lines the SLO targets. Client values come from every request, server values from the "
         "metrics source, one point per sample. Under each chart, <em>Data table</em> opens the "
         "numbers it draws.</p>"),
        chart_html,
        "## Phases", phase_table(run),
        "## Per request", _endpoints(run),
        "## Generator health and drops", health_section(run),
        "## Events", event_table(run),
        "### NA reasons", na_reason_table(run),
        "## Metadata",
        "<p>The run spec as stored with the run, secrets replaced by <code>***</code>.</p>",
        _pre(run.spec),
        "## Environment", _pre(run.run.get("environment") or {}),
        "## Downloads", _downloads(downloads),
    ]
    return "\n\n".join(part for part in parts if part) + "\n"
