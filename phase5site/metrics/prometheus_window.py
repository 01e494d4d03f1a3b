"""Prometheus mode: the PromQL of one window, and its answers → columns. Pure.

Every quantity of the profile is one instant query evaluated at the window end
(``profile.quantity_promql``: boundary difference with the ``increase`` fallback where a
counter reset; ``sum by (le)`` for histograms). Quantile columns are answered by Prometheus
itself: ``histogram_quantile(q, sum by (le) (Δ bucket))``.

An empty answer is ambiguous in PromQL (a declared counter with no series yet, or a family
the service does not export). ``Presence`` settles it the way scrape mode does: a family is
present when ``/api/v1/metadata`` lists it, or when it has series at both window ends;
present-but-empty counts 0, absent is NA.

Overrides (column → text): a bare series reference (``name`` or ``name{l="v"}``) replaces
the metric exactly as in scrape mode, so ``source: both`` measures the same thing twice;
any other text is a PromQL expression evaluated as is at the window end, with
``$__range`` replaced by the window length (e.g. ``sum(increase(x[$__range]))``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from phase5site.columns import SampleLimits
from phase5site.metrics.columns import BUCKET_COLUMNS, COUNT_COLUMNS, gated, measured_columns
from phase5site.metrics.counters import Measured
from phase5site.metrics.exposition import family_candidates
from phase5site.metrics.profile import (
    QUANTILE_COLUMNS,
    SINGLE_QUANTITY_COLUMNS,
    Profile,
    Quantity,
    duration_ms,
    quantile_promql,
    quantity_promql,
)
from phase5site.metrics.promapi import QueryAnswer, Vector, finite_sum
from phase5site.metrics.selectors import LabelMatcher, parse_series_ref, promql_selector

_SERIES_REF = re.compile(r"^\s*[A-Za-z_:][A-Za-z0-9_:]*\s*(\{.*\})?\s*$", re.DOTALL)


def is_series_ref(text: str) -> bool:
    """``fallback_total{reason="x"}`` is a series reference; ``sum(x)`` is PromQL."""
    return bool(_SERIES_REF.match(text))


@dataclass(frozen=True)
class Presence:
    """Which sample names exist at each window end, and which families are declared."""

    at_start: frozenset[str] = frozenset()
    at_end: frozenset[str] = frozenset()
    declared: frozenset[str] = frozenset()
    error: str | None = None

    def present(self, sample_name: str) -> bool:
        if any(name in self.declared for name in family_candidates(sample_name)):
            return True
        return sample_name in self.at_start and sample_name in self.at_end

    def bucket_series_exist(self, histogram: str) -> bool:
        name = f"{histogram}_bucket"
        return name in self.at_end or name in self.at_start or histogram in self.declared


@dataclass(frozen=True)
class WindowPlan:
    """What to ask Prometheus for one window."""

    profile: Profile
    selector: tuple[LabelMatcher, ...]
    window_s: float
    overrides: Mapping[str, str] = field(default_factory=dict)

    def effective_profile(self) -> Profile:
        profile = self.profile
        for column, text in self.overrides.items():
            if not is_series_ref(text):
                continue
            metric, matchers = parse_series_ref(text)
            name = column if column in COUNT_COLUMNS else (
                SINGLE_QUANTITY_COLUMNS.get(column) or BUCKET_COLUMNS.get(column))
            if name is not None:
                profile = profile.with_metric(name, metric, matchers)
        return profile

    def quantity_queries(self) -> dict[str, str]:
        """quantity name → PromQL; count columns overridden by PromQL text use that text."""
        queries = {
            q.name: quantity_promql(q, self.selector, self.window_s)
            for q in self.effective_profile().quantities
        }
        for column, text in self.overrides.items():
            if column in COUNT_COLUMNS and not is_series_ref(text):
                queries[column] = self.expand(text)
        return queries

    def quantile_queries(self) -> dict[str, str]:
        profile = self.effective_profile()
        return {
            column: quantile_promql(profile.quantity(histogram), q, self.selector, self.window_s)
            for column, (histogram, q) in QUANTILE_COLUMNS.items()
            if column not in self.overrides
        }

    def override_queries(self, presence: Presence) -> dict[str, str]:
        """Columns whose value is one override query (not a count feeding ratios)."""
        queries: dict[str, str] = {}
        for column, text in self.overrides.items():
            if column in (*COUNT_COLUMNS, *SINGLE_QUANTITY_COLUMNS, *BUCKET_COLUMNS):
                continue
            if not is_series_ref(text):
                queries[column] = self.expand(text)
                continue
            metric, matchers = parse_series_ref(text)
            if column in QUANTILE_COLUMNS and presence.bucket_series_exist(metric):
                histogram = Quantity(f"override:{column}", "histogram", metric, matchers)
                q = QUANTILE_COLUMNS[column][1]
                queries[column] = quantile_promql(histogram, q, self.selector, self.window_s)
            else:
                queries[column] = f"sum({promql_selector(metric, matchers + self.selector)})"
        return queries

    def sample_names(self) -> list[str]:
        """Sample names whose presence decides 0 versus NA (override histograms included)."""
        names = {q.sample_name for q in self.effective_profile().quantities}
        for column, text in self.overrides.items():
            if column in QUANTILE_COLUMNS and is_series_ref(text):
                names.add(f"{parse_series_ref(text)[0]}_bucket")
        return sorted(names)

    def presence_query(self) -> str:
        names = "|".join(self.sample_names())  # metric names hold no regex metacharacters
        matchers = (LabelMatcher("__name__", "=~", names), *self.selector)
        return f"count by (__name__) ({promql_selector('', matchers)})"

    def expand(self, text: str) -> str:
        return text.replace("$__range", duration_ms(self.window_s))


def read_quantity(quantity: Quantity, answer: QueryAnswer, presence: Presence) -> Measured:
    """One quantity's answer → Measured, deciding 0 versus NA for an empty vector."""
    if not answer.ok:
        return Measured.na(f"prometheus: {answer.error}")
    if not answer.vector:
        return _empty(quantity, presence)
    if quantity.kind == "histogram":
        return _buckets(answer.vector)
    value = finite_sum(answer.vector)
    if value is None:
        return Measured.na(f"prometheus returned NaN for {quantity.sample_name}")
    return Measured(value)


def _empty(quantity: Quantity, presence: Presence) -> Measured:
    name = quantity.sample_name
    if not presence.present(name):
        detail = f" (presence unknown: {presence.error})" if presence.error else ""
        return Measured.na(f"metric {name} absent in Prometheus for this window{detail}", absent=True)
    if quantity.kind == "counter":
        return Measured(0.0)
    if quantity.kind == "histogram":
        return Measured([])
    return Measured.na(f"metric {name} has no series matching the selector at window end")


def _buckets(vector: Vector) -> Measured:
    pooled: dict[float, float] = {}
    for labels, value in vector:
        try:
            bound = float(labels.get("le", ""))
        except ValueError:
            continue
        if not math.isnan(value):
            pooled[bound] = pooled.get(bound, 0.0) + value
    return Measured(sorted(pooled.items()))


def read_scalar(answer: QueryAnswer, what: str) -> Measured:
    """A quantile or override answer: exactly one finite value, else NA with the reason."""
    if not answer.ok:
        return Measured.na(f"prometheus: {answer.error}")
    if not answer.vector:
        return Measured.na(f"{what}: query returned no data")
    if len(answer.vector) > 1:
        return Measured.na(f"{what}: query returned {len(answer.vector)} series; aggregate it, e.g. sum(...)")
    value = answer.vector[0][1]
    if math.isnan(value):
        return Measured.na(f"{what}: no observations in window (Prometheus returned NaN)")
    return Measured(value)


def prometheus_window_columns(
    plan: WindowPlan,
    quantity_answers: Mapping[str, QueryAnswer],
    quantile_answers: Mapping[str, QueryAnswer],
    override_answers: Mapping[str, QueryAnswer],
    presence: Presence,
    *,
    count_cache_miss: bool,
    limits: SampleLimits = SampleLimits(),
) -> dict[str, Measured]:
    """Every SOURCE_COLUMNS value of the window from Prometheus' answers, each through the
    gate (``columns.gate_value``): Prometheus legitimately answers "+Inf" or NaN, and a
    broken exporter any number at all."""
    profile = plan.effective_profile()
    quantities = gated({
        q.name: read_quantity(q, quantity_answers[q.name], presence) for q in profile.quantities
    } | profile.not_exported(), limits, name_input=True)
    out = measured_columns(quantities, plan.window_s, count_cache_miss=count_cache_miss, limits=limits)
    for column, answer in quantile_answers.items():
        # Without bucket deltas (NA, or no observations) measured_columns already gave the
        # reason; otherwise Prometheus' own histogram_quantile is the value.
        if quantities[QUANTILE_COLUMNS[column][0]].value:
            out[column] = read_scalar(answer, column)
    for column, answer in override_answers.items():
        out[column] = read_scalar(answer, f"override of {column}")
    return gated(out, limits)


# --- several targets, each between its own edge scrapes (metrics.scrape_edges) -----------


@dataclass(frozen=True)
class TargetWindow:
    """One target's answers for a window: its plan (selector narrowed to the target, length
    = the interval between its edge scrapes), presence and quantity answers at its edges."""

    plan: WindowPlan
    presence: Presence
    quantity_answers: Mapping[str, QueryAnswer]

    def quantities(self, limits: SampleLimits, *, with_expression_overrides: bool = True) -> dict[str, Measured]:
        """The target's quantities. A count column overridden by a PromQL expression is the
        user's text, not narrowed to a target: only one target may carry it, or the sum
        over targets would count it once per target."""
        profile = self.plan.effective_profile()
        out = {q.name: read_quantity(q, self.quantity_answers[q.name], self.presence)
               for q in profile.quantities} | profile.not_exported()
        for column, text in self.plan.overrides.items():
            if column in COUNT_COLUMNS and not is_series_ref(text) and not with_expression_overrides:
                out[column] = Measured.na("counted with the first target", absent=True)
        return gated(out, limits, name_input=True)


def combine_measured(parts: list[Measured]) -> Measured:
    """One quantity over several targets, as PromQL's ``sum`` would see it: the targets that
    export it add up (bucket lists per ``le``); an absent family counts only where no target
    has it; any other NA (an error, an unreadable value) makes the sum NA.

    >>> combine_measured([Measured(3.0), Measured.na("absent", absent=True), Measured(4.0)]).value
    7.0
    >>> combine_measured([Measured([(0.1, 2.0)]), Measured([(0.1, 1.0), (math.inf, 5.0)])]).value
    [(0.1, 3.0), (inf, 5.0)]
    """
    failed = [part for part in parts if part.value is None and not part.absent]
    if failed:
        return failed[0]
    present = [part.value for part in parts if part.value is not None]
    if not present:
        return parts[0]
    if isinstance(present[0], list):
        pooled: dict[float, float] = {}
        for buckets in present:
            for bound, count in buckets:  # type: ignore[union-attr]
                pooled[bound] = pooled.get(bound, 0.0) + count
        return Measured(sorted(pooled.items()))
    return Measured(float(sum(float(value) for value in present)))  # type: ignore[arg-type]


def _rate_over_targets(per_target: list[dict[str, Measured]], windows_s: list[float], name: str,
                       factor: float) -> Measured:
    """Σ over targets of (target's increase / its own interval) x factor."""
    rate = 0.0
    for quantities, window_s in zip(per_target, windows_s):
        part = quantities[name]
        if part.value is None:
            if part.absent:
                continue
            return part
        rate += float(part.value) / window_s * factor  # type: ignore[arg-type]
    return Measured(rate)


def targets_window_columns(
    targets: list[TargetWindow],
    quantile_answers: Mapping[str, QueryAnswer],
    override_answers: Mapping[str, QueryAnswer],
    *,
    count_cache_miss: bool,
    limits: SampleLimits = SampleLimits(),
) -> dict[str, Measured]:
    """Every SOURCE_COLUMNS value of the window over one or more targets.

    One target: exactly ``prometheus_window_columns`` over its own edges. Several: each
    quantity is summed over the targets (``combine_measured``), ratios and quantiles are
    taken over the sums (quantiles by ``quantiles.histogram_quantile`` over the pooled bucket
    increases), and rates add each target's increase divided by its own interval.
    """
    if len(targets) == 1:
        only = targets[0]
        return prometheus_window_columns(only.plan, only.quantity_answers, quantile_answers, override_answers,
                                         only.presence, count_cache_miss=count_cache_miss, limits=limits)
    per_target = [target.quantities(limits, with_expression_overrides=index == 0)
                  for index, target in enumerate(targets)]
    windows_s = [target.plan.window_s for target in targets]
    combined = {name: combine_measured([q[name] for q in per_target]) for name in per_target[0]}
    out = measured_columns(combined, sum(windows_s) / len(windows_s), count_cache_miss=count_cache_miss,
                           limits=limits)
    out["request_rate"] = _rate_over_targets(per_target, windows_s, "server_requests", 1.0)
    out["cpu_percent"] = _rate_over_targets(per_target, windows_s, "cpu_seconds", 100.0)
    for column, answer in override_answers.items():
        out[column] = read_scalar(answer, f"override of {column}")
    return gated(out, limits)
