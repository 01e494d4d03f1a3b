"""Everything a run page needs, read once through the store's ``RunReader``.

Only aggregated data leaves DuckDB: the per-second table (``RunReader.per_second``), the
samples (one row per sample window), events and counts. Raw request rows are never loaded,
so a 5-million-request run costs the site the same as a small one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phase5site.columns import gate_sample
from phase5site.errors import SiteError
from phase5site.site.verdicts import Evaluator, RunVerdicts, evaluate

_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_SECRET_KEY = re.compile(r"bearer|token|authorization|password|passwd|secret|api[_-]?key|cookie", re.IGNORECASE)
REDACTED = "***"


def scrub_secrets(value: Any, key: str = "") -> Any:
    """Second line of defence behind the store's redaction: any string under a key that
    names a credential (bearer, token, password...) and any header listed in a request's
    ``secret_headers`` is replaced by ``***`` before a page sees it.

    Example: ``scrub_secrets({"auth": {"bearer": "eyJabc"}})`` -> ``{"auth": {"bearer": "***"}}``.
    """
    if isinstance(value, dict):
        secret_headers = {str(h).lower() for h in value.get("secret_headers", []) or []}
        scrubbed = {k: scrub_secrets(v, str(k)) for k, v in value.items()}
        if isinstance(scrubbed.get("headers"), dict):
            scrubbed["headers"] = {h: (REDACTED if str(h).lower() in secret_headers else v)
                                   for h, v in scrubbed["headers"].items()}
        return scrubbed
    if isinstance(value, list):
        return [scrub_secrets(item, key) for item in value]
    if isinstance(value, str) and value and _SECRET_KEY.search(key) and value != REDACTED:
        return REDACTED
    return value


def run_slug(run_dir: Path) -> str:
    """URL-safe folder name for a run's pages.

    Example: ``run_slug(Path("results/day1 <x>-20261127T033000Z"))`` -> ``'day1-x-20261127T033000Z'``.
    """
    slug = re.sub(r"-{2,}", "-", _SLUG_UNSAFE.sub("-", run_dir.name)).strip("-.")
    return slug or "run"


def _json_field(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


@dataclass(frozen=True)
class RunData:
    run_dir: Path
    slug: str
    run: dict[str, Any]  # the runs row; spec_redacted and environment parsed to dicts
    phases: list[dict[str, Any]]
    samples: list[dict[str, Any]]
    events: list[dict[str, Any]]
    per_second: dict[str, list[dict[str, Any]]]  # phase name -> per-second rows
    request_count: int
    outcome_counts: dict[str, int]
    primary_source: str | None
    verdicts: RunVerdicts
    # Per phase and request name (``RunReader.endpoint_stats``); empty without request rows.
    endpoints: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.run.get("name") or self.run_dir.name)

    @property
    def started_at(self) -> float | None:
        return self.run.get("started_at")

    @property
    def duration_s(self) -> float | None:
        start, end = self.run.get("started_at"), self.run.get("ended_at")
        return None if start is None or end is None else end - start

    @property
    def spec(self) -> dict[str, Any]:
        return self.run["spec_redacted"]

    def slo(self) -> dict[str, Any]:
        slo = self.spec.get("slo")
        return slo if isinstance(slo, dict) else {}


def _open_reader(run_dir: Path) -> Any:
    try:
        from phase5site.store import RunReader
    except ImportError as error:
        raise SiteError(
            "the run store (phase5site.store) is not installed", "install phase5site fully"
        ) from error
    return RunReader(run_dir)


def read_run(run_dir: Path, evaluator: Evaluator | None) -> RunData:
    """Read one run folder into ``RunData``; a damaged run raises ``SiteError`` naming it."""
    try:
        reader = _open_reader(run_dir)
        try:
            run = dict(reader.run())
            status = getattr(reader, "effective_status", None)
            if status is not None:
                run["status"] = status()  # a run still 'running' in a closed file was cut short
            phases = [dict(p) for p in reader.phases()]
            # One pass over the requests for every phase (a query per phase scanned them all
            # once per phase), then split by phase.
            per_second: dict[str, list[dict[str, Any]]] = {p["name"]: [] for p in phases}
            for row in reader.per_second():
                per_second.setdefault(str(row["phase"]), []).append(dict(row))
            data = RunData(
                run_dir=run_dir,
                slug=run_slug(run_dir),
                run=run,
                phases=phases,
                # The sample gate, as the evaluator applies it: no chart plots +Inf or -5 %.
                samples=[gate_sample(s) for s in reader.samples()],
                events=[dict(e) for e in reader.events()],
                per_second=per_second,
                request_count=int(reader.request_count()),
                outcome_counts=dict(reader.outcome_counts()),
                primary_source=reader.primary_source(),
                verdicts=RunVerdicts(None),
                endpoints=reader.endpoint_stats(),
            )
        finally:
            close = getattr(reader, "close", None)
            if close is not None:
                close()
    except SiteError:
        raise
    except Exception as error:
        raise SiteError(
            f"cannot read run {run_dir}: {error}", "check the run folder, or move it out of results/"
        ) from error
    run["spec_redacted"] = scrub_secrets(_json_field(run.get("spec_redacted")))
    run["environment"] = scrub_secrets(_json_field(run.get("environment")))
    verdicts = evaluate(run_dir, evaluator)
    return RunData(**{**data.__dict__, "run": run, "verdicts": verdicts})
