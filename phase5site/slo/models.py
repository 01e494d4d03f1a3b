"""The verdict data: plain frozen dataclasses, easy to render and to turn into JSON
(``dataclasses.asdict``). ``None`` is NA everywhere; no field ever holds a placeholder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from phase5site.slo.stats import Interval

Verdict = Literal["PASS", "FAIL", "NA", "INVALID", "NOT-EXERCISED"]
Decision = Literal["GO", "NO-GO", "INVALID", "NOT-EVALUATED"]
Comparison = Literal[">=", "<="]
Source = Literal["server", "client"]

PASS: Verdict = "PASS"
FAIL: Verdict = "FAIL"
NA: Verdict = "NA"
# The load generator, not the service, limited the measurement (DESIGN.md "Generator
# health"): as a verdict of a row or category, and as a decision.
INVALID: Verdict = "INVALID"
# The counters a category reads were measured and did not move over the whole phase: the
# load never reached the code path, so a value (e.g. 0 % fallback) would prove nothing.
NOT_EXERCISED: Verdict = "NOT-EXERCISED"
NOT_EXERCISED_TEXT = "not exercised by this load"
GO: Decision = "GO"
NO_GO: Decision = "NO-GO"
DECISION_INVALID: Decision = "INVALID"
# No verdict could be reached: the phase did not run its planned course (aborted, interrupted,
# failed) and nothing FAILed in what it measured, or no category had a value to judge (e.g. a
# legacy import whose values are all placeholders). Never GO; not a NO-GO on the service.
NOT_EVALUATED: Decision = "NOT-EVALUATED"
INSUFFICIENT_DATA = "insufficient data"
NOT_SIGNIFICANT = "not significant"


def verdict_label(verdict: str, significant: bool | None) -> str:
    """How a verdict is printed: a PASS whose confidence interval crosses the threshold is
    ``'PASS, not significant'`` (the data cannot tell it from a FAIL at 95 %).

    >>> verdict_label("PASS", False), verdict_label("PASS", True), verdict_label("FAIL", False)
    ('PASS, not significant', 'PASS', 'FAIL')
    """
    return f"{verdict}, {NOT_SIGNIFICANT}" if verdict == "PASS" and significant is False else verdict


@dataclass(frozen=True)
class SourceRow:
    """One line of the verdict table: a category measured from one source.

    ``pooled`` is the phase value (sum of good / sum of total, pooled histogram, all
    requests, or the mean for memory), in ``unit``. ``good``/``total`` are the pooled counts
    behind a ratio. ``worst_sample`` is the 1-based sample number with the worst value.
    ``share_within`` is the exact share of requests at or under a latency threshold.
    Client latency: ``dropped`` requests are in the ranking as censored values above every
    sent one; ``censored`` says ``pooled`` fell on one (a lower bound: the true percentile
    is at least that), ``worst_censored`` the same of the worst sample's value.
    ``invalid_reason`` says why the row is INVALID (the generator limited it).
    ``significant``: whether the confidence interval (the exact one where there is one)
    lies wholly on the passing side of the threshold; None without an interval.
    ``verdict_label`` is how the verdict is printed (``verdict_label()``), always derived.
    ``n_expected``: the samples the phase took, against which ``n_measured`` (samples whose
    inputs were measured) is weighed for enough evidence (server rows).
    """

    category: str
    source: Source
    unit: str
    threshold: float
    comparison: Comparison
    pooled: float | None
    verdict: Verdict
    na_reason: str | None = None
    n_samples: int = 0
    n_valid: int = 0
    sample_min: float | None = None
    sample_max: float | None = None
    sample_mean: float | None = None
    sample_stddev: float | None = None
    worst_sample: int | None = None
    worst_value: float | None = None
    good: float | None = None
    total: float | None = None
    interval: Interval | None = None
    exact_interval: Interval | None = None
    share_within: float | None = None
    breakdown: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    censored: bool = False
    worst_censored: bool = False
    dropped: int = 0
    invalid_reason: str | None = None
    significant: bool | None = None
    n_measured: int | None = None
    n_expected: int | None = None
    insufficient: bool = False  # NA because too few samples were valid (its pooled value is kept)
    verdict_label: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict_label", verdict_label(self.verdict, self.significant))


@dataclass(frozen=True)
class CategoryVerdict:
    """A category of DESIGN.md's SLO table, judged over its source rows.

    Combination rule: every source that has a value is judged; the category FAILs if any
    source FAILs, is INVALID if none fails and one is INVALID (the generator limited it),
    PASSes if at least one source has a value and none fails, and is NA only when no source
    has a value. A PASS is ``significant`` only if every passing row's interval clears the
    threshold; ``verdict_label`` prints it ("PASS, not significant"). NOT-EXERCISED: no
    source has a value and the counters behind one were measured without moving.
    ``required`` (the spec's ``slo.categories``, default ``mandatory``) decides whether NA
    or NOT-EXERCISED blocks GO; ``justification`` says why not, in the spec's words.
    """

    category: str
    title: str
    mandatory: bool
    verdict: Verdict
    reason: str | None
    rows: list[SourceRow]
    significant: bool | None = None
    verdict_label: str = ""
    required: bool | None = None  # blocks GO when NA / not exercised; None: as ``mandatory``
    justification: str | None = None  # the spec's words when it is not required
    moved_by: str | None = None  # what a load must send to exercise it (the metrics profile)

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict_label", verdict_label(self.verdict, self.significant))
        if self.required is None:
            object.__setattr__(self, "required", self.mandatory)


@dataclass(frozen=True)
class OutsideSamples:
    """The requests of a phase intended outside every sample window: not in any sample, so
    not in the pooled figures either (``slo.evaluate``: pooled and per-sample values are over
    the same requests). ``first_at``/``last_at``: their intended times (UTC epoch s)."""

    requests: int
    ok: int
    errors: int  # 4xx + 5xx + transport errors
    dropped: int
    latency_p95_ms: float | None  # nearest rank over the sent ones; None when none was sent
    first_at: float | None = None
    last_at: float | None = None


@dataclass(frozen=True)
class PhaseEvaluation:
    """``decision``: NO-GO if a category FAILs on valid evidence (or, in a phase that ran its
    course, a required one is NA or not exercised); else NOT-EVALUATED if the phase did not
    run its planned course (``stopped`` says how) or no category had a value; else INVALID if
    a category is INVALID, else GO. ``reasons`` explain the decision;
    ``generator_limited_samples`` are the windows whose client latency measured the tool.
    In a stopped phase the categories are what was measured so far, shown, not judged
    (a FAIL among them still makes it NO-GO: a failure seen is a failure)."""

    phase: str
    decision: Decision
    reasons: list[str]
    categories: list[CategoryVerdict]
    n_samples: int
    server_source: str | None
    caveats: list[str] = field(default_factory=list)
    generator_limited_samples: list[int] = field(default_factory=list)
    stopped: str | None = None  # e.g. "ended aborted after 2 of 12 samples"; None: ran its course
    outside: OutsideSamples | None = None  # None: not known (no request rows) or none outside

    def category(self, name: str) -> CategoryVerdict:
        return next(c for c in self.categories if c.category == name)


def to_jsonable(value: Any) -> Any:
    """``dataclasses.asdict`` for any evaluation object (for ``--json``)."""
    return asdict(value)
