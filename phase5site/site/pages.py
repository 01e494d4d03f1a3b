"""The site-wide generated pages: overview, comparison, SLO documents, completion report."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup

from phase5site.site.escape import html_text
from phase5site.site.fmt import duration, link, number, table, utc
from phase5site.site.health import overview_cells
from phase5site.site.icons import icon
from phase5site.site.decision import (
    NOT_EVALUATED,
    ReleaseDecision,
    decision_block,
    SiteOptions,
    release_decision,
    row_class,
    run_tags,
    shown_decision,
)
from phase5site.site.page_run import decision_badge
from phase5site.site.rundata import RunData
from phase5site.site.verdicts import VerdictRow, value_text

# Pages live in site_src/generated/; run pages in site_src/runs/<slug>/index.md.
RUN_HREF = "../runs/{slug}/index.html"  # raw HTML links: final URLs (use_directory_urls: false)
# Wide tables: Material's table of contents would take a fifth of the width.
HIDE_TOC = "---\nhide:\n  - toc\n---"
# Event kinds a caveat can quote (reporting lists notable events as "<kind>: <message>").
EVENT_KINDS = frozenset({"run_start", "run_end", "phase_start", "phase_end", "drops", "breaker_trip", "na",
                         "error", "signal", "fault", "warning"})


def _latest_first(runs: list[RunData]) -> list[RunData]:
    return sorted(runs, key=lambda run: run.started_at or 0.0, reverse=True)


def render_overview(runs: list[RunData], skipped: list[str] | None = None) -> str:
    """Latest decision per spec name, then every run, then runs that could not be read."""
    latest: dict[str, RunData] = {}
    for run in _latest_first(runs):
        latest.setdefault(run.name, run)
    decisions = [(link(RUN_HREF.format(slug=run.slug), run.name), utc(run.started_at),
                  decision_badge(run), shown_decision(run).reason or "—")
                 for run in sorted(latest.values(), key=lambda r: r.name)]
    all_runs = [(link(RUN_HREF.format(slug=run.slug), run.name), utc(run.started_at),
                 duration(run.duration_s), run.run.get("status"), decision_badge(run),
                 number(sum(1 for s in run.samples if s.get("source") == run.primary_source)),
                 number(run.request_count), *overview_cells(run),
                 Markup(f'{link(RUN_HREF.format(slug=run.slug), "page")} · '
                        f'{link(f"../runs/{run.slug}/metrics.csv", "metrics.csv")}'))
                for run in _latest_first(runs)]
    parts = [HIDE_TOC, "# Overview", "## Latest decision per run spec"]
    if not runs:
        parts.append("<p>No runs yet. Start one with <code>phase5site run runspecs/demo.yaml</code>, "
                     "then <code>phase5site build</code>.</p>")
    else:
        parts.append(str(table(["Run spec", "Latest run (UTC)", "Decision", "Reasons"], decisions)))
        parts += ["## All runs", str(table(["Name", "Start (UTC)", "Duration", "Status", "Verdict",
                                            "Samples", "Requests", "Dropped (share)", "Load generator",
                                            "Links"], all_runs, css="p5-runs",
                                           row_css=[row_class(shown_decision(r).state) for r in _latest_first(runs)]))]
    if skipped:
        items = "".join(f"<li>{html_text(message)}</li>" for message in skipped)
        parts += ["## Runs that could not be read", f"<ul>{items}</ul>"]
    return "\n\n".join(parts) + "\n"


@dataclass(frozen=True)
class Pair:
    left: RunData
    left_phase: str | None
    right: RunData
    right_phase: str | None


def _main_phase(run: RunData, preferred: str) -> str | None:
    phases = [row.phase for row in run.verdicts.rows]
    if preferred in phases:
        return preferred
    return phases[-1] if phases else None


def default_pair(runs: list[RunData]) -> Pair | None:
    """Latest run with a 'baseline' phase vs latest with 'extended'; else the two latest runs."""
    ordered = _latest_first(runs)
    base = next((r for r in ordered if any(p["name"] == "baseline" for p in r.phases)), None)
    ext = next((r for r in ordered if any(p["name"] == "extended" for p in r.phases)), None)
    if base is not None and ext is not None:
        return Pair(base, _main_phase(base, "baseline"), ext, _main_phase(ext, "extended"))
    if len(ordered) >= 2:
        return Pair(ordered[1], _main_phase(ordered[1], ""), ordered[0], _main_phase(ordered[0], ""))
    return None


def _rows_of(run: RunData, phase: str | None) -> dict[str, VerdictRow]:
    return {row.key: row for row in run.verdicts.rows if row.phase == phase}


def ci_overlap(a: VerdictRow | None, b: VerdictRow | None) -> str:
    """'yes'/'no' when both rows have a two-sided interval, else 'NA'.

    Example: [0.10, 0.20] and [0.15, 0.30] -> 'yes'; [0.10, 0.12] and [0.15, 0.30] -> 'no'.
    """
    if a is None or b is None or None in (a.ci_low, a.ci_high, b.ci_low, b.ci_high):
        return "NA"
    return "yes" if a.ci_low <= b.ci_high and b.ci_low <= a.ci_high else "no"  # type: ignore[operator]


def _difference(a: VerdictRow | None, b: VerdictRow | None) -> str:
    if a is None or b is None or a.pooled_value is None or b.pooled_value is None:
        return "NA"
    delta = b.pooled_value - a.pooled_value
    if a.unit == "ratio":
        return f"{delta * 100:+.2f} pp"
    return f"{delta:+.4g} {a.unit}".strip()


def _pair_table(pair: Pair) -> str:
    left, right = _rows_of(pair.left, pair.left_phase), _rows_of(pair.right, pair.right_phase)
    keys = list(left) + [k for k in right if k not in left]
    rows = []
    for key in keys:
        a, b = left.get(key), right.get(key)
        rows.append(((a or b).category,  # type: ignore[union-attr]
                     Markup(f"{html_text(a.pooled)} {icon(a.verdict, not_significant=a.significant is False)}") if a else "NA",
                     Markup(f"{html_text(b.pooled)} {icon(b.verdict, not_significant=b.significant is False)}") if b else "NA",
                     _difference(a, b), ci_overlap(a, b)))
    headers = ["Category", f"{pair.left.name} / {pair.left_phase}", f"{pair.right.name} / {pair.right_phase}",
               "Difference (right − left)", "Confidence intervals overlap"]
    return str(table(headers, rows, css="p5-compare"))


def render_comparison(runs: list[RunData]) -> str:
    """Baseline vs extended side by side, then every run's pooled values per category."""
    parts = [HIDE_TOC, "# Comparison"]
    pair = default_pair(runs)
    if pair is None:
        parts.append("<p>Comparison needs at least two evaluated runs.</p>")
        return "\n\n".join(parts) + "\n"
    parts += ["## " + ("Baseline vs extended" if pair.left_phase == "baseline" and pair.right_phase == "extended"
                       else "The two latest runs"),
              (f"<p>Left: {link(RUN_HREF.format(slug=pair.left.slug), pair.left.name)}, "
               f"right: {link(RUN_HREF.format(slug=pair.right.slug), pair.right.name)}. Overlapping "
               "confidence intervals mean the difference may be noise; NA means no interval was "
               "computed for that category.</p>"),
              _pair_table(pair), "## Every run side by side", _all_runs_table(runs)]
    return "\n\n".join(parts) + "\n"


def _all_runs_table(runs: list[RunData]) -> str:
    """Pooled value per category (rows) and per run and phase (columns): compare any two runs."""
    columns = [(run, phase) for run in _latest_first(runs)
               for phase in dict.fromkeys(row.phase for row in run.verdicts.rows)]
    keyed = {(run.slug, phase): _rows_of(run, phase) for run, phase in columns}
    categories: dict[str, str] = {}
    for rows in keyed.values():
        for key, row in rows.items():
            categories.setdefault(key, row.category)
    body = []
    for key, label in categories.items():
        cells: list[object] = [label]
        for run, phase in columns:
            row = keyed[(run.slug, phase)].get(key)
            cells.append(Markup(f"{html_text(row.pooled)} {icon(row.verdict, not_significant=row.significant is False)}") if row else "NA")
        body.append(cells)
    headers = ["Category"] + [f"{run.name} / {phase} ({utc(run.started_at)[:16]})" for run, phase in columns]
    return str(table(headers, body, css="p5-compare-all"))


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")
_HEADING = re.compile(r"^(#{1,5}) ", re.MULTILINE)


def embed_markdown(text: str) -> str:
    """A generated Markdown document embedded one heading level down, with raw HTML
    neutralised (``<tag`` becomes ``&lt;tag``) so it renders as text.

    Example: ``embed_markdown("# SLO\\n<b>x</b>")`` -> ``'## SLO\\n&lt;b>x&lt;/b>'``.
    """
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced:
            line = _HEADING.sub(r"#\1 ", _TAG_START.sub("&lt;", line))
        lines.append(line)
    return "\n".join(lines)


def render_slo(slo_docs: list[Path], downloads: dict[str, list[str]]) -> str:
    """The finalized SLO documents, newest version first, with links to their machine files."""
    parts = [HIDE_TOC, "# Service level objectives"]
    if not slo_docs:
        parts.append("<p>No finalized SLO yet. Run <code>phase5site slo recommend</code> on a baseline, "
                     "then <code>phase5site slo finalize --version X.Y.Z</code>; the documents land in "
                     "<code>results/slo/</code> and appear here at the next build.</p>")
    for doc in slo_docs:
        files = downloads.get(doc.name, [])
        if files:
            items = " · ".join(str(link(f"slo/{name}", name)) for name in files)
            parts.append(f"<p>Machine-readable: {items}</p>")
        parts.append(embed_markdown(doc.read_text(encoding="utf-8")))
    return "\n\n".join(parts) + "\n"


def render_completion(runs: list[RunData], slo_docs: list[Path], release: ReleaseDecision | None = None) -> str:
    """The Phase 5 completion summary: the release decision from the runs that count, every
    run, the SLO targets adopted, and the open caveats grouped by run and kind."""
    release = release or release_decision(runs, SiteOptions())
    ordered = _latest_first(runs)
    states = [shown_decision(run).state for run in runs]
    counts = {state: states.count(state) for state in dict.fromkeys(states)}
    tally = ", ".join(f"{count} {state}" for state, count in counts.items()) or "none"
    parts = [HIDE_TOC, "# Phase 5 completion report", "## Release decision", decision_block(release, "../"),
             f"<p>{len(runs)} runs in all: {html_text(tally)}. Finalized SLO documents: {len(slo_docs)}.</p>",
             "## Runs"]
    parts.append(str(table(["Run", "Start (UTC)", "Status", "Tags", "Decision", "Requests"],
                           [(link(RUN_HREF.format(slug=r.slug), r.name), utc(r.started_at), r.run.get("status"),
                             ", ".join(run_tags(r)) or "—", decision_badge(r), number(r.request_count))
                            for r in ordered],
                           css="p5-completion-runs", row_css=[row_class(shown_decision(r).state) for r in ordered])))
    parts += ["## SLO targets adopted", _targets(slo_docs, ordered)]
    parts += ["## Open caveats", _caveats(release)]
    return "\n\n".join(parts) + "\n"


def _targets(slo_docs: list[Path], runs: list[RunData]) -> str:
    if slo_docs:
        items = "".join(f"<li>{link('slo.html', doc.name)}</li>" for doc in slo_docs)
        head = f"<p>Adopted in the finalized SLO documents:</p><ul>{items}</ul>"
    else:
        head = "<p>No SLO document is finalized yet; the release criteria below are the ones the runs were judged by.</p>"
    if not runs:
        return head
    slo = runs[0].slo()
    rows = [(key, value_text(float(v), "ratio") if isinstance(v, float) and v <= 1 and "_ms" not in key and "mb" not in key
             else number(v)) for key, v in sorted(slo.items()) if key != "categories"]
    for name, policy in sorted((slo.get("categories") or {}).items()):  # required: false, and why
        if isinstance(policy, dict) and policy.get("required") is not None:
            required = "required" if policy["required"] else f"not required: {policy.get('justification') or ''}"
            rows.append((f"categories.{name}", required))
    return head + "\n\n" + f"<p>Release criteria of the latest run ({html_text(runs[0].name)}):</p>\n\n" + str(
        table(["slo key", "value"], rows))


def caveat_kind(caveat: str) -> str:
    """The group a caveat goes in: the event kind it quotes, else 'evaluation'.

    Example: ``caveat_kind("warning: column x unknown")`` -> ``'warning'``;
    ``caveat_kind("baseline: PASS, not significant")`` -> ``'evaluation'``.
    """
    head = caveat.split(":", 1)[0].strip()
    return head if head in EVENT_KINDS else "evaluation"


def run_caveats(run: RunData) -> dict[str, list[str]]:
    """A run's caveats by kind, each text once (repeats counted: "(x3)")."""
    items: list[tuple[str, str]] = []
    shown = shown_decision(run)
    if shown.state == NOT_EVALUATED:
        items.append(("not evaluated", shown.reason))
    if run.run.get("status") not in ("completed", None):
        items.append(("status", f"status {run.run.get('status')} ({run.run.get('exit_reason') or 'no reason'})"))
    items += [(caveat_kind(caveat), caveat) for caveat in run.verdicts.caveats]
    if run.verdicts.synthetic:
        items.append(("synthetic", f"synthetic load (diagnostics requests: {', '.join(run.verdicts.synthetic)})"))
    items += [("client vs server", f"warning: {warning}") for warning in run.verdicts.warnings]
    na = [row for row in run.verdicts.rows if row.verdict == "NA"]
    if na:
        items.append(("NA rows", f"{len(na)} of {len(run.verdicts.rows)} verdict rows are NA"))
    idle = [row for row in run.verdicts.rows if row.verdict == "NOT-EXERCISED"]
    if idle:
        items.append(("not exercised", f"{len(idle)} of {len(run.verdicts.rows)} verdict rows are not exercised by the load"))
    grouped: dict[str, dict[str, int]] = {}
    for kind, text in items:
        texts = grouped.setdefault(kind, {})
        texts[text] = texts.get(text, 0) + 1
    return {kind: [text + (f" (x{n})" if n > 1 else "") for text, n in texts.items()]
            for kind, texts in grouped.items()}


def _run_caveat_block(run: RunData, open_it: bool) -> str:
    groups = run_caveats(run)
    total = sum(len(texts) for texts in groups.values())
    summary = ", ".join(f"{len(texts)} {kind}" for kind, texts in groups.items())
    inner = "".join(f"<li><strong>{html_text(kind)}</strong> ({len(texts)})<ul>"
                    + "".join(f"<li>{html_text(text)}</li>" for text in texts) + "</ul></li>"
                    for kind, texts in groups.items())
    return (f'<details class="p5-caveats"{" open" if open_it else ""}><summary>{html_text(run.name)} '
            f"({utc(run.started_at)}): {total} caveats: {html_text(summary)}</summary><ul>{inner}</ul></details>")


def _caveats(release: ReleaseDecision) -> str:
    """Caveats of the runs that decide first (open), then of the others (closed), grouped."""
    deciding = [run for run in release.standing if run_caveats(run)]
    others = [run for run in release.superseded + [r for r, _ in release.left_out] if run_caveats(run)]
    if not deciding and not others:
        return "<p>None.</p>"
    parts = []
    if deciding:
        parts.append("<p>Runs that decide the release:</p>")
        parts += [_run_caveat_block(run, True) for run in deciding]
    if others:
        parts.append("<p>Runs that do not count (replaced, tagged, or not named):</p>")
        parts += [_run_caveat_block(run, False) for run in others]
    return "\n".join(parts)
