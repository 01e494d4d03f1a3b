"""Write reports into a run folder (or beside a legacy metrics.csv)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from phase5site.errors import StoreError, UsageError
from phase5site.reporting.evaluate import evaluate_run, opened_run
from phase5site.reporting.junit import render_junit
from phase5site.reporting.models import RunEvaluation
from phase5site.reporting.render import render_report

REPORT_NAME = "production-report.md"
SUMMARY_NAME = "summary.md"


@dataclass(frozen=True)
class ReportResult:
    evaluation: RunEvaluation
    report_path: Path
    junit_path: Path | None


def evaluation_json(evaluation: RunEvaluation) -> str:
    """The evaluation as JSON (NA as null)."""
    return json.dumps(asdict(evaluation), indent=2, sort_keys=False)


def _target_folder(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def write_report(
    path: Path, *, out: Path | None = None, junit: Path | None = None, partial: bool = False
) -> ReportResult:
    """Evaluate a run folder or legacy metrics.csv and write the Markdown report.

    The report goes to ``out``, else ``production-report.md`` (``summary.md`` when
    ``partial``) in the run folder, or beside the CSV for a legacy file.
    """
    path = Path(path)
    with opened_run(path) as run_dir:
        evaluation = evaluate_run(run_dir)
    if not partial and evaluation.status not in (None, "completed"):
        raise UsageError(
            f"run {evaluation.run_id} is {evaluation.status}, not completed",
            hint="use `phase5site summary RUN_DIR --partial` for an interrupted or aborted run",
        )
    target = out or _target_folder(path) / (SUMMARY_NAME if partial else REPORT_NAME)
    _write_text(target, render_report(evaluation, partial=partial))
    junit_path = None
    if junit is not None:
        _write_text(junit, render_junit(evaluation))
        junit_path = junit
    return ReportResult(evaluation, target, junit_path)


def _write_text(target: Path, text: str) -> None:
    """Write ``text`` to ``target``; a full disk or a read-only folder is one line, naming
    the file (the run's stored data is only read, never at risk)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as error:
        raise StoreError(f"cannot write {target.name} in {target.parent}: {error.strerror or error}",
                         hint="free some space (or choose --out), then run the command again; "
                         "the run's data is intact") from error
