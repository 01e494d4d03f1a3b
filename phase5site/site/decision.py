"""The release decision the site shows: which runs count, and what they decide together.

The site never judges a run (``reporting.evaluate_run`` does); this module only chooses
runs and combines their decisions:

- A run *counts* when the site options name it (``--release-run PATTERN``, matched against
  the run's spec name and its folder name), or, when none are named, when it carries no
  tag that leaves it out: ``test`` (spec key ``tags``) or ``import`` (every imported legacy
  CSV). Runs left out are listed apart with the reason, never silently dropped.
- Of the runs that count, the latest one per spec name stands: a rerun of day 1 after a
  fix replaces the failed day 1, it does not sit beside it.
- The release is NO-GO if a standing run is NO-GO or could not be evaluated (missing
  evidence is not a pass); else INVALID if one is INVALID (the load generator limited
  it: rerun on a quieter host); else GO. With no standing run there is no decision.

A run is *not evaluated* when there is no evaluation, or when the evaluator says
NOT-EVALUATED (``reporting.evaluate.run_decision``): a phase did not run its planned course
and nothing failed in it, or nothing could be judged, e.g. an imported legacy file whose
values are placeholders of the old observer, cumulative totals or absent. The site shows
the evaluator's reasons; it does not judge on its own.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from markupsafe import Markup

from phase5site.site.escape import html_text
from phase5site.site.fmt import link, table, utc
from phase5site.site.icons import icon
from phase5site.site.rundata import RunData
from phase5site.slo.models import NOT_EVALUATED as EVALUATOR_NOT_EVALUATED

LEFT_OUT_TAGS = ("test", "import")
NOT_EVALUATED = "not evaluated"
HOME_FRAGMENT = "snippets/home-decision.html"  # in generated/; site_src/index.md includes it (pymdownx.snippets)
RULE = ("latest run per spec name among the runs that count; NO-GO if one is NO-GO or not evaluated, "
        "else INVALID if one is INVALID, else GO")


@dataclass(frozen=True)
class SiteOptions:
    """What the site's build was told about the release: ``release_runs`` are fnmatch
    patterns naming the runs that count (empty: every run not tagged test or import)."""

    release_runs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Shown:
    state: str  # GO | NO-GO | INVALID | "not evaluated" | any other state the evaluator names
    reason: str = ""


def run_tags(run: RunData) -> list[str]:
    """The run's tags: the spec's ``tags`` list, plus ``import`` for an imported legacy file.

    Example: a spec with ``tags: [test]`` -> ``['test']``; an imported run -> ``['import']``.
    """
    raw = run.spec.get("tags")
    tags = [str(tag) for tag in raw] if isinstance(raw, list) else []
    if run.run.get("source") == "import" and "import" not in tags:
        tags.append("import")
    return tags


def shown_decision(run: RunData) -> Shown:
    """The decision a page shows for one run (see the module docstring for 'not evaluated')."""
    verdicts = run.verdicts
    if verdicts.decision is None:
        return Shown(NOT_EVALUATED, verdicts.unavailable or "no evaluation")
    if verdicts.decision == EVALUATOR_NOT_EVALUATED:
        return Shown(NOT_EVALUATED, "; ".join(verdicts.reasons) or "no verdict could be reached")
    return Shown(verdicts.decision, "; ".join(verdicts.reasons))


def decision_badge(state: str) -> Markup:
    if state == NOT_EVALUATED:
        return Markup(icon("NA") + " " + NOT_EVALUATED)
    return Markup(icon(state))


def run_badge(run: RunData) -> Markup:
    return decision_badge(shown_decision(run).state)


@dataclass(frozen=True)
class ReleaseDecision:
    decision: str | None  # GO | NO-GO | INVALID | None (no run counts)
    reasons: list[str]
    standing: list[RunData]  # latest counting run per spec name
    superseded: list[RunData]  # counting runs replaced by a later run of the same spec
    left_out: list[tuple[RunData, str]] = field(default_factory=list)  # run, why it does not count
    named: bool = False  # the options named the runs (else: the default tag rule)


def _counts(run: RunData, options: SiteOptions) -> str | None:
    """None when the run counts, else why not."""
    if options.release_runs:
        names = (run.name, run.run_dir.name)
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in options.release_runs for name in names):
            return None
        return "not named by --release-run (" + ", ".join(options.release_runs) + ")"
    tags = [tag for tag in run_tags(run) if tag in LEFT_OUT_TAGS]
    return f"tagged {', '.join(tags)}" if tags else None


def release_decision(runs: list[RunData], options: SiteOptions) -> ReleaseDecision:
    """Choose the runs that count and combine their decisions (rule in the module docstring)."""
    latest_first = sorted(runs, key=lambda run: run.started_at or 0.0, reverse=True)
    standing: dict[str, RunData] = {}
    superseded, left_out = [], []
    for run in latest_first:
        why = _counts(run, options)
        if why is not None:
            left_out.append((run, why))
        elif run.name in standing:
            superseded.append(run)
        else:
            standing[run.name] = run
    chosen = sorted(standing.values(), key=lambda run: run.started_at or 0.0)
    shown = [(run, shown_decision(run)) for run in chosen]
    blocking = [f"{run.name}: {s.state}" + (f" ({s.reason})" if s.reason else "")
                for run, s in shown if s.state not in ("GO", "INVALID")]
    invalid = [f"{run.name}: INVALID ({s.reason})" for run, s in shown if s.state == "INVALID"]
    if not chosen:
        decision, reasons = None, ["no run counts toward the release"]
    elif blocking:
        decision, reasons = "NO-GO", blocking
    elif invalid:
        decision, reasons = "INVALID", invalid
    else:
        decision, reasons = "GO", [f"every standing run is GO ({len(chosen)})"]
    return ReleaseDecision(decision, reasons, chosen, superseded, left_out, bool(options.release_runs))


def _run_link(run: RunData, prefix: str) -> Markup:
    return link(f"{prefix}runs/{run.slug}/index.html", run.name)


def evidence_table(release: ReleaseDecision, prefix: str) -> str:
    """The standing runs with their decisions and reasons; ``prefix`` leads from the page
    to the site root (``''`` from the home page, ``'../'`` from generated/)."""
    rows, classes = [], []
    for run in release.standing:
        shown = shown_decision(run)
        phases = ", ".join(f"{p.phase} {p.decision or NOT_EVALUATED}" for p in run.verdicts.phases) or "—"
        rows.append((_run_link(run, prefix), utc(run.started_at), run.run.get("status"),
                     decision_badge(shown.state), phases, shown.reason or "—"))
        classes.append(row_class(shown.state))
    return str(table(["Run", "Start (UTC)", "Status", "Decision", "Phases", "Why"], rows,
                     css="p5-evidence", row_css=classes))


def row_class(state: str) -> str:
    """The CSS class that highlights a row by its verdict or decision (PASS/GO: none).

    Example: ``row_class("FAIL")`` -> ``'p5-row-fail'``; ``row_class("NOT-EXERCISED")`` -> ``'p5-row-other'``.
    """
    return {"PASS": "", "GO": "", "FAIL": "p5-row-fail", "NO-GO": "p5-row-fail", "NA": "p5-row-na",
            NOT_EVALUATED: "p5-row-na", "NOT-EVALUATED": "p5-row-na",
            "INVALID": "p5-row-invalid"}.get(state, "p5-row-other")


def decision_block(release: ReleaseDecision, prefix: str) -> str:
    """Decision, its reasons, its evidence and the runs left out: home and completion pages."""
    state = release.decision
    badge = decision_badge(state) if state else Markup(icon("NA") + " no decision")
    reasons = "".join(f"<li>{html_text(reason)}</li>" for reason in release.reasons)
    chosen = ("runs named by --release-run" if release.named
              else "every run not tagged " + " or ".join(LEFT_OUT_TAGS))
    parts = [f'<div class="p5-decision p5-decision-{html_text((state or "none").lower())}">'
             f'<p class="p5-decision-head">Release decision: {badge}</p><ul>{reasons}</ul>'
             f"<p>Runs that count: {html_text(chosen)}. Rule: {html_text(RULE)}.</p></div>"]
    if release.standing:
        parts.append(evidence_table(release, prefix))
    if release.superseded:
        items = ", ".join(f"{_run_link(run, prefix)} ({utc(run.started_at)})" for run in release.superseded)
        parts.append(f"<p>Replaced by a later run of the same spec: {items}.</p>")
    if release.left_out:
        rows = [(_run_link(run, prefix), utc(run.started_at), run_badge(run), ", ".join(run_tags(run)) or "—", why)
                for run, why in release.left_out]
        parts.append(f"<p>Listed apart ({len(rows)} runs that do not count):</p>")
        parts.append(str(table(["Run", "Start (UTC)", "Decision", "Tags", "Why it does not count"], rows,
                               css="p5-left-out")))
    return "\n\n".join(parts)


def render_home(release: ReleaseDecision) -> str:
    """The fragment site_src/index.md includes: the latest release decision with its evidence."""
    link_text = '<p><a href="generated/completion.html">Completion report</a> for the caveats and targets.</p>'
    return decision_block(release, "") + "\n\n" + link_text + "\n"
