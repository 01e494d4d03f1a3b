"""Pure SLO arithmetic: verdicts, Go/No-Go, confidence bounds, recommendations and the SLO
documents (Markdown, OpenSLO, Prometheus rules). No IO and no clock: callers pass data in.
"""

from __future__ import annotations

from phase5site.slo.categories import CATEGORIES, CATEGORY_BY_NAME, Category
from phase5site.slo.evaluate import PhaseData, evaluate_phase, go_no_go, judge
from phase5site.slo.models import (
    CategoryVerdict,
    PhaseEvaluation,
    SourceRow,
    to_jsonable,
)
from phase5site.slo.stats import Interval, clopper_pearson_interval, quantile_rank_interval, wilson_interval

__all__ = [
    "CATEGORIES",
    "CATEGORY_BY_NAME",
    "Category",
    "CategoryVerdict",
    "Interval",
    "PhaseData",
    "PhaseEvaluation",
    "SourceRow",
    "clopper_pearson_interval",
    "evaluate_phase",
    "go_no_go",
    "judge",
    "quantile_rank_interval",
    "to_jsonable",
    "wilson_interval",
]
