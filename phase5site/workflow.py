"""The chains a user runs as one command: pre-flight, run, report and site; and the demo.

Each step is a library call of its own part; this module only orders them and decides what
a failure of a later step means for the evidence of an earlier one: a run that finished is
never lost because its report or the site could not be written (both can be redone with
``phase5site report`` and ``phase5site build``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phase5site.errors import Interrupted, Phase5Error, RunError
from phase5site.runspec import LoadedSpec

if TYPE_CHECKING:
    from phase5site.site.reference import CommandHelp

Echo = Callable[..., None]  # click.echo-like: echo(text, err=False)


@dataclass
class WorkflowResult:
    run_dir: Path | None
    status: str  # completed | interrupted | aborted | failed | refused
    signal: int | None = None
    decision: str | None = None  # GO | NO-GO | INVALID (None when no report could be made)
    late_signal: int | None = None  # a signal after the run ended (its summary was still written)
    report_path: Path | None = None
    site_dir: Path | None = None
    problems: list[str] = field(default_factory=list)  # later steps that failed
    evaluation: Any = None  # reporting.RunEvaluation of the report, for the console summary


def preflight(loaded: LoadedSpec, env: Mapping[str, str], results_dir: Path,
              only_phases: list[str] | None, echo: Echo) -> None:
    """Run ``verify``'s checks; refuse to start on any FAIL (RunError lists them)."""
    from phase5site.ops.verify import verify_spec

    def progress(check: Any) -> None:  # each check as it completes: the target takes seconds
        echo(f"verify {check.status} {check.check}: {check.reason}")

    try:
        report = verify_spec(loaded, env=env, results_dir=results_dir, only_phases=only_phases,
                             on_check=progress)
    except KeyboardInterrupt:
        raise Interrupted("interrupted (Ctrl-C) during the pre-flight checks: no load was sent, "
                          "no run folder was made") from None
    failed = [check for check in report.checks if check.status == "FAIL"]
    if failed:
        raise RunError(
            f"pre-flight failed ({len(failed)} check(s)): "
            + "; ".join(f"{check.check}: {check.reason}" for check in failed),
            hint="fix them (see `phase5site verify SPEC`), or pass --skip-verify for staging",
        )
    echo(f"verify: {len(report.checks)} checks, none failed")


def write_summary(run_dir: Path, status: str, echo: Echo, problems: list[str]) -> Any:
    """Write the report (a partial summary unless completed); None when it could not be."""
    from phase5site.reporting.render import evidence_lines, not_significant_lines
    from phase5site.reporting.write import write_report

    try:
        result = write_report(run_dir, partial=status != "completed")
    except Phase5Error as error:
        problems.append(f"report not written: {error.message}")
        return None
    echo(f"report: {result.report_path}")
    reasons = "; ".join(result.evaluation.reasons)
    echo(f"verdict: {result.evaluation.decision}" + (f" ({reasons})" if reasons else ""))
    for line in not_significant_lines(result.evaluation):
        echo(f"  note: {line}")
    for line in evidence_lines(result.evaluation):
        echo(f"  {line}")
    return result


def _build_site(results_dir: Path, site_root: Path, echo: Echo, problems: list[str],
                commands: Sequence[CommandHelp]) -> Path | None:
    from phase5site.site.build import build_site

    if not (site_root / "mkdocs.yml").is_file():
        problems.append(f"site not built: no mkdocs.yml in {site_root} (run `phase5site build` "
                        "from the repository root)")
        return None
    try:
        built = build_site(results_dir, site_root, commands=commands,
                           progress=lambda message: echo(f"site: {message}"))
    except Phase5Error as error:
        problems.append(f"site not built: {error.message}")
        return None
    except KeyboardInterrupt:  # the evidence is written; the site can be rebuilt any time
        problems.append("site not built: interrupted (Ctrl-C); run `phase5site build`")
        return None
    echo(f"site: {built.site_dir}/index.html ({built.runs} runs, {built.duration_s:.1f} s); "
         "browse with `mkdocs serve`")
    return built.site_dir


def run_workflow(
    loaded: LoadedSpec,
    *,
    env: Mapping[str, str],
    results_dir: Path,
    only_phases: list[str] | None,
    breaker: bool,
    verify: bool,
    site_root: Path | None,
    tty: bool,
    echo: Echo,
    commands: Sequence[CommandHelp] = (),
    live_port: int | None = None,
) -> WorkflowResult:
    """verify -> run -> report -> site, as ``phase5site run`` does; a spec this machine's
    memory cannot hold is refused first, as ``validate`` refuses it.

    ``commands`` is the CLI's help for the site's reference page. ``live_port`` (``--live``;
    0 = any free port) serves the live page on 127.0.0.1 during the run: the port is taken
    before the pre-flight, so a port in use refuses the run before any request."""
    from phase5site.engine.display import run_with_progress
    from phase5site.engine.stopping import SignalLatch
    from phase5site.ops.environment import host_memory_bytes
    from phase5site.runspec.plan import build_plan

    build_plan(loaded, only_phases, memory_limit_bytes=host_memory_bytes())  # SpecError: too big
    live_page = None
    if live_port is not None:
        from phase5site.engine.livepage import LivePage

        live_page = LivePage.bind(live_port, secrets=loaded.secrets)  # UsageError: port in use
        echo(f"live page: {live_page.url} (while the run goes)")
    try:
        if verify:
            preflight(loaded, env, results_dir, only_phases, echo)
    except BaseException:
        if live_page is not None:
            live_page.release()
        raise
    # From here a signal never cuts the evidence short: the run's own handlers stop the load
    # (a second signal forces it), and one after the run waits until its summary is written.
    with SignalLatch() as latch:
        try:
            outcome = run_with_progress(loaded, results_dir=results_dir, only_phases=only_phases,
                                        breaker=breaker, tty=tty, live_page=live_page)
        finally:
            if live_page is not None:
                live_page.release()  # the run stopped serving it; this closes a socket never served
        result = WorkflowResult(run_dir=outcome.run_dir, status=outcome.status, signal=outcome.signal)
        reason = f" ({outcome.exit_reason})" if outcome.exit_reason else ""
        echo(f"run {outcome.status}{reason}: {outcome.run_dir}", err=outcome.status != "completed")
        if outcome.run_dir is None:
            return result
        report = write_summary(outcome.run_dir, outcome.status, echo, result.problems)
        result.late_signal = latch.received[0] if latch.received else None
    if site_root is not None and result.late_signal is None:
        result.site_dir = _build_site(results_dir, site_root, echo, result.problems, commands)
    elif site_root is not None:
        result.problems.append("site not built: interrupted; run `phase5site build`")
    if report is not None:
        result.report_path = report.report_path
        result.decision = report.evaluation.decision
        result.evaluation = report.evaluation
    return result


def run_demo(spec_path: Path, *, results_dir: Path, site_root: Path, slo_dir: Path,
             version: str, tty: bool, echo: Echo,
             commands: Sequence[CommandHelp] = (), live_port: int | None = None) -> WorkflowResult:
    """The whole production chain against the embedded target, in about a minute."""
    from phase5site.ops.archive import archive_run
    from phase5site.runspec import load_spec

    loaded = load_spec(spec_path, {})
    if loaded.spec.target.embedded is None:
        raise RunError(f"{spec_path} does not use the embedded target",
                       hint="the demo never sends load to a real service; use `phase5site run`")
    result = run_workflow(loaded, env={}, results_dir=results_dir, only_phases=None, breaker=True,
                          verify=True, site_root=None, tty=tty, echo=echo, live_port=live_port)
    if result.run_dir is None or result.status != "completed":
        return result
    _demo_slo(result, slo_dir, version, echo)
    archived = archive_run(result.run_dir, dest=results_dir.parent / "final-artifacts")
    echo(f"archive: {archived.path} ({archived.files} files, checksums.txt)")
    result.site_dir = _build_site(results_dir, site_root, echo, result.problems, commands)
    return result


def _demo_slo(result: WorkflowResult, slo_dir: Path, version: str, echo: Echo) -> None:
    """slo recommend + finalize; a run the draft must not rest on (NO-GO, INVALID, short)
    writes no SLO document, and says so (``reporting.evidence_gate``)."""
    from phase5site.reporting.evidence_gate import EvidenceRefused
    from phase5site.reporting.slo_files import finalize, recommend_runs

    assert result.run_dir is not None
    try:
        draft = recommend_runs([result.run_dir], out=slo_dir / "slo-draft.yaml")
    except EvidenceRefused as refused:
        echo(f"slo recommend: no SLO draft written: {refused.message}", err=True)
        echo(f"slo recommend: to draft anyway: phase5site slo recommend {result.run_dir} "
             + " ".join(f"--allow {r}" for r in refused.reasons), err=True)
        result.problems.append("no SLO draft: the run is weak evidence (see above)")
        return
    echo(f"slo recommend: {draft.path}")
    for proposal in draft.draft.proposals:
        for warning in proposal.warnings:
            echo(f"slo recommend warning: {proposal.category}: {warning}")
    final = finalize(version, draft_path=draft.path, out_dir=slo_dir)
    for path in (final.markdown_path, final.openslo_path, final.rules_path):
        echo(f"slo finalize: {path}")
    for warning in final.warnings:
        echo(f"slo finalize warning: {warning}")
