"""OpenSLO v1 documents for the SLOs (pure) and their validation against the schema.

One ``Service``, then per category an ``SLI`` (ratioMetric with good or bad over total
for ratio SLIs, Prometheus counters; thresholdMetric with a ``histogram_quantile`` query
for latency) and an ``SLO`` referencing it, rolling 30 days, Occurrences budgeting.
Latency SLOs count evaluations of the 5-minute percentile: the objective is that at least
``LATENCY_SLICE_TARGET`` of them are at or under the threshold. Memory is a release
criterion on a gauge, not an error-budget SLO, so it gets no OpenSLO document.

Validation (``validate_openslo``) takes the schema documents as dicts (the caller reads
them) and resolves their ``$ref`` URLs through a ``referencing.Registry``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from phase5site.slo.documents.prometheus import LATENCY_SLICE_TARGET, latency_quantile_expr, metric
from phase5site.slo.draft import Objective, SloTargets

API_VERSION = "openslo/v1"
ROOT_SCHEMA_ID = "https://openslo.com/schemas/v1/openslo.schema.json"
TIME_WINDOW = "30d"


def _name(targets: SloTargets, category: str) -> str:
    return f"{targets.service}-{category.replace('_', '-')}".lower()


def _source(query: str) -> dict[str, Any]:
    return {"metricSource": {"type": "Prometheus", "spec": {"query": query}}}


def _sum0(series: str) -> str:
    # a + b is empty in PromQL when either side has no series (a labelled counter has none
    # before its first increment), so each term of a sum defaults to 0.
    return f"(sum({series}) or vector(0))"


def _ratio_indicator(category: str, selector: str) -> dict[str, Any] | None:
    requests = "http_requests_total"
    ratios: dict[str, tuple[str, str, str]] = {
        "success_rate": ("good", metric(requests, selector, 'status=~"2..|3.."'), metric(requests, selector)),
        "error_rate": ("bad", metric(requests, selector, 'status=~"4..|5.."'), metric(requests, selector)),
        "effective_fallback": ("bad", metric("metasheet_fallback_effective_total", selector), metric(requests, selector)),
        "plugin_reload_success": (
            "good",
            metric("metasheet_plugin_reload_total", selector, 'result="success"'),
            metric("metasheet_plugin_reload_total", selector),
        ),
    }
    if category in ratios:
        kind, part, total = ratios[category]
        return {"ratioMetric": {"counter": True, kind: _source(f"sum({part})"), "total": _source(f"sum({total})")}}
    if category == "cache_hit_rate":
        hits, misses = metric("cache_hits_total", selector), metric("cache_miss_total", selector)
        return {"ratioMetric": {"counter": True, "good": _source(f"sum({hits})"), "total": _source(f"{_sum0(hits)} + {_sum0(misses)}")}}
    if category == "snapshot_success":
        create, restore = "metasheet_snapshot_create_total", "metasheet_snapshot_restore_total"
        success = 'result="success"'
        good = f"{_sum0(metric(create, selector, success))} + {_sum0(metric(restore, selector, success))}"
        total = f"{_sum0(metric(create, selector))} + {_sum0(metric(restore, selector))}"
        return {"ratioMetric": {"counter": True, "good": _source(good), "total": _source(total)}}
    return None


def _objective(objective: Objective) -> dict[str, Any]:
    name = objective.category
    if name.startswith("latency"):
        return {
            "displayName": f"{objective.title} <= {objective.target:g} ms in {LATENCY_SLICE_TARGET * 100:g}% of 5-minute evaluations",
            "op": "lte",
            "value": objective.target / 1000.0,
            "target": LATENCY_SLICE_TARGET,
        }
    if name in ("error_rate", "effective_fallback"):
        return {"displayName": f"{objective.title} <= {objective.target * 100:.1f}%", "target": round(1.0 - objective.target, 6)}
    return {"displayName": f"{objective.title} >= {objective.target * 100:.1f}%", "target": objective.target}


def openslo_documents(targets: SloTargets) -> list[dict[str, Any]]:
    """Service, SLI and SLO documents (memory excluded: not an error-budget SLO)."""
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": API_VERSION,
            "kind": "Service",
            "metadata": {"name": targets.service, "displayName": f"{targets.service} {targets.version}"},
            "spec": {"description": f"SLOs of {targets.service} release {targets.version}, set from a production baseline by phase5site."},
        }
    ]
    for objective in targets.objectives:
        category = objective.category
        if category == "memory":
            continue
        if category.startswith("latency"):
            quantile = 0.95 if category.endswith("95") else 0.99
            indicator: dict[str, Any] | None = {"thresholdMetric": _source(latency_quantile_expr(quantile, targets.selector, "5m"))}
        else:
            indicator = _ratio_indicator(category, targets.selector)
        if indicator is None:
            continue
        sli_name = f"{_name(targets, category)}-sli"
        documents.append(
            {
                "apiVersion": API_VERSION,
                "kind": "SLI",
                "metadata": {"name": sli_name, "displayName": objective.title},
                "spec": {"description": f"{objective.title} of {targets.service}", **indicator},
            }
        )
        documents.append(
            {
                "apiVersion": API_VERSION,
                "kind": "SLO",
                "metadata": {
                    "name": _name(targets, category),
                    "displayName": objective.title,
                    "labels": {"release": targets.version, "mandatory": "yes" if objective.mandatory else "no"},
                },
                "spec": {
                    "description": f"{objective.title}, release {targets.version}",
                    "service": targets.service,
                    "indicatorRef": sli_name,
                    "timeWindow": [{"duration": TIME_WINDOW, "isRolling": True}],
                    "budgetingMethod": "Occurrences",
                    "objectives": [_objective(objective)],
                },
            }
        )
    return documents


def schema_registry(schemas: Iterable[Mapping[str, Any]]) -> Registry:
    """A registry of the OpenSLO schema documents keyed by their ``$id``."""
    resources = [(schema["$id"], Resource.from_contents(dict(schema), default_specification=DRAFT7)) for schema in schemas]
    return Registry().with_resources(resources)


def validate_openslo(documents: Iterable[Mapping[str, Any]], schemas: Iterable[Mapping[str, Any]]) -> list[str]:
    """Schema problems of every document (empty list: all valid).

    ``schemas`` are the root schema and its parts as loaded JSON.
    """
    schemas = list(schemas)
    registry = schema_registry(schemas)
    root = next((s for s in schemas if s.get("$id") == ROOT_SCHEMA_ID), None)
    if root is None:
        return [f"the OpenSLO root schema {ROOT_SCHEMA_ID} is not among the schemas given"]
    validator = Draft7Validator(dict(root), registry=registry)
    problems = []
    for index, document in enumerate(documents):
        name = document.get("metadata", {}).get("name", "?")
        for error in sorted(validator.iter_errors(dict(document)), key=lambda e: list(e.path)):
            location = "/".join(str(p) for p in error.path) or "(document)"
            problems.append(f"document {index + 1} ({document.get('kind')} {name}): {location}: {error.message}")
    return problems
