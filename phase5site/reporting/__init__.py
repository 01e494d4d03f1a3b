"""Reports: read runs through the store, judge them with ``slo``, write Markdown/JUnit/JSON.

Public API: ``evaluate_run(run_dir) -> RunEvaluation`` (used by the site too),
``write_report(path, out=None, junit=None, partial=False) -> ReportResult``,
``opened_run(path)`` (run folder or legacy metrics.csv), ``render_report``, ``render_junit``,
``evaluation_json``.
"""

from __future__ import annotations

from phase5site.reporting.evaluate import evaluate_run, opened_run
from phase5site.reporting.junit import render_junit
from phase5site.reporting.models import PhaseReport, PhaseThroughput, RunEvaluation
from phase5site.reporting.render import render_report
from phase5site.reporting.write import ReportResult, evaluation_json, write_report

__all__ = [
    "PhaseReport",
    "PhaseThroughput",
    "ReportResult",
    "RunEvaluation",
    "evaluate_run",
    "evaluation_json",
    "opened_run",
    "render_junit",
    "render_report",
    "write_report",
]
