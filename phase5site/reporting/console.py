"""The end-of-run summary on the terminal (``run``, ``report``, ``summary``, ``demo``).

A verdict alone ("verdict: GO") does not let a reader check it: like k6's threshold list,
the summary shows per phase and category the pooled value, the threshold, a mark and the
worst sample; then the load that was offered (sent, dropped, generator health, bytes), the
busiest request names, and on its last line what the exit code means.

``summary_blocks`` builds plain data (tables of strings); ``render_plain`` lays them out as
aligned text for pipes and logs, ``render_rich`` as rich tables for a terminal. Verdict
states are read as strings: a state this module does not know is shown by its name, so a
new state elsewhere (e.g. NOT-EXERCISED) prints without a change here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from phase5site.reporting.endpoint_tables import fmt_bytes, fmt_messages, fmt_ms, fmt_share
from phase5site.reporting.endpoints import phase_bytes
from phase5site.reporting.models import PhaseReport, RunEvaluation
from phase5site.reporting.render import fmt_pooled, fmt_threshold, fmt_value

MARKS: dict[str, str] = {"PASS": "✓", "FAIL": "✗", "NA": "–", "INVALID": "!", "NOT-EXERCISED": "○"}
TOP_ENDPOINTS = 5

# Exit codes of run / report / summary / demo (cli.py holds the numbers; README the table).
EXIT_MEANINGS: dict[int, str] = {
    0: "GO: every mandatory category PASSes and no optional one FAILs",
    1: "runtime error",
    2: "usage error",
    3: "NO-GO: a category FAILs on valid evidence, a required one is NA or not exercised in a phase "
       "that ran its course, or the circuit breaker aborted the run",
    4: "aborted by the circuit breaker: the service suffered, the load was stopped",
    5: "INVALID: nothing FAILs, but the load generator was delayed while slots were free; "
       "rerun on a quieter host or with more workers",
    6: "NOT-EVALUATED: no verdict: a phase did not run its planned course (or nothing could be "
       "judged) and nothing FAILed in what was measured; rerun it to a verdict",
    129: "interrupted by SIGHUP",
    130: "interrupted by SIGINT (Ctrl-C)",
    143: "interrupted by SIGTERM",
}


def mark(verdict: str, label: str | None = None) -> str:
    """``'✓ PASS'``, ``'✗ FAIL'``; ``'○ NOT-EXERCISED'``; an unknown state by its own name (``'? NEW'``);
    ``label`` is the printed form when it differs (``'✓ PASS, not significant'``)."""
    return f"{MARKS.get(verdict, '?')} {label or verdict}"


def exit_line(code: int) -> str:
    """The summary's last line. Example: ``'exit code 3: NO-GO: a category FAILs ...'``."""
    return f"exit code {code}: {EXIT_MEANINGS.get(code, 'see `phase5site --help`')}"


@dataclass(frozen=True)
class Block:
    """A titled table of strings (or, without headers, a list of lines)."""

    title: str
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def _worst(row: Any) -> str:
    if row.worst_sample is None:
        return "NA"
    return f"#{row.worst_sample} {'≥ ' if row.worst_censored else ''}{fmt_value(row.worst_value, row.unit)}"


def verdict_block(evaluation: RunEvaluation) -> Block:
    """Per phase, category and source: pooled value, threshold, mark, worst sample. A phase
    that did not run its course is labelled "(so far)": its rows are what was measured, not
    a verdict; requests outside every sample window are named below the table."""
    rows, lines = [], []
    for phase in evaluation.evaluated_phases():
        assert phase.evaluation is not None
        label = phase.phase + (" (so far)" if phase.evaluation.stopped else "")
        if phase.evaluation.stopped:
            lines.append(f"{phase.phase}: {phase.evaluation.stopped}: the rows are what was measured so far")
        outside = phase.evaluation.outside
        if outside is not None and outside.requests:
            lines.append(f"{phase.phase}: {outside.requests:,} requests outside every sample window "
                         f"({outside.errors:,} errors, {outside.dropped:,} dropped): not in the pooled figures")
        for category in phase.evaluation.categories:
            for row in category.rows:
                rows.append([label, category.category, row.source, fmt_pooled(row), fmt_threshold(row),
                             mark(str(row.verdict), row.verdict_label),
                             _worst(row)])
    for e in evaluation.endpoints:
        for t in e.thresholds:
            value = "NA" if t.value_ms is None else f"{'≥ ' if t.censored else ''}{t.value_ms:.1f} ms"
            rows.append([e.phase, f"request {e.name} {t.quantile}", "client", value, f"<= {t.threshold_ms:.1f} ms",
                         mark(t.verdict), "NA"])
    return Block("SLO verdicts (pooled over the sample windows of each phase)",
                 ["phase", "category", "source", "pooled", "threshold", "verdict", "worst sample"], rows, lines)


def _bytes(evaluation: RunEvaluation, phase: str) -> tuple[str, str]:
    """(data sent, data received) cells of a phase: the measured figure, or NA with why."""
    sent, received, why = phase_bytes(evaluation.endpoints, phase)
    sent_cell = fmt_bytes(sent) if sent is not None else f"NA ({why})"
    return sent_cell, fmt_bytes(received) if received is not None else "NA (no answer was counted)"


def _health(phase: PhaseReport) -> str:
    health = phase.generator
    if health is None:
        return "NA (no request rows)"
    if not health.measured:
        return "not measured (run recorded before generator health)"
    own = "NA" if health.generator_lag_p99_ms is None else f"{health.generator_lag_p99_ms:.1f} ms"
    limited = ", ".join(f"#{n}" for n in health.limited_samples) or "none"
    return f"own lag p99 {own}; generator-limited windows: {limited}"


def load_block(evaluation: RunEvaluation) -> Block:
    rows = []
    for phase in evaluation.phases:
        t = phase.throughput
        offered = "NA" if t.offered_rate is None else f"{t.offered_rate:g}"
        achieved = "NA" if t.achieved_rate is None else f"{t.achieved_rate:.1f}"
        sent = "NA" if t.requests_sent is None else f"{t.requests_sent:,}"
        dropped = "NA" if t.dropped is None else f"{t.dropped:,}"
        rows.append([phase.phase, phase.status or "NA", f"{achieved} of {offered}", sent, dropped,
                     _health(phase), *_bytes(evaluation, phase.phase)])
    block = Block("Load", ["phase", "status", "req/s achieved of offered", "sent", "dropped",
                           "generator health", "data sent", "data received"], rows)
    if evaluation.source == "import":
        return Block(block.title, block.headers, block.rows,
                     ["imported legacy CSV: no request rows, so no client figures, drops or bytes"])
    return block


def endpoint_block(evaluation: RunEvaluation, top: int = TOP_ENDPOINTS) -> Block | None:
    """The ``top`` busiest request names of each observed phase (all phases if none is)."""
    judged = {p.phase for p in evaluation.evaluated_phases()}
    chosen = [e for e in evaluation.endpoints if not judged or e.phase in judged]
    rows, shown = [], {}
    for e in chosen:
        shown[e.phase] = shown.get(e.phase, 0) + 1
        if shown[e.phase] > top:
            continue
        rows.append([e.phase, e.name, f"{e.count:,}", fmt_share(e.success_rate),
                     *(fmt_ms(e, key) for key in ("min_ms", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms")),
                     ", ".join(f"{s}: {n:,}" for s, n in sorted(e.status_counts.items())) or "none"])
    if not rows:
        return None
    hidden = sum(max(0, n - top) for n in shown.values())
    lines = [f"{hidden} more request name(s) in the report"] if hidden else []
    lines += _transport_lines(chosen, top)
    return Block(f"Per request (top {top} by count; latency ms from intended send, ≥ = censored by drops)",
                 ["phase", "request", "count", "success", "min", "mean", "p50", "p95", "p99", "max", "status codes"],
                 rows, lines)


def _transport_lines(endpoints: list[Any], top: int) -> list[str]:
    """One line per (phase, request, kind) of transport errors, most frequent first, with
    its example message; the rest are counted (the report lists them all)."""
    groups = sorted(((e, t) for e in endpoints for t in e.transport), key=lambda g: -g[1].count)
    lines = [f"transport errors: {e.phase} {e.name} {t.kind} {t.count:,}: {fmt_messages(t)}"
             for e, t in groups[:top]]
    if len(groups) > top:
        lines.append(f"{len(groups) - top} more transport error group(s) in the report")
    return lines


def summary_blocks(evaluation: RunEvaluation, *, exit_code: int, top: int = TOP_ENDPOINTS) -> list[Block]:
    """Everything the summary shows, in order; the last block's last line is the exit code."""
    head = [f"run {evaluation.run_id}: {evaluation.decision} (status {evaluation.status or 'NA'}, "
            f"source {evaluation.source or 'NA'}, thresholds: {evaluation.thresholds_from})"]
    head += [f"  - {reason}" for reason in evaluation.reasons]
    head += [f"  phase {p.phase}: {p.evaluation.decision}" for p in evaluation.evaluated_phases()
             if p.evaluation is not None and p.evaluation.decision != evaluation.decision]
    blocks = [Block("Verdict", lines=head), verdict_block(evaluation), load_block(evaluation)]
    endpoints = endpoint_block(evaluation, top)
    if endpoints is not None:
        blocks.append(endpoints)
    blocks.append(Block("", lines=[exit_line(exit_code)]))
    return blocks


def render_plain(blocks: list[Block]) -> str:
    """Aligned text: each column as wide as its widest cell."""
    out: list[str] = []
    for block in blocks:
        if block.title:
            out += ["", block.title]
        if block.headers:
            widths = [max(len(cell) for cell in column) for column in zip(block.headers, *block.rows)]
            for cells in [block.headers, *block.rows]:
                out.append("  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip())
        out += block.lines
    return "\n".join(out).lstrip("\n") + "\n"


def render_rich(blocks: list[Block], console: Any) -> None:
    """The same blocks as rich tables on ``console`` (a ``rich.console.Console``)."""
    from rich import box
    from rich.table import Table

    for block in blocks:
        if block.headers:
            table = Table(title=block.title, title_justify="left", box=box.SIMPLE_HEAD)
            for header in block.headers:
                table.add_column(header)
            for cells in block.rows:
                style = "red" if any(c.startswith("✗") for c in cells) else None
                table.add_row(*cells, style=style)
            console.print(table)
        elif block.title:
            console.print(f"[bold]{block.title}[/bold]")
        for line in block.lines:
            console.print(line, markup=False, highlight=False)


def print_summary(evaluation: RunEvaluation, *, exit_code: int, tty: bool, echo: Any) -> None:
    """Print the summary: rich tables on a terminal, plain text through ``echo`` otherwise."""
    blocks = summary_blocks(evaluation, exit_code=exit_code)
    if tty:
        from rich.console import Console

        render_rich(blocks, Console())
    else:
        echo(render_plain(blocks).rstrip("\n"))
