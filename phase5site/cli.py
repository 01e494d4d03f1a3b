"""The command line: a thin edge. Each command parses options, calls one library function
and maps ``Phase5Error`` to a message and an exit code. No logic lives here.

Exit codes: 0 GO / success, 1 runtime error, 2 usage or spec error, 3 NO-GO,
4 aborted by the circuit breaker, 5 INVALID (the load generator, not the service, limited the
client latency), 6 NOT-EVALUATED (a phase did not run its course, nothing FAILed), 130
interrupted (SIGINT), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from phase5site import __version__
from phase5site.errors import Phase5Error, UsageError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_GO = 0
EXIT_RUNTIME_ERROR = 1
EXIT_USAGE = 2
EXIT_NO_GO = 3
EXIT_ABORTED = 4
EXIT_INVALID = 5
EXIT_NOT_EVALUATED = 6
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


def handle_errors(func: F) -> F:
    """Turn expected failures into one message on stderr and their exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Phase5Error as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:  # click would print "Aborted!" and exit 1
            click.echo("Error: interrupted (Ctrl-C)", err=True)
            sys.exit(EXIT_SIGINT)

    return wrapper  # type: ignore[return-value]


env_file_option = click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Read variables from this dotenv file first (default: .env.phase5 if present).",
)


def phase_option(what: str) -> Callable[[F], F]:
    """``--phase NAME`` (repeatable), shared by the commands that read a spec's phases."""
    return click.option("--phase", "phases", multiple=True, metavar="NAME",
                        help=f"{what} (repeatable); default: every enabled phase.")


def results_dir_option(help_text: str) -> Callable[[F], F]:
    """``--results-dir`` (default ``results``), with what the command does with it."""
    return click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path),
                        default=Path("results"), show_default=True, help=help_text)


DECISION_EXIT_CODES = {"GO": EXIT_GO, "NO-GO": EXIT_NO_GO, "INVALID": EXIT_INVALID,
                       "NOT-EVALUATED": EXIT_NOT_EVALUATED}


def workflow_exit_code(result: Any) -> int:
    """0 GO, 3 NO-GO, 5 INVALID, 6 NOT-EVALUATED, 4 aborted by the breaker, 130/143 interrupted, 1 otherwise; a
    signal after the run (while its summary was written) still exits 128 + the signal."""
    import signal as signals

    if getattr(result, "late_signal", None):
        return 128 + int(result.late_signal)
    if result.status == "completed":
        return DECISION_EXIT_CODES.get(result.decision, EXIT_RUNTIME_ERROR)
    if result.status == "aborted":
        return EXIT_ABORTED
    if result.status == "interrupted":
        # 128 + the signal, as a shell reports it: 129 SIGHUP, 130 SIGINT, 143 SIGTERM.
        if result.signal in (signals.SIGTERM, signals.SIGHUP):
            return 128 + int(result.signal)
        return EXIT_SIGINT
    return EXIT_RUNTIME_ERROR


def _finish_workflow(result: Any) -> None:
    """Warnings, then the console summary of the run (its last line: the exit code)."""
    for problem in result.problems:
        click.echo(f"Warning: {problem}", err=True)
    code = workflow_exit_code(result)
    if getattr(result, "evaluation", None) is not None:
        from phase5site.reporting.console import print_summary

        print_summary(result.evaluation, exit_code=code, tty=sys.stdout.isatty(), echo=click.echo)
    sys.exit(code)


def load_spec_with_env(spec: Path, env_file: Path | None) -> Any:
    """Load ``spec`` with the process environment overlaid on the dotenv file, if any."""
    from phase5site.ops.envfile import merged_environment
    from phase5site.runspec import load_spec

    return load_spec(spec, merged_environment(env_file))


def _check_phase_names(loaded: Any, phases: tuple[str, ...]) -> None:
    known = [phase.name for phase in loaded.spec.phases]
    unknown = [name for name in phases if name not in known]
    if unknown:
        from phase5site.errors import UsageError

        raise UsageError(
            f"--phase {unknown[0]!r} is not a phase of {loaded.path}",
            hint=f"Phases are: {', '.join(known)}.",
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="phase5site")
def cli() -> None:
    """Paced production baselines, SLO verdicts and a publishable static site.

    Exit codes: 0 GO or success, 1 runtime error, 2 usage or spec error, 3 NO-GO,
    4 aborted by the circuit breaker, 5 INVALID (the load generator was delayed while slots
    were free: its client latency measures the tool), 6 NOT-EVALUATED (a phase did not run
    its planned course, or nothing could be judged, and nothing FAILed), 130/143 interrupted
    by SIGINT/SIGTERM.
    """


# --- spec: validate, schema (foundation) ---------------------------------------------------


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@phase_option("Plan only these phases")
@env_file_option
@handle_errors
def validate(spec: Path, phases: tuple[str, ...], env_file: Path | None) -> None:
    """Check a run spec and print its plan, without touching the network.

    Prints every phase with rate, concurrency, planned duration, expected requests and
    samples, the total wall time, the memory the run needs at most, the metrics source,
    the SLO thresholds and which values are secrets (named, never shown). Exits 2 with one
    located line per problem, also when the run would need more memory than this machine has.

    Example:

        phase5site validate runspecs/day1.yaml
    """
    from phase5site.ops.environment import host_memory_bytes
    from phase5site.runspec.plan import build_plan, format_plan

    loaded = load_spec_with_env(spec, env_file)
    _check_phase_names(loaded, phases)
    plan = build_plan(loaded, list(phases) or None, memory_limit_bytes=host_memory_bytes())
    click.echo(format_plan(plan, loaded))


@cli.command()
@click.option("--indent", default=2, show_default=True, help="JSON indentation.")
def schema(indent: int) -> None:
    """Print the JSON Schema of run specs (for editors' YAML language servers).

    Save it and point your editor at it, e.g. with the YAML extension of VS Code add
    `# yaml-language-server: $schema=../runspec.schema.json` as the first line of a spec.

    Example:

        phase5site schema > runspec.schema.json
    """
    from phase5site.runspec import spec_json_schema

    click.echo(json.dumps(spec_json_schema(), indent=indent))

# --- run, status, target (engine) ----------------------------------------------------------


@cli.command()
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port to listen on; 0 picks a free one.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Loopback address to listen on (127.0.0.1, localhost or ::1).")
@click.option("--fault", "faults", multiple=True, metavar="KIND:AT:DURATION[:PARAM]",
              help="Schedule a fault from start (repeatable): error_burst (PARAM share), "
              "latency_stall (PARAM delay_ms), outage, memory_growth (PARAM mb_per_s).")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed of the simulator.")
@click.option("--bearer-env", metavar="VAR", default=None,
              help="Require 'Authorization: Bearer <token>' at the JWT gate with the token read from "
              "this environment variable (never pass a token on the command line).")
@click.option("--metrics-token-env", metavar="VAR", default=None,
              help="Make /metrics/prom want this environment variable's value as 'Authorization: "
              "Bearer <t>' or 'X-Metrics-Token: <t>', like the service's METRICS_SCRAPE_TOKEN.")
@handle_errors
def target(port: int, host: str, faults: tuple[str, ...], seed: int,
           bearer_env: str | None, metrics_token_env: str | None) -> None:
    """Run the embedded MetaSheet-like target in the foreground until Ctrl-C.

    Example:

        phase5site target --port 8900 --fault error_burst:30s:10s:0.2 --fault outage:60s:5s
    """
    import secrets

    from phase5site.errors import UsageError
    from phase5site.runspec.models import EmbeddedSpec
    from phase5site.simulator import TargetConfig, parse_fault_option, run_foreground
    from phase5site.simulator.config import check_loopback

    try:
        check_loopback(host)
    except Phase5Error as error:
        raise UsageError(f"--host: {error.message}", hint=error.hint) from error
    bearer = os.environ.get(bearer_env) if bearer_env else None
    if bearer_env and not bearer:
        raise UsageError(f"--bearer-env: environment variable {bearer_env} is not set or empty")
    metrics_token = os.environ.get(metrics_token_env) if metrics_token_env else None
    if metrics_token_env and not metrics_token:
        raise UsageError(f"--metrics-token-env: environment variable {metrics_token_env} is not set or empty")
    embedded = EmbeddedSpec(seed=seed, faults=[parse_fault_option(text) for text in faults])
    admin_token = secrets.token_urlsafe(24)
    config = TargetConfig(embedded=embedded, bearer=bearer, admin_token=admin_token,
                          metrics_token=metrics_token, host=host, port=port)

    def announce(bound_host: str, bound_port: int) -> None:
        base_url = f"http://{'[' + bound_host + ']' if ':' in bound_host else bound_host}:{bound_port}"
        click.echo(f"embedded target: {base_url}  (metrics: {base_url}/metrics/prom)")
        click.echo(f"admin: curl -H 'X-Phase5-Admin-Token: {admin_token}' {base_url}/__phase5/admin/state")
        click.echo("Press Ctrl-C to stop.")

    run_foreground(config, on_ready=announce)


LIVE_HELP = ("Serve a live page on 127.0.0.1 while the run goes (rate, p95, errors; "
             "from the runner's own state, never run.duckdb); --live alone picks a free port, "
             "--live PORT takes that one. The URL is printed once; off by default.")


def live_option(function: Any) -> Any:
    return click.option("--live", "live", type=click.IntRange(0, 65535), is_flag=False, flag_value=0,
                        default=None, metavar="[PORT]", help=LIVE_HELP)(function)


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@results_dir_option("Folder that receives the run folder <name>-<UTC time>/.")
@phase_option("Run only these phases")
@click.option("--no-breaker", is_flag=True, help="Disable the circuit breaker (loudly logged; "
              "nothing then stops the load if the service suffers). For staging only.")
@click.option("--skip-verify", is_flag=True,
              help="Start even when a pre-flight check fails (for staging only).")
@click.option("--no-site", is_flag=True, help="Do not build the site at the end of the run.")
@live_option
@env_file_option
@handle_errors
def run(spec: Path, results_dir: Path, phases: tuple[str, ...], no_breaker: bool,
        skip_verify: bool, no_site: bool, live: int | None, env_file: Path | None) -> None:
    """Pre-flight, send the spec's paced load, sample metrics, report the verdict, build the site.

    Runs `verify`'s checks first and refuses to start on a FAIL (unless --skip-verify),
    shows live progress (one line per second when stdout is not a terminal), writes
    production-report.md (summary.md for a run that did not complete) into the run folder,
    and rebuilds the site from every run (unless --no-site; run from the repository root).
    Exits 0 GO, 3 NO-GO, 5 INVALID (the load generator was delayed while slots were free:
    rerun on a quieter host or with more workers), 4 when the circuit breaker stopped the
    load, 130/143 on SIGINT/SIGTERM (the run folder stays readable, status 'interrupted'),
    1 on failure.

    With --live, a page on 127.0.0.1 shows the run while it goes (put --live after SPEC,
    or give it a port: `--live 8765`).

    Example:

        phase5site run runspecs/demo.yaml --results-dir results

        phase5site run runspecs/demo.yaml --live 8765
    """
    from phase5site.ops.envfile import merged_environment
    from phase5site.runspec import load_spec
    from phase5site.workflow import run_workflow

    env = merged_environment(env_file)
    loaded = load_spec(spec, env)
    _check_phase_names(loaded, phases)
    if no_breaker:
        click.echo("WARNING: circuit breaker disabled (--no-breaker): nothing stops the load "
                   "if the service suffers.", err=True)
    result = run_workflow(loaded, env=env, results_dir=results_dir, only_phases=list(phases) or None,
                          breaker=not no_breaker, verify=not skip_verify,
                          site_root=None if no_site else Path.cwd(), tty=sys.stdout.isatty(),
                          echo=click.echo, commands=command_reference(), live_port=live)
    _finish_workflow(result)


@cli.command()
@click.argument("run_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@results_dir_option("Where to look for the latest run when RUN_DIR is not given.")
@handle_errors
def status(run_dir: Path | None, results_dir: Path) -> None:
    """Print status.json (the once-a-second heartbeat) of a run, by default the latest.

    Example:

        phase5site status results/demo-20261127T034500Z
    """
    from phase5site.engine.display import read_status

    click.echo(json.dumps(read_status(run_dir, results_dir), indent=2, sort_keys=True))

# --- export, import (metrics / store) ------------------------------------------------------


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet"]),
    default="csv",
    show_default=True,
    help="csv: the samples as CSV v3 (41 columns, NA for missing); parquet: samples, "
    "requests, phases and events as Parquet files.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="CSV file or Parquet folder to write (default: RUN_DIR/export/metrics.csv or "
    "RUN_DIR/export/).",
)
@handle_errors
def export(run_dir: Path, fmt: str, out: Path | None) -> None:
    """Export a stored run as CSV v3 or Parquet; prints each file written.

    Example:

        phase5site export results/day1-production-baseline-20251124T120000Z --format parquet
    """
    from phase5site.store.export import export_run

    for path in export_run(run_dir, fmt, out):
        click.echo(str(path))


@cli.command("import")
@click.argument("csv_path", metavar="PATH/metrics.csv", type=click.Path(path_type=Path))
@click.option(
    "--metadata",
    "metadata_path",
    type=click.Path(path_type=Path),
    default=None,
    help="The run's metadata.json (default: metadata.json beside the CSV, if present).",
)
@results_dir_option("Folder in which the new run folder is created.")
@handle_errors
def import_(csv_path: Path, metadata_path: Path | None, results_dir: Path) -> None:
    """Import a legacy metrics.csv (any old layout) as a new run; prints its folder.

    Columns are read by header name; NA and empty cells stay NA. Findings (unknown
    columns, skipped rows, placeholder values, cumulative counters) go to stderr and are
    stored as warning events.

    Example:

        phase5site import old/phase5-20251124-200917/metrics.csv --results-dir results
    """
    from phase5site.store.legacy import import_legacy_run

    result = import_legacy_run(csv_path, metadata_path, results_dir)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(str(result.run_dir))

# --- report, summary, slo recommend, slo finalize (slo) ------------------------------------


def _finish_report(result: Any, as_json: bool) -> None:
    """Print the verdict (or the JSON evaluation) and exit 0 for GO, 3 NO-GO, 5 INVALID,
    6 NOT-EVALUATED."""
    from phase5site.reporting import evaluation_json
    from phase5site.reporting.render import evidence_lines, not_significant_lines

    evaluation = result.evaluation
    if as_json:
        click.echo(evaluation_json(evaluation))
    else:
        click.echo(f"{evaluation.decision}: {evaluation.run_id}")
        for reason in evaluation.reasons:
            click.echo(f"  - {reason}")
        for line in not_significant_lines(evaluation):
            click.echo(f"  note: {line}")
        for line in evidence_lines(evaluation):
            click.echo(f"  {line}")
        click.echo(f"report: {result.report_path}")
        if result.junit_path is not None:
            click.echo(f"junit: {result.junit_path}")
    code = DECISION_EXIT_CODES.get(evaluation.decision, EXIT_NO_GO)
    if not as_json:
        from phase5site.reporting.console import print_summary

        print_summary(evaluation, exit_code=code, tty=sys.stdout.isatty(), echo=click.echo)
    sys.exit(code)


@cli.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the whole evaluation as JSON (NA is null) instead of the verdict lines.")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write JUnit XML here: one test case per SLO category and phase.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the Markdown here instead of production-report.md in the run folder (or beside the CSV).")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the one-file report here: a single self-contained HTML file (inline CSS, "
              "charts as inline SVG, no script, no network) to attach to a ticket. PATH must be a run folder.")
@handle_errors
def report(path: Path, as_json: bool, junit: Path | None, out: Path | None, html_out: Path | None) -> None:
    """Judge a completed run against the SLOs and write production-report.md.

    PATH is a run folder (results/<run>/) or a legacy metrics.csv of the old scripts
    (imported into a temporary run first; its metadata.json beside it is used if present).
    The report starts with the verdict, then per phase the SLO table (pooled value, worst
    sample, spread, threshold, PASS/FAIL/NA, confidence interval), throughput, fallback by
    source, plugin reload and snapshot, client vs server latency, NA reasons and caveats.

    Exit codes: 0 GO, 3 NO-GO (a mandatory category FAIL or NA, or an optional one FAIL, or
    the circuit breaker aborted the run), 5 INVALID (nothing FAILs, but the load generator was
    delayed while slots were free, so client latency is INVALID: rerun on a quieter host or
    with more workers), 6 NOT-EVALUATED (a phase did not run its planned course, or nothing
    could be judged, e.g. an import of placeholders; nothing FAILed), 1 runtime
    error (unreadable run), 2 usage error (e.g. the run is not completed: use
    `summary --partial`).

    Example:

        phase5site report results/day1-production-baseline-20251124T085111Z --junit slo.xml
        phase5site report results/day1-production-baseline-20251124T085111Z --html day1.html
    """
    from phase5site.reporting import write_report

    if html_out is not None and not path.is_dir():
        raise UsageError(f"--html needs a run folder, not {path}",
                         hint="import the CSV first (`phase5site import`), then report on its run folder")
    result = write_report(path, out=out, junit=junit)
    if html_out is not None:
        from phase5site.site.onefile import write_one_file

        click.echo(f"html: {write_one_file(path, html_out)}", err=as_json)
    _finish_report(result, as_json)


@cli.command()
@click.argument("run_dir", required=False, type=click.Path(exists=True, path_type=Path))
@results_dir_option("Where to look for the latest run when RUN_DIR is not given (as `status`).")
@click.option("--partial", is_flag=True, help="Accept an interrupted, aborted or failed run and list what is missing (phases not run, samples missing).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole evaluation as JSON (NA is null).")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write JUnit XML here.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the Markdown here instead of summary.md in the run folder.")
@handle_errors
def summary(run_dir: Path | None, results_dir: Path, partial: bool, as_json: bool, junit: Path | None,
            out: Path | None) -> None:
    """Summarize a run, also one cut short, into summary.md with what exists.

    RUN_DIR defaults to the latest run under --results-dir (the one `status` shows).
    Without --partial the run must be completed. With it, the verdict is computed from the
    samples that exist and the summary lists what is missing; a phase cut short reads
    NOT-EVALUATED (what it measured so far is shown) unless something FAILed in it. Exit
    codes as `report`: 0 GO, 3 NO-GO, 5 INVALID, 6 NOT-EVALUATED, 1 runtime error, 2 usage
    error.

    Example:

    \b
        phase5site summary results/day1-production-baseline-20251124T085111Z --partial
        phase5site summary --partial
    """
    from phase5site.reporting import write_report

    if run_dir is None:
        from phase5site.engine.display import latest_run_dir

        run_dir = latest_run_dir(results_dir)

    if out is None and not partial:
        from phase5site.reporting.write import SUMMARY_NAME

        out = (run_dir if run_dir.is_dir() else run_dir.parent) / SUMMARY_NAME
    _finish_report(write_report(run_dir, out=out, junit=junit, partial=partial), as_json)


@cli.group()
def slo() -> None:
    """Propose SLO targets from baselines and write the finalized SLO documents.

    Files go to results/slo/ by default (git-ignored, like every generated file):
    slo-draft.yaml from `recommend`; SLO_v<version>.md, openslo.yaml and
    prometheus-rules.yml from `finalize`.
    """


@slo.command("recommend")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Draft file to write (YAML; default results/slo/slo-draft.yaml).")
@click.option("--headroom", type=float, default=0.2, show_default=True, help="Share added to the worst latency/memory sample before rounding up (0.2 = 20%).")
@click.option("--allow", "allow", multiple=True, metavar="REASON",
              type=click.Choice(["no-go", "aborted", "interrupted", "failed", "invalid", "short", "not-evaluated"]),
              help="Draft from a run refused for REASON anyway (repeatable): no-go, aborted, interrupted, "
              "failed, invalid (generator-limited), short (shorter than planned), not-evaluated (nothing "
              "to judge in a phase). The draft records it.")
@handle_errors
def slo_recommend(run_dirs: tuple[Path, ...], out: Path | None, headroom: float, allow: tuple[str, ...]) -> None:
    """Propose SLO targets from one or more baseline runs (pooled) as a YAML draft.

    Per category: observed pooled value, worst sample, proposed target (ratios keep a
    headroom from the measured value: the larger of half the distance to the release
    threshold and the 95% interval's width, rounded to 0.1%; latency rounded up to the next
    50 ms from the worst sample plus headroom), valid samples, coverage and a confidence
    note (low below 12 samples). A worst window more than 3x the median window is named as
    an outlier, with a robust choice (the worst window that is not one) beside it.

    Refuses runs that are NO-GO, aborted, interrupted, failed, generator-limited (INVALID)
    or shorter than planned (exit 2, naming the reason) unless --allow names it. Edit the
    draft if needed, then run `slo finalize`. RUN_DIRS may also be legacy metrics.csv files.

    Example:

        phase5site slo recommend results/day1-* results/day2-* --out results/slo/slo-draft.yaml
    """
    from phase5site.reporting.slo_files import recommend_runs

    result = recommend_runs(list(run_dirs), out=out, headroom=headroom, allow=allow)
    for proposal in result.draft.proposals:
        target = "NA" if proposal.proposed_target is None else f"{proposal.proposed_target:g}"
        click.echo(f"{proposal.category:24} {proposal.comparison} {target:>8}  "
                   f"(n={proposal.n_valid_samples}, confidence {proposal.confidence})")
        if proposal.robust_target is not None and proposal.robust_sample is not None:
            click.echo(f"{'':24}   robust: {proposal.comparison} {proposal.robust_target:g} from "
                       f"{proposal.robust_sample.label} (k = {proposal.robust_k})")
        for warning in proposal.warnings:
            click.echo(f"warning: {proposal.category}: {warning}", err=True)
    for entry in result.document.get("evidence_allowed") or []:
        click.echo(f"warning: allowed ({entry['reason']}): {entry['run']}: {entry['detail']}", err=True)
    click.echo(f"draft: {result.path}")


@slo.command("finalize")
@click.option("--version", "version", required=True, help="Release the SLOs are for, e.g. 2.5.0 (names SLO_v<version>.md).")
@click.option("--from", "draft", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Draft from `slo recommend` (default: <out-dir>/slo-draft.yaml if it exists, else the release criteria).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Folder for the documents (default results/slo/).")
@click.option("--openslo-schema", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None, help="Folder of the OpenSLO v1 JSON schemas: validate openslo.yaml before writing.")
@handle_errors
def slo_finalize(version: str, draft: Path | None, out_dir: Path | None, openslo_schema: Path | None) -> None:
    """Write SLO_v<version>.md, openslo.yaml and prometheus-rules.yml from a draft.

    The Markdown follows the SRE Workbook layout (header with form fields for status, date
    and approvers; SLIs; rationale; error budget; caveats). The rules hold recording rules
    per SLI and window and multi-window multi-burn-rate alerts; an alert that can never
    fire (factor x budget > 1) is omitted with a warning.

    Example:

        phase5site slo finalize --version 2.5.0 --from results/slo/slo-draft.yaml
    """
    from phase5site.reporting.slo_files import finalize

    result = finalize(version, draft_path=draft, out_dir=out_dir, openslo_schema=openslo_schema)
    if result.draft_path is None:
        click.echo("no draft: targets are the release criteria of DESIGN.md")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    for path in (result.markdown_path, result.openslo_path, result.rules_path):
        click.echo(f"wrote {path}")


# --- build, publish (site) -----------------------------------------------------------------


@cli.command()
@results_dir_option("Folder holding one sub-folder per run (and slo/ for SLO documents).")
@click.option("--repo-root", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder with mkdocs.yml; pages go to its site_src/, the site to its site/.")
@click.option("--strict/--no-strict", default=True, show_default=True,
              help="Fail on any mkdocs warning (--no-strict prints them and keeps the site).")
@click.option("--site-url", default=None,
              help="Address the site will be served from (overrides mkdocs.yml / PHASE5_SITE_URL).")
@click.option("--slo-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of finalized SLO documents (SLO_v*.md, openslo.yaml, prometheus-rules.yml); "
              "default: RESULTS_DIR/slo.")
@click.option("--release-run", "release_runs", multiple=True, metavar="PATTERN",
              help="A run that counts toward the release decision, by spec name or run folder (shell "
              "pattern, e.g. 'day1-*'; repeat for more). Default: every run not tagged test or import.")
@handle_errors
def build(results_dir: Path, repo_root: Path, strict: bool, site_url: str | None, slo_dir: Path | None,
          release_runs: tuple[str, ...]) -> None:
    """Generate the report pages from every run and build the static site into site/.

    The home and completion pages show the release decision from the runs that count
    (latest run per spec name), with the others listed apart.

    Example:

        phase5site build --results-dir results --release-run 'day1-*' --release-run 'day2-*'
    """
    from phase5site.site import build_site
    from phase5site.site.decision import SiteOptions

    result = build_site(results_dir, repo_root, strict=strict, site_url=site_url, slo_dir=slo_dir,
                        commands=command_reference(), options=SiteOptions(tuple(release_runs)),
                        progress=lambda message: click.echo(f"site: {message}"))
    for warning in result.warnings:
        click.echo(warning, err=True)
    for message in result.skipped:
        click.echo(f"Skipped: {message}", err=True)
    click.echo(f"Built {result.site_dir} from {result.runs} runs ({len(result.pages)} pages, "
               f"{result.charts} charts) in {result.duration_s:.1f}s")


@cli.command()
@click.option("--to", "target", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Docs-host folder to publish into; its current content is kept as DIR.previous.")
@click.option("--site-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("site"),
              show_default=True, help="The built site to publish.")
@click.option("--dry-run", is_flag=True, help="Only list the files that would be added, changed or removed.")
@handle_errors
def publish(target: Path, site_dir: Path, dry_run: bool) -> None:
    """Copy the built site into a docs-host folder atomically, keeping the previous version.

    Example:

        phase5site publish --to /srv/docs/phase5 --dry-run
    """
    from phase5site.site import publish_site

    result = publish_site(site_dir, target, dry_run=dry_run)
    for mark, names in (("+", result.added), ("~", result.changed), ("-", result.removed)):
        for name in names:
            click.echo(f"{mark} {name}")
    summary = f"{len(result.added)} added, {len(result.changed)} changed, {len(result.removed)} removed"
    if dry_run:
        click.echo(f"Dry run: {summary}; nothing was copied.")
    else:
        kept = f"; previous version kept in {result.previous}" if result.previous else ""
        click.echo(f"Published {site_dir} to {target}: {summary}{kept}")


# --- verify, archive, demo (ops) -----------------------------------------------------------


@cli.command()
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (schema: phase5site/ops/verify-report.schema.json).")
@results_dir_option("Folder the run will write to: checked for write access and free space.")
@env_file_option
@phase_option("Size the checks for these phases only")
@handle_errors
def verify(spec: Path, as_json: bool, results_dir: Path, env_file: Path | None, phases: tuple[str, ...]) -> None:
    """Pre-flight checks before a run: env, token, flags, Prometheus, /health, disk room.

    Every check runs and prints OK, WARN, FAIL or INFO with a one-line reason; secrets are
    never shown. An embedded target is started briefly and checked like production.
    Exits 0 when nothing failed, 1 otherwise (2 when the spec itself is invalid).

    Example:

        phase5site verify runspecs/day1.yaml --env-file .env.phase5
    """
    from phase5site.ops.envfile import merged_environment
    from phase5site.ops.verify import verify_spec
    from phase5site.runspec import load_spec

    env = merged_environment(env_file)
    loaded = load_spec(spec, env)
    _check_phase_names(loaded, phases)
    report = verify_spec(loaded, env=env, results_dir=results_dir, only_phases=list(phases) or None)
    click.echo(report.to_json() if as_json else report.format_text())
    sys.exit(report.exit_code)


@cli.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("final-artifacts"),
    show_default=True,
    help="Folder that receives the archived copy <dest>/<run name>/.",
)
@click.option("--readonly", is_flag=True, help="Remove write permission from every archived file and folder.")
@click.option("--tar", "make_tar", is_flag=True, help="Also write <dest>/<run name>.tar.gz.")
@click.option(
    "--verify",
    "verify_only",
    is_flag=True,
    help="Do not archive: recheck every checksum of PATH (an archive folder or .tar.gz).",
)
@handle_errors
def archive(path: Path, dest: Path, readonly: bool, make_tar: bool, verify_only: bool) -> None:
    """Freeze a run: copy it with sha256 checksums and metadata, optionally read-only or tarred.

    With --verify, recheck an archive instead and list every changed, missing or extra
    file; exits 1 on any difference.

    Example:

    \b
        phase5site archive results/day1-production-baseline-20251124T085111Z --readonly --tar
        phase5site archive --verify final-artifacts/day1-production-baseline-20251124T085111Z
    """
    from phase5site.ops.archive import archive_run, verify_archive

    if verify_only:
        check = verify_archive(path)
        click.echo(check.format_text())
        sys.exit(0 if check.ok else 1)
    result = archive_run(path, dest=dest, readonly=readonly, tar=make_tar)
    click.echo(f"archived {result.files} files to {result.path}")
    if result.tar_path is not None:
        click.echo(f"tarball: {result.tar_path}")
    verdict = result.metadata.get("verdict") or f"NA ({result.metadata.get('verdict_reason')})"
    click.echo(f"samples: {result.metadata.get('samples')}, verdict: {verdict}")


@cli.command()
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("runspecs/demo.yaml"), show_default=True,
              help="An embedded-target spec to run the chain with.")
@results_dir_option("Folder that receives the run folder.")
@click.option("--slo-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results/slo"),
              show_default=True, help="Folder for the SLO draft and the finalized documents.")
@click.option("--version", "version", default="2.5.0", show_default=True,
              help="Release version of the finalized SLO document.")
@live_option
@handle_errors
def demo(spec_path: Path, results_dir: Path, slo_dir: Path, version: str, live: int | None) -> None:
    """Run the whole production chain against the embedded simulator in about a minute.

    verify -> run (warmup, baseline, extended) -> report -> slo recommend -> slo finalize
    -> archive -> build, each step printing where its output is. No environment and no
    network beyond 127.0.0.1 are needed. Exits like `run`: 0 GO, 3 NO-GO, 4 aborted,
    5 INVALID.

    Example:

        phase5site demo
    """
    from phase5site.workflow import run_demo

    result = run_demo(spec_path, results_dir=results_dir, site_root=Path.cwd(), slo_dir=slo_dir,
                      version=version, tty=sys.stdout.isatty(), echo=click.echo,
                      commands=command_reference(), live_port=live)
    _finish_workflow(result)


def command_reference() -> list[Any]:
    """Every command's help text, for the site's reference page (``site.CommandHelp``).

    The CLI hands this to the builder so that the site never imports the CLI."""
    from phase5site.site.reference import CommandHelp

    def walk(command: click.Command, path: list[str]) -> list[CommandHelp]:
        title = " ".join(path)
        found = [CommandHelp(title, command.get_help(click.Context(command, info_name=title)))]
        for name in sorted(getattr(command, "commands", {}) or {}):
            found += walk(command.commands[name], [*path, name])  # type: ignore[attr-defined]
        return found

    return walk(cli, ["phase5site"])


def main() -> None:
    cli(prog_name="phase5site")
