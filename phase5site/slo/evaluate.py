"""Evaluate one phase into a verdict table and a Go/No-Go decision (pure: data in, data out).

Rules (DESIGN.md "SLO verdicts", CSV_V3.md "Pooling"):
- ratios are pooled: sum of good / sum of total over the samples;
- server latency percentiles come from the pooled histogram (bucket deltas summed per le),
  client ones from all requests of the phase (nearest rank); sample percentiles are never
  averaged;
- memory is the mean of the per-sample RSS values, the maximum shown beside it;
- a category is judged on every source that has a value (server and client for success,
  error and latency): FAIL if any source fails, PASS if one has a value and none fails,
  NA if none has a value;
- GO needs every mandatory category PASS (NA in a mandatory one is NO-GO, "insufficient
  data"); optional categories must not FAIL (NA is neutral);
- dropped requests count: in the client ratios as failures and errors, in client
  percentiles as censored values ranked above every sent request; a percentile that falls
  on one is a lower bound, and a lower bound never PASSes;
- a phase with a generator-limited window (``slo.generator``) has INVALID client latency:
  the decision is then NO-GO if anything FAILs on valid evidence, else INVALID, never GO;
- a category whose counters were measured and never moved over the phase is NOT-EXERCISED
  (``slo.exercise``); a *required* category (the spec's ``slo.categories``, default: the
  mandatory ones) that is NA or NOT-EXERCISED makes the phase NO-GO, naming what would
  exercise it; one the spec does not require (with a justification) does not block GO;
- a phase that did not run its planned course (``PhaseData.stopped``) is NOT-EVALUATED, its
  figures shown as measured so far, unless a category FAILs in them (NO-GO: a failure seen
  is a failure; an NA there only says the phase was cut short); a phase in which no category
  has a value to judge (every one NA or not exercised: e.g. a legacy import of placeholders)
  is NOT-EVALUATED too, never NO-GO on the service's account;
- client percentiles pool the requests of the sample windows, the same requests the sample
  figures cover, so the pooled value never exceeds the worst sample's (nearest rank: at most
  5 % of each window lies above its P95, so at most 5 % of their union does); requests
  intended outside every window are counted apart (``PhaseData.outside``).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from phase5site import quantiles
from phase5site.columns import gate_sample
from phase5site.slo.categories import CATEGORIES, Category, RatioReader, client_intended, number, server_requests
from phase5site.slo.evidence import (
    category_significance,
    coverage_note,
    enough_evidence,
    evidence_columns,
    explained,
    measured_in,
    significance,
)
from phase5site.slo.exercise import exercise_of, mark_not_exercised
from phase5site.slo.generator import invalid_reason, limited_windows
from phase5site.slo.models import (
    DECISION_INVALID,
    FAIL,
    GO,
    INSUFFICIENT_DATA,
    INVALID,
    NA,
    NO_GO,
    NOT_EXERCISED,
    NOT_EXERCISED_TEXT,
    NOT_EVALUATED,
    PASS,
    CategoryVerdict,
    OutsideSamples,
    PhaseEvaluation,
    Source,
    SourceRow,
    Verdict,
)
from phase5site.slo.stats import Interval, clopper_pearson_interval, quantile_rank_interval, summarize, wilson_interval
from phase5site.runspec.models import SloSpec

Row = Mapping[str, Any]
FEW_SAMPLES = 12


@dataclass(frozen=True)
class PhaseData:
    """What a phase evaluation needs, read by the caller (reporting) from the store.

    ``server_samples``: sample rows of one server source (``[]`` when metrics source is
    none); ``client_samples``: rows carrying the client columns; ``client_latencies_ms``:
    sorted latencies of every sent request of the phase's sample windows, the requests the
    samples cover (``None`` when not available, e.g. an imported CSV);
    ``client_dropped_waits_ms``: the wait of each dropped request of those windows (None
    where unknown), ranked above the sent ones (``quantiles.censored_ranking``);
    ``planned_samples``: what the spec asked for (for caveats); ``moved_by``: per category,
    what would exercise it (for the NOT-EXERCISED reason).
    """

    phase: str
    server_samples: list[Row] = field(default_factory=list)
    client_samples: list[Row] = field(default_factory=list)
    client_latencies_ms: Sequence[float] | None = None
    client_dropped_waits_ms: Sequence[float | None] = ()
    server_source: str | None = None
    planned_samples: int | None = None
    metrics_source_none: bool = False
    # category -> what a load must send to move its counters (the metrics profile's words)
    moved_by: Mapping[str, str] = field(default_factory=dict)
    # how the phase fell short of its planned course ("ended aborted after 2 of 12 samples");
    # None when it ran its course
    stopped: str | None = None
    # the phase's requests intended outside every sample window (not in the pooled figures)
    outside: OutsideSamples | None = None


def judge(value: float | None, threshold: float, comparison: str) -> Verdict:
    """PASS / FAIL / NA of one value. Example: ``judge(0.985, 0.98, '>=') == 'PASS'``."""
    if value is None:
        return NA
    ok = value >= threshold if comparison == ">=" else value <= threshold
    return PASS if ok else FAIL


def _sample_num(row: Row, index: int) -> int:
    value = number(row, "sample_num")
    return int(value) if value is not None else index + 1


def _worst(values: list[tuple[int, float | None]], comparison: str) -> tuple[int | None, float | None]:
    valid = [(num, value) for num, value in values if value is not None]
    if not valid:
        return None, None
    pick = min if comparison == ">=" else max
    return pick(valid, key=lambda item: item[1])


def _na_reason(rows: Sequence[Row], columns: tuple[str, ...], default: str) -> str:
    """The most frequent stored NA reason for the columns, else ``default``."""
    reasons: Counter[str] = Counter()
    for row in rows:
        raw = row.get("na_reasons")
        if isinstance(raw, str) and raw.strip():
            try:
                raw = json.loads(raw)
            except ValueError:
                raw = None
        if isinstance(raw, dict):
            for column in columns:
                if raw.get(column):
                    reasons[f"{column}: {raw[column]}"] += 1
    return reasons.most_common(1)[0][0] if reasons else default


def _base_row(category: Category, source: Source, slo: SloSpec, rows: Sequence[Row]) -> dict[str, Any]:
    return {
        "category": category.name,
        "source": source,
        "unit": category.unit,
        "threshold": category.threshold(slo),
        "comparison": category.comparison,
        "n_samples": len(rows),
    }


def _with_summary(base: dict[str, Any], per_sample: list[tuple[int, float | None]], comparison: str) -> dict[str, Any]:
    summary = summarize([value for _, value in per_sample])
    worst_num, worst_value = _worst(per_sample, comparison)
    return {
        **base,
        "n_valid": summary.n_valid,
        "sample_min": summary.minimum,
        "sample_max": summary.maximum,
        "sample_mean": summary.mean,
        "sample_stddev": summary.stddev,
        "worst_sample": worst_num,
        "worst_value": worst_value,
    }


def ratio_row(category: Category, reader: RatioReader, source: Source, rows: Sequence[Row], slo: SloSpec) -> SourceRow:
    """Pooled ratio over samples with per-sample stats and Wilson / Clopper-Pearson intervals.

    Example: samples (good, total) = (99, 100) and (900, 1000): pooled 999/1100 = 0.9082,
    while the mean of the ratios would be (0.99 + 0.9)/2 = 0.945.
    """
    base = _base_row(category, source, slo, rows)
    per_sample: list[tuple[int, float | None]] = []
    good_sum = total_sum = 0.0
    counted = 0
    for index, row in enumerate(rows):
        counts = reader.counts(row)
        value: float | None = None
        if counts is not None and counts[1] > 0:
            good_sum += counts[0]
            total_sum += counts[1]
            counted += 1
            value = counts[0] / counts[1]
        elif counts is None and reader.ratio_column:
            value = number(row, reader.ratio_column)
        per_sample.append((_sample_num(row, index), value))
    fields = _with_summary(base, per_sample, category.comparison)
    notes: list[str] = []
    if source == "server" and any(server_requests(row)[1] for row in rows):
        notes.append("HTTP request counts reconstructed as request_rate x window_s (no stored counts)")
    if counted == 0 or total_sum <= 0:
        reason = _na_reason(rows, reader.columns, _empty_reason(category, source, rows, counted))
        return SourceRow(**fields, pooled=None, verdict=NA, na_reason=reason, notes=notes)
    if counted < len([v for _, v in per_sample if v is not None]):
        notes.append(f"only {counted} of {len(rows)} samples stored counts; the others are not pooled")
    pooled = good_sum / total_sum
    good_int, total_int = round(good_sum), round(total_sum)
    binomial = 0 <= good_int <= total_int  # events per request (fallback) may exceed 1: no proportion
    if not binomial:
        notes.append(f"{good_sum:g} events over {total_sum:g} requests is not a proportion: no binomial interval")
    return SourceRow(
        **fields,
        pooled=pooled,
        verdict=judge(pooled, category.threshold(slo), category.comparison),
        good=good_sum,
        total=total_sum,
        interval=wilson_interval(good_int, total_int) if binomial else None,
        exact_interval=clopper_pearson_interval(good_int, total_int) if binomial else None,
        notes=notes,
    )


def _empty_reason(category: Category, source: Source, rows: Sequence[Row], counted: int) -> str:
    if not rows:
        return "no samples" if source == "client" else "no server samples (metrics source none or unreachable)"
    if counted:
        return "denominator is zero over the phase (no events counted)"
    return "counts not measured in any sample"


Denominator = Callable[[Row], "float | None"]


def _ratio_breakdown(
    rows: Sequence[Row], parts: dict[str, tuple[tuple[str, ...], str | Denominator | None]],
    ratio_columns: Mapping[str, str] | None = None,
) -> dict[str, float | None]:
    """Pooled part ratios, e.g. {'4xx': sum(server_4xx)/sum(server_requests)}.

    A part's denominator is a column, a function of the row, or None for the server's
    request count. Where the counts were not stored (legacy CSV), the part is ``ratio
    column x requests`` with requests reconstructed as request_rate x window_s, as for the
    category itself.
    """
    result: dict[str, float | None] = {}
    for label, (numerators, denominator) in parts.items():
        num = den = 0.0
        ratio_column = (ratio_columns or {}).get(label)
        for row in rows:
            top: float | None = sum(number(row, column) or 0.0 for column in numerators)
            if denominator is None:
                bottom, reconstructed = server_requests(row)
            elif callable(denominator):
                bottom, reconstructed = denominator(row), False
            else:
                bottom, reconstructed = number(row, denominator), False
            if not all(number(row, column) is not None for column in numerators):
                ratio = number(row, ratio_column) if ratio_column and reconstructed else None
                top = None if ratio is None or bottom is None else ratio * bottom
            if bottom and top is not None:
                num += top
                den += bottom
        result[label] = num / den if den > 0 else None
    return result


def _error_breakdown(source: Source, rows: Sequence[Row]) -> dict[str, float | None]:
    if source == "server":
        return _ratio_breakdown(
            rows,
            {"4xx": (("server_4xx",), None), "5xx": (("server_5xx",), None)},
            {"4xx": "error_rate_4xx", "5xx": "error_rate_5xx"},
        )
    return _ratio_breakdown(
        rows,
        {
            "4xx": (("client_4xx",), client_intended),
            "5xx": (("client_5xx",), client_intended),
            "transport": (("client_transport_errors",), client_intended),
            "dropped": (("dropped",), client_intended),
        },
    )


def _fallback_breakdown(rows: Sequence[Row]) -> dict[str, float | None]:
    return _ratio_breakdown(
        rows,
        {
            "raw": (("raw_fallback_total",), None),  # counts only: raw_fallback_ratio may be a placeholder
            "http": (("fallback_http",), "http_adapter_ops"),
            "message": (("fallback_message",), "message_bus_rpc_attempts"),
            "cache": (("fallback_cache",), "cache_get_attempts"),
        },
    )


def server_latency_row(category: Category, rows: Sequence[Row], slo: SloSpec) -> SourceRow:
    """Server percentile from the pooled histogram; CI from order statistics on bucket edges."""
    assert category.quantile is not None
    base = _base_row(category, "server", slo, rows)
    q = category.quantile
    column = {0.95: "p95_latency", 0.99: "p99_latency"}[q]
    per_sample: list[tuple[int, float | None]] = []
    bucket_lists = []
    for index, row in enumerate(rows):
        buckets = quantiles.parse_buckets(row.get("latency_buckets"))
        bucket_lists.append(buckets)
        value_s = quantiles.histogram_quantile(q, buckets) if buckets else number(row, column)
        per_sample.append((_sample_num(row, index), None if value_s is None else value_s * 1000.0))
    fields = _with_summary(base, per_sample, category.comparison)
    pooled_buckets = quantiles.pool_buckets(bucket_lists)
    pooled_s = quantiles.histogram_quantile(q, pooled_buckets)
    if pooled_s is None:
        default = (
            "no latency histogram stored; sample percentiles cannot be pooled (averaging them would be wrong)"
            if rows and fields["n_valid"]
            else _empty_reason(category, "server", rows, 0)
        )
        reason = _na_reason(rows, (column, "latency_buckets"), default)
        return SourceRow(**fields, pooled=None, verdict=NA, na_reason=reason)
    assert pooled_buckets is not None
    total = pooled_buckets[-1][1]
    low_rank, high_rank = quantile_rank_interval(int(round(total)), q)
    low_s, high_s = quantiles.bucket_rank_bounds(pooled_buckets, low_rank, high_rank)
    threshold_ms = category.threshold(slo)
    share = quantiles.bucket_share_at_or_below(pooled_buckets, threshold_ms / 1000.0)
    notes = ["interval from order statistics mapped to bucket edges (conservative)"]
    if share is None:
        notes.append("no bucket edge equals the threshold: exact share under it not available server-side")
    return SourceRow(
        **fields,
        pooled=pooled_s * 1000.0,
        verdict=judge(pooled_s * 1000.0, threshold_ms, category.comparison),
        total=total,
        interval=Interval(
            "order-statistics (bucket edges)",
            0.95,
            None if low_s is None else low_s * 1000.0,
            None if high_s is None else high_s * 1000.0,
        ),
        share_within=share,
        notes=notes,
    )


def client_latency_row(
    category: Category, rows: Sequence[Row], latencies_ms: Sequence[float] | None, slo: SloSpec,
    dropped_waits_ms: Sequence[float | None] = (),
) -> SourceRow:
    """Client percentile over every request of the phase (nearest rank) with an
    order-statistics CI; dropped requests ranked above the sent ones as censored values.

    Example: 90 sent requests of 40-49 ms and 10 dropped after waiting 1611 ms: P95 is the
    95th of 100 ranked values, a drop, so pooled = 1611 ms, censored (the true P95 is at
    least that) and FAIL against <= 150 ms. A censored percentile never PASSes: its true
    value is unknown above the bound.
    """
    assert category.quantile is not None
    q = category.quantile
    base = _base_row(category, "client", slo, rows)
    column = {0.95: "client_p95_ms", 0.99: "client_p99_ms"}[q]
    per_sample = [(_sample_num(row, index), number(row, column)) for index, row in enumerate(rows)]
    fields = _with_summary(base, per_sample, category.comparison)
    worst_censored = _sample_censored(rows, fields["worst_sample"], q)
    ranking, dropped = quantiles.censored_ranking(latencies_ms if latencies_ms is not None else [], dropped_waits_ms)
    if not ranking:
        reason = "no client request latencies stored (imported CSV or no requests)"
        if latencies_ms is not None:
            reason = "no requests with a latency in the phase"
        return SourceRow(**fields, pooled=None, verdict=NA, na_reason=reason, worst_censored=worst_censored)
    n = len(ranking)
    pooled, censored = quantiles.nearest_rank_censored(ranking, dropped, q)
    low_rank, high_rank = quantile_rank_interval(n, q)
    threshold_ms = category.threshold(slo)
    notes = []
    if high_rank is None:
        notes.append(f"{n} requests cannot bound P{round(q * 100)} from above at 95%")
    if dropped:
        notes.append(f"{dropped} dropped requests ranked above every sent one (censored values)")
    if high_rank is not None and high_rank > n - dropped:
        high_rank = None  # the upper order statistic is a drop: only a lower bound is known
    return SourceRow(
        **fields,
        pooled=pooled,
        verdict=FAIL if censored else judge(pooled, threshold_ms, category.comparison),
        total=float(n),
        interval=Interval(
            "order-statistics",
            0.95,
            None if low_rank is None else float(ranking[low_rank - 1]),
            None if high_rank is None else float(ranking[high_rank - 1]),
        ),
        share_within=quantiles.share_at_or_below(ranking, threshold_ms),
        notes=notes,
        censored=censored,
        worst_censored=worst_censored,
        dropped=dropped,
    )


def _sample_censored(rows: Sequence[Row], sample_num: int | None, q: float) -> bool:
    """Whether a sample's stored client percentile fell on one of its dropped requests
    (its ranking: the window's intended requests, the dropped ones on top)."""
    for index, row in enumerate(rows):
        if sample_num is not None and _sample_num(row, index) == sample_num:
            intended, dropped = client_intended(row), number(row, "dropped")
            return bool(intended and dropped) and quantiles.rank_is_censored(q, int(intended), int(dropped))  # type: ignore[arg-type]
    return False


def memory_row(category: Category, rows: Sequence[Row], slo: SloSpec) -> SourceRow:
    """Mean of per-sample RSS (MiB); the release criterion is on the average."""
    base = _base_row(category, "server", slo, rows)
    per_sample = [(_sample_num(row, index), number(row, "rss_mb")) for index, row in enumerate(rows)]
    fields = _with_summary(base, per_sample, category.comparison)
    mean = fields["sample_mean"]
    if mean is None:
        reason = _na_reason(rows, ("rss_mb",), _empty_reason(category, "server", rows, 0))
        return SourceRow(**fields, pooled=None, verdict=NA, na_reason=reason)
    return SourceRow(
        **fields,
        pooled=mean,
        verdict=judge(mean, category.threshold(slo), category.comparison),
        breakdown={"max_mb": fields["sample_max"]},
    )


def combine(rows: Sequence[SourceRow]) -> Verdict:
    """Category verdict over its sources: any FAIL -> FAIL, else any INVALID -> INVALID,
    else any PASS -> PASS, else any NOT-EXERCISED -> NOT-EXERCISED, else NA. INVALID
    evidence alone never makes a category FAIL."""
    verdicts = {row.verdict for row in rows}
    for verdict in (FAIL, INVALID, PASS, NOT_EXERCISED):
        if verdict in verdicts:
            return verdict
    return NA


def _category_rows(category: Category, data: PhaseData, slo: SloSpec, invalid: str | None) -> list[SourceRow]:
    if category.kind == "latency":
        client = client_latency_row(category, data.client_samples, data.client_latencies_ms, slo,
                                    data.client_dropped_waits_ms)
        if invalid is not None:  # the generator limited the measurement: not a verdict on the service
            client = replace(client, verdict=INVALID, invalid_reason=invalid)
        return [server_latency_row(category, data.server_samples, slo), client]
    if category.kind == "memory":
        return [memory_row(category, data.server_samples, slo)]
    rows: list[SourceRow] = []
    if category.server is not None:
        row = ratio_row(category, category.server, "server", data.server_samples, slo)
        rows.append(_add_breakdown(category, row, data.server_samples))
    if category.client is not None:
        row = ratio_row(category, category.client, "client", data.client_samples, slo)
        rows.append(_add_breakdown(category, row, data.client_samples))
    return rows


def _add_breakdown(category: Category, row: SourceRow, samples: Sequence[Row]) -> SourceRow:
    if category.name == "error_rate":
        return replace(row, breakdown=_error_breakdown(row.source, samples))
    if category.name == "effective_fallback":
        return replace(row, breakdown=_fallback_breakdown(samples))
    if category.name == "plugin_reload_success":
        return replace(row, breakdown=_duration_breakdown(samples, "plugin_reload_buckets"))
    if category.name == "snapshot_success":
        return replace(row, breakdown=_duration_breakdown(samples, "snapshot_buckets"))
    return row


def _duration_breakdown(samples: Sequence[Row], column: str) -> dict[str, float | None]:
    """P95/P99 in ms of an operation's duration, from its histogram pooled over the phase,
    with the edges of the bucket each falls in (``p95_low_ms`` / ``p95_high_ms`` ...).

    The interpolated value alone overstates what a coarse histogram knows: the real service's
    snapshot operations (10-40 ms) all land in the first bucket (0, 0.1 s], where
    interpolation reads "P95 95 ms, P99 99 ms"; the bucket says only "at most 100 ms"."""
    pooled = quantiles.pool_buckets(quantiles.parse_buckets(row.get(column)) for row in samples)
    result: dict[str, float | None] = {}
    for label, q in (("p95", 0.95), ("p99", 0.99)):
        value_s = quantiles.histogram_quantile(q, pooled)
        result[f"{label}_ms"] = None if value_s is None else value_s * 1000.0
        if value_s is not None and pooled:
            low, high = quantiles.quantile_bucket(q, pooled)
            result[f"{label}_low_ms"] = None if low is None else low * 1000.0
            result[f"{label}_high_ms"] = None if high is None or math.isinf(high) else high * 1000.0
    return result


def with_evidence(row: SourceRow, category: Category, data: PhaseData, slo: SloSpec) -> SourceRow:
    """A server row weighed for coverage (``slo.evidence``): a PASS on too few valid samples
    becomes NA, "only 1 of 6 samples valid ...", with its pooled value kept as a note."""
    if row.source != "server":
        return row
    rows = data.server_samples
    expected = max(len(rows), len(data.client_samples))
    columns = evidence_columns(category)
    measured = sum(1 for sample in rows if measured_in(category, sample))
    explained_na = sum(1 for sample in rows if not measured_in(category, sample) and explained(sample, columns))
    row = replace(row, n_measured=measured, n_expected=expected)
    share = slo.min_valid_sample_share
    if row.verdict != PASS or enough_evidence(measured, explained_na, expected, share):
        return row
    why = _na_reason(rows, columns, f"{expected - len(rows)} samples have no server row")
    return replace(row, verdict=NA, insufficient=True, na_reason=f"{coverage_note(measured, expected, share)}; {why}",
                   notes=[*row.notes, f"the {measured} valid samples alone would pass"])


def evaluate_category(category: Category, data: PhaseData, slo: SloSpec, invalid: str | None = None) -> CategoryVerdict:
    """One category's rows and verdict; ``invalid`` is why client latency is INVALID (if it is).

    Server rows are weighed for coverage first, then for exercise (counters that never moved
    make the row NOT-EXERCISED); every PASS row then gets its significance."""
    exercise = exercise_of(category, data.server_samples, min_share=slo.min_valid_sample_share,
                           expected=max(len(data.server_samples), len(data.client_samples)))
    rows = [mark_not_exercised(with_evidence(row, category, data, slo), exercise)
            for row in _category_rows(category, data, slo, invalid)]
    rows = [replace(row, significant=significance(row)) for row in rows]
    verdict = combine(rows)
    policy = slo.policy(category.name)
    required = category.mandatory if policy.required is None else policy.required
    moved_by = data.moved_by.get(category.name)
    reason: str | None = None
    if verdict == NA:
        reasons = "; ".join(f"{row.source}: {row.na_reason}" for row in rows if row.na_reason)
        reason = f"{INSUFFICIENT_DATA} ({reasons})" if required else f"not measured ({reasons})"
    elif verdict == NOT_EXERCISED:
        reasons = "; ".join(f"{row.source}: {row.na_reason.removeprefix(NOT_EXERCISED_TEXT + ': ')}"
                            for row in rows if row.verdict == NOT_EXERCISED and row.na_reason)
        reason = f"{NOT_EXERCISED_TEXT} ({reasons})"
        if moved_by:
            reason += f"; what would exercise it: {moved_by}"
    elif verdict == FAIL:
        reason = "; ".join(_failure(row) for row in rows if row.verdict == FAIL)
    elif verdict == INVALID:
        reason = "; ".join(f"{row.source}: {row.invalid_reason}" for row in rows if row.verdict == INVALID)
    return CategoryVerdict(category.name, category.title, category.mandatory, verdict, reason, rows,
                           significant=category_significance(verdict, rows), required=required,
                           justification=(policy.justification or "").strip() or None, moved_by=moved_by)


def _failure(row: SourceRow) -> str:
    """Example: 'client 612 ms breaks <= 250', or for a percentile that fell on a dropped
    request 'client >= 1611 ms (censored: 240 dropped) breaks <= 150'."""
    if not row.censored:
        return f"{row.source} {row.pooled:.6g} {unit_word(row)} breaks {row.comparison} {row.threshold:g}"
    bound = f"{row.source} >= {row.pooled:.6g} {unit_word(row)} (censored: {row.dropped} dropped)"
    if row.pooled is not None and judge(row.pooled, row.threshold, row.comparison) == FAIL:
        return f"{bound} breaks {row.comparison} {row.threshold:g}"
    return f"{bound}: a lower bound cannot show {row.comparison} {row.threshold:g}"


def unit_word(row: SourceRow) -> str:
    return "" if row.unit == "ratio" else row.unit


def go_no_go(categories: Sequence[CategoryVerdict]) -> tuple[str, list[str]]:
    """NO-GO if a category FAILs on valid evidence or a required one is NA or NOT-EXERCISED;
    else INVALID if a category is INVALID (the generator limited it); else GO. NA and
    NOT-EXERCISED of a category that is not required are neutral.

    Example: all mandatory PASS, snapshot NA -> ('GO', []); cache NA -> ('NO-GO',
    ['cache_hit_rate: insufficient data (...)']); cache not exercised -> ('NO-GO',
    ['cache_hit_rate: not exercised by this load (...); what would exercise it: ...']);
    client latency INVALID, everything else PASS -> ('INVALID', ['latency_p95, latency_p99:
    client: the load generator was ...']).
    """
    reasons: list[str] = []
    for category in categories:
        if category.verdict == FAIL or (category.required and category.verdict in (NA, NOT_EXERCISED)):
            reasons.append(f"{category.category}: {category.reason}")
    if reasons:
        return NO_GO, reasons
    invalid: dict[str, list[str]] = {}  # one line per distinct reason (P95 and P99 share one)
    for category in categories:
        if category.verdict == INVALID:
            invalid.setdefault(category.reason or "generator-limited", []).append(category.category)
    if invalid:
        return DECISION_INVALID, [f"{', '.join(names)}: {reason}" for reason, names in invalid.items()]
    return GO, []


JUDGED = (PASS, FAIL, INVALID)


def settle(decision: str, reasons: list[str], categories: Sequence[CategoryVerdict],
           stopped: str | None) -> tuple[str, list[str]]:
    """The phase decision once its course is known (module docstring): a stopped phase is
    NOT-EVALUATED unless a category FAILs; a phase with nothing to judge is NOT-EVALUATED.

    Example: stopped "ended interrupted after 3 of 12 samples", every category PASS ->
    ('NOT-EVALUATED', ['phase ended interrupted after 3 of 12 samples: not evaluated; ...']);
    every category NA -> ('NOT-EVALUATED', ['no category has a value to judge: ...', <the NA
    reasons>]).
    """
    failed = [f"{c.category}: {c.reason}" for c in categories if c.verdict == FAIL]
    if stopped is not None:
        if failed:
            return NO_GO, [*failed, f"phase {stopped}: the other figures are as measured so far"]
        return NOT_EVALUATED, [f"phase {stopped}: not evaluated; the figures are what was measured so far"]
    if not any(c.verdict in JUDGED for c in categories):
        return NOT_EVALUATED, ["no category has a value to judge: every one is NA or not exercised", *reasons]
    return decision, reasons


def _outside_caveat(outside: OutsideSamples) -> str:
    """Example: '40 requests (1 error, 0 dropped; P95 12.0 ms) were intended outside every
    sample window: counted apart, not in the pooled figures'."""
    p95 = "NA" if outside.latency_p95_ms is None else f"{outside.latency_p95_ms:.1f} ms"
    errors = "error" if outside.errors == 1 else "errors"
    return (f"{outside.requests} requests ({outside.errors} {errors}, {outside.dropped} dropped; P95 {p95}) "
            "were intended outside every sample window: counted apart, not in the pooled figures")


def _caveats(data: PhaseData, categories: Sequence[CategoryVerdict]) -> list[str]:
    caveats: list[str] = []
    if data.outside is not None and data.outside.requests:
        caveats.append(_outside_caveat(data.outside))
    n = max(len(data.server_samples), len(data.client_samples))
    if n < FEW_SAMPLES:
        caveats.append(f"only {n} samples (fewer than {FEW_SAMPLES}): per-sample spread and worst sample are weak evidence")
    if data.planned_samples is not None and n < data.planned_samples:
        caveats.append(f"{data.planned_samples - n} of {data.planned_samples} planned samples are missing")
    if data.metrics_source_none or not data.server_samples:
        caveats.append(
            "no server metrics (metrics source none or no server samples): fallback, memory and cache "
            "are NA, which makes the decision NO-GO (insufficient data)"
        )
    for category in categories:
        if not category.required and category.justification and category.verdict in (NA, NOT_EXERCISED):
            caveats.append(f"{category.title}: {category.verdict_label}, not required by the spec: "
                           f"{category.justification}")
        if category.significant is False:
            caveats.append(f"{category.title}: {category.verdict_label}: "
                           + "; ".join(_crossing(row) for row in category.rows if row.significant is False))
    if any("reconstructed" in note for c in categories for row in c.rows for note in row.notes):
        caveats.append("some HTTP counts were reconstructed from request_rate x window_s (legacy CSV without counts)")
    return caveats


def _crossing(row: SourceRow) -> str:
    """Example: 'server 95% CI [0.170%, 5.300%] reaches past <= 5%'."""
    interval = row.exact_interval or row.interval
    assert interval is not None
    scale, unit = (100.0, "%") if row.unit == "ratio" else (1.0, f" {row.unit}")
    def bound(value: float | None) -> str:
        return "unbounded" if value is None else f"{value * scale:.3f}{unit}"
    return (f"{row.source} {interval.confidence:.0%} CI [{bound(interval.low)}, {bound(interval.high)}] "
            f"reaches past {row.comparison} {row.threshold * scale:g}{unit}")


def evaluate_phase(data: PhaseData, slo: SloSpec) -> PhaseEvaluation:
    """Verdict table and decision of one phase. See the module docstring for the rules.

    Every sample row passes the sample gate first (``columns.gate_sample``): a value no
    measurement can have (+Inf, NaN, a negative count, a ratio above 1) is NA with its
    reason, so it can neither crash the arithmetic nor be judged.
    """
    data = replace(data, server_samples=[gate_sample(row) for row in data.server_samples],
                   client_samples=[gate_sample(row) for row in data.client_samples])
    n_samples = max(len(data.server_samples), len(data.client_samples))
    limited = limited_windows([*data.client_samples, *data.server_samples])
    invalid = invalid_reason(limited, n_samples) if limited else None
    categories = [evaluate_category(category, data, slo, invalid) for category in CATEGORIES]
    decision, reasons = settle(*go_no_go(categories), categories, data.stopped)
    return PhaseEvaluation(
        phase=data.phase,
        decision=decision,  # type: ignore[arg-type]
        reasons=reasons,
        categories=categories,
        n_samples=n_samples,
        server_source=data.server_source,
        caveats=_caveats(data, categories),
        generator_limited_samples=[w.sample_num for w in limited if w.sample_num is not None],
        stopped=data.stopped,
        outside=data.outside,
    )
