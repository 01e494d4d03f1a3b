"""IO for ``slo recommend`` and ``slo finalize``: read runs and drafts, write the documents.

Default location: ``results/slo/`` (git-ignored like every generated file): the draft is
``results/slo/slo-draft.yaml``; finalize writes ``SLO_v<version>.md``, ``openslo.yaml`` and
``prometheus-rules.yml`` there unless ``--out-dir`` says otherwise.
"""

from __future__ import annotations

import io
import json
import re
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from phase5site.errors import Phase5Error, UsageError
from phase5site.reporting.evaluate import SERVER_SOURCES, as_dict, opened_run, phase_data
from phase5site.slo.documents.markdown import slo_markdown
from phase5site.slo.documents.openslo import openslo_documents, validate_openslo
from phase5site.slo.documents.prometheus import prometheus_rules
from phase5site.slo.draft import draft_document, targets_from_draft, targets_from_release_criteria
from phase5site.slo.recommend import DEFAULT_HEADROOM, Draft, recommend
from phase5site.runspec.models import SloSpec

DEFAULT_SLO_DIR = Path("results") / "slo"
DRAFT_NAME = "slo-draft.yaml"
OPENSLO_NAME = "openslo.yaml"
RULES_NAME = "prometheus-rules.yml"
_VERSION = re.compile(r"^\d+\.\d+\.\d+([-+.][0-9A-Za-z.-]+)?$")
DRAFT_HEADER = (
    "# phase5site SLO draft (YAML). Units: ratios 0-1, latency ms, memory MiB; null = NA.\n"
    "# Review proposed_target values (edit them if needed), then run:\n"
    "#   phase5site slo finalize --version X.Y.Z --from this-file\n"
)


def _yaml() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[attr-defined]
    yaml.width = 4096
    return yaml


def dump_yaml(data: Any) -> str:
    stream = io.StringIO()
    _yaml().dump(data, stream)
    return stream.getvalue()


def dump_yaml_all(documents: list[Any]) -> str:
    stream = io.StringIO()
    _yaml().dump_all(documents, stream)
    return stream.getvalue()


@dataclass(frozen=True)
class RecommendResult:
    path: Path
    draft: Draft
    document: dict[str, Any]


def _policies(policies: dict[str, Any]) -> SloSpec:
    """The release criteria with the runs' category policies (required, justification); a
    policy that no longer validates is left out rather than failing the recommendation."""
    valid = {}
    for name, policy in policies.items():
        try:
            valid[name] = SloSpec.model_validate({"categories": {name: policy}}).categories[name]
        except ValueError:
            continue
    return SloSpec(categories=valid)


def _span(data: Any) -> tuple[float | None, float | None]:
    """First and last instant of the samples a draft uses (window start / end), so the
    document says when the evidence was measured, not when the phase began or ended."""
    starts, ends = [], []
    for row in [*data.server_samples, *data.client_samples]:
        end, length, start = row.get("window_end"), row.get("window_s"), row.get("window_start")
        if start is None and end is not None and length:
            start = end - length
        starts += [start] if start is not None else []
        ends += [end] if end is not None else []
    return min(starts, default=None), max(ends, default=None)


def recommend_runs(paths: list[Path], *, out: Path | None = None, headroom: float = DEFAULT_HEADROOM,
                   allow: list[str] | tuple[str, ...] = ()) -> RecommendResult:
    """Pool every observed phase of the given runs (folders or legacy CSVs) into a draft.

    Refuses (``EvidenceRefused``, naming each reason) a run that is NO-GO, aborted,
    interrupted, failed, generator-limited or shorter than planned, unless ``allow`` names
    the reason (``reporting.evidence_gate``); the draft then lists what was allowed."""
    from phase5site.reporting.evaluate import evaluate_run
    from phase5site.reporting.evidence_gate import check_allow, gate
    from phase5site.store import RunReader

    if not paths:
        raise UsageError("give at least one run folder", hint="phase5site slo recommend results/<run>/")
    if headroom < 0:
        raise UsageError(f"--headroom must be >= 0 (got {headroom!r})")
    check_allow(allow)
    phases, selectors, starts, ends, evaluations = [], [], [], [], []
    policies: dict[str, Any] = {}  # slo.categories of the runs' specs (the first run naming one wins)
    with ExitStack() as stack:
        for path in paths:
            run_dir = stack.enter_context(opened_run(Path(path)))
            evaluations.append(evaluate_run(run_dir))
            with RunReader(run_dir) as reader:
                run = reader.run()
                spec = as_dict(run.get("spec_redacted"))
                selectors.append(str(as_dict(spec.get("metrics")).get("selector") or ""))
                for name, policy in as_dict(as_dict(spec.get("slo")).get("categories")).items():
                    policies.setdefault(name, policy)
                primary = reader.primary_source()
                server_source = primary if primary in SERVER_SOURCES else None
                for phase in reader.phases():
                    data = phase_data(reader, phase, server_source, server_source is None)
                    if data.server_samples or data.client_samples:
                        phases.append((f"{run.get('run_id')} / {phase['name']}", data))
                        first, last = _span(data)
                        starts.append(first if first is not None else phase.get("started_at"))
                        ends.append(last if last is not None else phase.get("ended_at"))
    if not phases:
        raise Phase5Error("no phase of the given runs has samples: nothing to recommend from",
                          hint="run a baseline with samples first")
    allowed = gate(evaluations, allow)
    draft = recommend(phases, slo=_policies(policies), headroom=headroom)
    draft.notes.extend(f"evidence allowed with --allow {r.reason}: {r.text()}" for r in allowed)
    if len(set(selectors)) > 1:
        draft.notes.append(f"runs used different selectors {sorted(set(selectors))}; the first is used")
    document = draft_document(
        draft, service="metasheet", selector=selectors[0],
        first_start=min((s for s in starts if s is not None), default=None),
        last_end=max((e for e in ends if e is not None), default=None),
        allowed=[{"reason": r.reason, "run": r.run_id, "detail": r.detail} for r in allowed],
    )
    target = out or DEFAULT_SLO_DIR / DRAFT_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(DRAFT_HEADER + dump_yaml(document), encoding="utf-8")
    return RecommendResult(target, draft, document)


@dataclass(frozen=True)
class FinalizeResult:
    markdown_path: Path
    openslo_path: Path
    rules_path: Path
    draft_path: Path | None
    warnings: list[str] = field(default_factory=list)


def load_openslo_schemas(schema_dir: Path) -> list[dict[str, Any]]:
    files = sorted(Path(schema_dir).rglob("*.json"))
    if not files:
        raise UsageError(f"no OpenSLO schema files (*.json) under {schema_dir}", hint="point --openslo-schema at openslo-v1/")
    return [json.loads(f.read_text(encoding="utf-8")) for f in files]


def finalize(
    version: str, *, draft_path: Path | None = None, out_dir: Path | None = None, openslo_schema: Path | None = None
) -> FinalizeResult:
    """Write SLO_v<version>.md, openslo.yaml and prometheus-rules.yml from a draft.

    Without ``draft_path``, ``<out_dir>/slo-draft.yaml`` is used when it exists, else the
    release criteria. With ``openslo_schema``, the OpenSLO documents are validated first.
    """
    if not _VERSION.match(version):
        raise UsageError(f"--version {version!r} is not a release version", hint="use MAJOR.MINOR.PATCH, e.g. 2.5.0")
    out_dir = out_dir or DEFAULT_SLO_DIR
    if draft_path is None and (out_dir / DRAFT_NAME).exists():
        draft_path = out_dir / DRAFT_NAME
    if draft_path is not None:
        if not draft_path.is_file():
            raise UsageError(f"draft {draft_path} does not exist", hint="create it with `phase5site slo recommend`")
        try:
            document = _yaml().load(draft_path.read_text(encoding="utf-8"))
        except Exception as error:  # ruamel raises many types for bad YAML
            raise UsageError(f"draft {draft_path} is not valid YAML: {error}") from error
        if not isinstance(document, dict):
            raise UsageError(f"draft {draft_path} is not a mapping")
        targets = targets_from_draft(document, version)
    else:
        targets = targets_from_release_criteria(version)
    rules, warnings = prometheus_rules(targets)
    documents = openslo_documents(targets)
    if openslo_schema is not None:
        problems = validate_openslo(documents, load_openslo_schemas(openslo_schema))
        if problems:
            raise Phase5Error("generated OpenSLO documents do not validate:\n" + "\n".join(problems))
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown_path = out_dir / f"SLO_v{version}.md"
    markdown_path.write_text(slo_markdown(targets, warnings), encoding="utf-8")
    openslo_path = out_dir / OPENSLO_NAME
    openslo_path.write_text(dump_yaml_all(documents), encoding="utf-8")
    rules_path = out_dir / RULES_NAME
    rules_path.write_text(f"# SLO {targets.service} {version}: recording rules and burn-rate alerts (phase5site)\n" + dump_yaml(rules), encoding="utf-8")
    return FinalizeResult(markdown_path, openslo_path, rules_path, draft_path, warnings)
