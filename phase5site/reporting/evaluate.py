"""Read a run through the store's ``RunReader`` and evaluate it with the pure ``slo`` package."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from phase5site.columns import gate_sample
from phase5site.errors import StoreError, UsageError
from phase5site.reporting.health import phase_health
from phase5site.reporting.mix import MixFacts, mix_facts, phase_reconciliation
from phase5site.reporting.models import PhaseReport, PhaseThroughput, RunEvaluation
from phase5site.slo.evaluate import PhaseData, evaluate_phase
from phase5site.store import load_span_s
from phase5site.reporting.endpoints import EndpointStats, endpoint_reasons, endpoint_reports, request_thresholds
from phase5site.slo.models import (
    DECISION_INVALID,
    FAIL,
    GO,
    INVALID,
    NO_GO,
    NOT_EVALUATED,
    OutsideSamples,
)
from phase5site.runspec.models import SloSpec

SERVER_SOURCES = ("prometheus", "scrape", "import")
NOTABLE_EVENTS = ("warning", "breaker", "error", "signal")


@contextmanager
def opened_run(path: Path) -> Iterator[Path]:
    """A run folder for ``path``: the folder itself, or a temporary import of a legacy CSV.

    A ``metrics.csv`` is imported with the store's ``import_legacy`` (its sibling
    ``metadata.json`` is used when present) into a temporary results folder that is removed
    afterwards.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "run.duckdb").exists():
            raise StoreError(
                f"{path} is not a run folder (no run.duckdb inside)",
                hint="pass a folder under results/ or a legacy metrics.csv",
            )
        yield path
        return
    if path.suffix.lower() == ".csv" and path.is_file():
        try:
            from phase5site.store import import_legacy  # type: ignore[attr-defined]
        except ImportError:  # exported from the package later; the module has it now
            from phase5site.store.legacy import import_legacy

        metadata = path.with_name("metadata.json")
        with tempfile.TemporaryDirectory(prefix="phase5site-import-") as results_dir:
            run_dir = import_legacy(path, metadata if metadata.exists() else None, Path(results_dir))
            yield Path(run_dir)
        return
    raise UsageError(
        f"{path} is neither a run folder nor a metrics.csv file",
        hint="pass results/<run>/ or a path ending in metrics.csv",
    )


def as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.strip():
        try:
            loaded = json.loads(value)
        except ValueError:
            return {}
        return loaded if isinstance(loaded, dict) else {}
    return {}


def thresholds_of(run: Mapping[str, Any]) -> tuple[SloSpec, str]:
    """The SLO thresholds of a run: its spec's ``slo`` section, else the release defaults."""
    spec = as_dict(run.get("spec_redacted"))
    slo = spec.get("slo")
    if isinstance(slo, Mapping):
        try:
            return SloSpec.model_validate(dict(slo)), "run spec"
        except ValueError:
            pass
    return SloSpec(), "release criteria defaults (DESIGN.md)"


def _has_client(row: dict[str, Any]) -> bool:
    """Client counts, or the reason the sample gate refused them (kept, so the NA says why)."""
    reasons = row.get("na_reasons")
    return row.get("client_requests") is not None or (isinstance(reasons, dict) and "client_requests" in reasons
                                                       and "raw value" in str(reasons["client_requests"]))


def _client_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per sample number, preferring a row that carries client counts."""
    chosen: dict[int, dict[str, Any]] = {}
    for row in rows:
        num = int(row.get("sample_num") or 0)
        if num not in chosen or (chosen[num].get("client_requests") is None and row.get("client_requests") is not None):
            chosen[num] = row
    return [chosen[num] for num in sorted(chosen) if _has_client(chosen[num])]


def _throughput(phase: Mapping[str, Any]) -> PhaseThroughput:
    started, ended = phase.get("started_at"), phase.get("ended_at")
    duration = ended - started if started is not None and ended is not None and ended > started else None
    sent = phase.get("requests_sent")
    # over the span the load could send in, not the wall time that includes the last
    # sample's wait for a Prometheus scrape (store.endpoints.load_span_s)
    span = load_span_s(started, ended, phase.get("planned_duration_s"))
    achieved = sent / span if sent is not None and span else None
    return PhaseThroughput(
        offered_rate=phase.get("rate"),
        achieved_rate=achieved,
        requests_sent=sent,
        dropped=phase.get("dropped"),
        duration_s=duration,
        planned_duration_s=phase.get("planned_duration_s"),
    )


def mask_legacy_values(rows: list[dict[str, Any]]) -> list[str]:
    """NA out imported values that are not measurements; returns one note per masked column.

    The old observer wrote placeholders (e.g. success 0.99 in every row) when a metric was
    missing, and cumulative totals instead of per-sample counts; the store's importer
    detects both (``store.legacy_checks``). Judging on them would repeat the old defect.
    """
    from phase5site.store.legacy_checks import PLACEHOLDERS, cumulative_columns, placeholder_columns

    present = sorted({key for row in rows for key, value in row.items() if value is not None})
    notes: list[str] = []
    masks = [(c, f"placeholder of the old observer ({PLACEHOLDERS[c]:g} in every row), not a measurement")
             for c in placeholder_columns(rows, present)]
    masks += [(c, "never decreases: a cumulative total since process start, not a per-sample count")
              for c in cumulative_columns(rows, present)]
    for column, reason in masks:
        for row in rows:
            row[column] = None
            reasons = row.get("na_reasons") if isinstance(row.get("na_reasons"), dict) else {}
            row["na_reasons"] = {**reasons, column: reason}
        notes.append(f"{column} treated as NA: {reason}")
    return notes


def phase_data(reader: Any, phase: Mapping[str, Any], server_source: str | None, metrics_none: bool,
               moved_by: Mapping[str, str] | None = None) -> PhaseData:
    name = phase["name"]
    # Stored rows pass the sample gate again: a file written by an older version or another
    # tool may hold what the gate would have refused (+Inf, -5, a ratio of 2).
    all_rows = [gate_sample(row) for row in reader.samples(phase=name)]
    if server_source == "import":
        mask_legacy_values(all_rows)
    server_rows = [row for row in all_rows if server_source and row.get("source") == server_source]
    server_rows.sort(key=lambda row: row.get("sample_num") or 0)
    client_rows = _client_rows(all_rows)
    latencies, dropped_waits, outside = None, [], None
    if reader.request_count(phase=name) > 0:
        # pooled over the requests the samples cover (slo.evaluate), the rest counted apart
        windows = sample_windows(client_rows)
        latencies = reader.sent_latencies_ms(phase=name, windows=windows).tolist()
        dropped_waits = reader.dropped_waits_ms(phase=name, windows=windows)
        if windows is not None:
            found = reader.outside_windows(name, windows)
            outside = OutsideSamples(**found) if found["requests"] else None
    return PhaseData(
        phase=name,
        server_samples=server_rows,
        client_samples=client_rows,
        client_latencies_ms=latencies,
        client_dropped_waits_ms=dropped_waits,
        server_source=server_source,
        planned_samples=phase.get("samples"),
        metrics_source_none=metrics_none,
        moved_by=dict(moved_by or {}),
        stopped=stopped_course(phase, max(len(server_rows), len(client_rows))),
        outside=outside,
    )


def sample_windows(client_rows: list[dict[str, Any]]) -> list[tuple[float, float]] | None:
    """The client windows ``[(window_start, window_end), ...]`` of a phase's samples; None when
    a sample does not record its window (then the whole phase is pooled, as before)."""
    windows = [(row.get("window_start"), row.get("window_end")) for row in client_rows]
    if any(start is None or end is None for start, end in windows):
        return None
    return [(float(start), float(end)) for start, end in windows]  # type: ignore[arg-type]


def stopped_course(phase: Mapping[str, Any], n_samples: int) -> str | None:
    """How a phase fell short of its planned course, or None when it ran it.

    Example: an aborted baseline of 12 planned samples with 2 stored, 7 s of 36 s ->
    'ended aborted after 7 s of 36 s planned, 2 of 12 samples'.
    """
    status = phase.get("effective_status") or phase.get("status")
    if status in (None, "completed"):
        return None
    parts = [f"ended {status}"]
    started, ended, planned = phase.get("started_at"), phase.get("ended_at"), phase.get("planned_duration_s")
    if started is not None and ended is not None and planned:
        parts.append(f"after {max(0.0, ended - started):.0f} s of {planned:.0f} s planned")
    if phase.get("samples"):
        parts.append(f"{n_samples} of {phase['samples']} samples")
    return ", ".join(parts[:1]) + (" " + ", ".join(parts[1:]) if len(parts) > 1 else "")


def _missing(spec: Mapping[str, Any], phases: list[PhaseReport], status: str | None) -> list[str]:
    missing: list[str] = []
    recorded = {phase.phase for phase in phases}
    for planned in spec.get("phases") or []:
        if isinstance(planned, Mapping) and planned.get("enabled", True) and planned.get("name") not in recorded:
            missing.append(f"phase {planned.get('name')!r} was not run")
    for phase in phases:
        if phase.status not in (None, "completed"):
            missing.append(f"phase {phase.phase!r} ended {phase.status}")
        if phase.evaluation is not None and phase.planned_samples:
            got = phase.evaluation.n_samples
            if got < phase.planned_samples:
                missing.append(f"phase {phase.phase!r}: {phase.planned_samples - got} of {phase.planned_samples} samples missing")
    if status not in (None, "completed"):
        missing.append(f"run status is {status}")
    return missing


def evaluate_run(run_dir: Path, slo: SloSpec | None = None) -> RunEvaluation:
    """Evaluate every observed phase of a run: NO-GO if the run did not complete (incomplete
    evidence) or a phase is NO-GO, else INVALID if a phase is INVALID (its load generator
    limited the client latency), else GO.

    Example: a run with warmup (observe: false) and baseline (12 samples, all PASS) ->
    decision 'GO', warmup listed with evaluation None.
    """
    from phase5site.store import RunReader

    reader = RunReader(Path(run_dir))
    try:
        return _evaluate(reader, Path(run_dir), slo)
    finally:
        close = getattr(reader, "close", None)
        if close:
            close()


def _phase_reports(reader: Any, thresholds: SloSpec, server_source: str | None, metrics_none: bool,
                   facts: MixFacts) -> list[PhaseReport]:
    reports: list[PhaseReport] = []
    moved_by = facts.moved_by()
    for phase in sorted(reader.phases(), key=lambda p: p.get("ordinal") or 0):
        data = phase_data(reader, phase, server_source, metrics_none, moved_by)
        has_samples = bool(data.server_samples or data.client_samples)
        reports.append(
            PhaseReport(
                phase=phase["name"],
                status=phase.get("effective_status") or phase.get("status"),
                observed=bool(phase.get("observe", True)),
                planned_samples=phase.get("samples"),
                throughput=_throughput(phase),
                evaluation=evaluate_phase(data, thresholds) if has_samples else None,
                flags=as_dict(phase.get("flags")),
                generator=phase_health(reader, phase["name"], data.client_samples),
                reconciliation=phase_reconciliation(reader, phase["name"], data.server_samples, facts)
                if has_samples and server_source != "import" else None,
            )
        )
    return reports


def _phase_reasons(evaluated: list[PhaseReport], decision: str) -> list[str]:
    return [f"{r.phase}: {reason}" for r in evaluated if r.evaluation.decision == decision  # type: ignore[union-attr]
            for reason in r.evaluation.reasons]  # type: ignore[union-attr]


def run_decision(run: Mapping[str, Any], evaluated: list[PhaseReport],
                 endpoints: list[EndpointStats] | None = None) -> tuple[str, list[str]]:
    """The run's decision with its reasons, the first rule that applies:

    - NO-GO: a phase is NO-GO, a per-request threshold (``requests[].slo``) FAILs, or the
      circuit breaker aborted the run (it trips only on the service's own errors or fallback);
    - NOT-EVALUATED: the run was interrupted or failed, a phase is NOT-EVALUATED, or no phase
      has samples: there is no verdict to give, and it is never GO;
    - INVALID: a phase (or a per-request threshold) is INVALID: the generator limited it;
    - GO.
    """
    status = run.get("status")
    why = run.get("exit_reason") or "no reason recorded"
    reasons = _phase_reasons(evaluated, NO_GO) + endpoint_reasons(endpoints or [], FAIL)
    if status == "aborted":
        reasons.append(f"run aborted: {why} (the breaker stops the load only when the service suffers)")
    if reasons:
        return NO_GO, reasons
    unevaluated = _phase_reasons(evaluated, NOT_EVALUATED)
    if status not in (None, "completed"):
        # A cut-short run is incomplete evidence: it can inform, never release.
        unevaluated.append(f"run {status}: incomplete evidence ({why})")
    if not evaluated:
        unevaluated.append("no phase has samples: nothing to judge")
    if unevaluated:
        return NOT_EVALUATED, unevaluated
    invalid = _phase_reasons(evaluated, DECISION_INVALID) + endpoint_reasons(endpoints or [], INVALID)
    return (DECISION_INVALID, invalid) if invalid else (GO, [])


def _run_caveats(reader: Any, run: Mapping[str, Any], evaluated: list[PhaseReport]) -> list[str]:
    caveats = [f"{r.phase}: {caveat}" for r in evaluated for caveat in r.evaluation.caveats]  # type: ignore[union-attr]
    caveats += [f"{r.phase}: {r.reconciliation.caveat}" for r in evaluated
                if r.reconciliation is not None and r.reconciliation.caveat]
    if run.get("source") == "import":
        caveats.append(
            "imported legacy CSV: no client requests; placeholder values and cumulative totals "
            "of the old scripts are treated as NA"
        )
    caveats += [f"{e['kind']}: {e['message']}" for e in reader.events() if e.get("kind") in NOTABLE_EVENTS]
    return caveats


def _evaluate(reader: Any, run_dir: Path, slo: SloSpec | None) -> RunEvaluation:
    run = dict(reader.run())
    run["status"] = reader.effective_status()  # 'running' with no writer reads as interrupted
    spec = as_dict(run.get("spec_redacted"))
    thresholds, thresholds_from = thresholds_of(run)
    if slo is not None:
        thresholds, thresholds_from = slo, "given by the caller"
    primary = reader.primary_source()
    server_source = primary if primary in SERVER_SOURCES else None
    metrics_none = as_dict(spec.get("metrics")).get("source") == "none" or server_source is None
    facts = mix_facts(spec)
    reports = _phase_reports(reader, thresholds, server_source, metrics_none, facts)
    evaluated = [report for report in reports if report.evaluation is not None]
    endpoints = _endpoints(reader, spec, evaluated)
    decision, reasons = run_decision(run, evaluated, endpoints)
    return RunEvaluation(
        run_id=str(run.get("run_id") or run_dir.name),
        name=run.get("name"),
        run_dir=str(run_dir),
        status=run.get("status"),
        source=run.get("source"),
        started_at=run.get("started_at"),
        ended_at=run.get("ended_at"),
        exit_reason=run.get("exit_reason"),
        thresholds=thresholds.model_dump(),
        thresholds_from=thresholds_from,
        decision=decision,
        reasons=reasons,
        phases=reports,
        caveats=_run_caveats(reader, run, evaluated),
        missing=_missing(spec, reports, run.get("status")),
        warnings=[f"{r.phase}: {warning}" for r in reports if r.reconciliation is not None
                  for warning in r.reconciliation.warnings],
        synthetic=facts.synthetic,
        untimed=facts.untimed,
        endpoints=endpoints,
    )


def _client_invalid_reason(report: PhaseReport) -> str | None:
    """The phase's client-latency INVALID reason (generator-limited), else None."""
    for category in report.evaluation.categories if report.evaluation else []:
        for row in category.rows:
            if row.source == "client" and category.category.startswith("latency") and row.verdict == INVALID:
                return row.invalid_reason or "client latency INVALID: the load generator was limited"
    return None


def _endpoints(reader: Any, spec: Mapping[str, Any], evaluated: list[PhaseReport]) -> list[EndpointStats]:
    """Per-request figures; thresholds judged in the evaluated (observed) phases only."""
    judged = {report.phase: _client_invalid_reason(report) for report in evaluated}
    return endpoint_reports(reader.endpoint_stats(), request_thresholds(spec), judged)
