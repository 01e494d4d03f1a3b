"""Window arithmetic over two scrapes: counter increases with Prometheus' reset rule,
per-``le`` bucket deltas, gauges at the window end. Pure functions.

Rules (CSV_V3.md, "How Δ is obtained"; Prometheus docs on counters / ``increase``):
* per series, ``Δ = v_k − v_{k−1}``; when ``v_k < v_{k−1}`` the counter was reset during the
  window and ``Δ = v_k`` (everything counted since the restart);
* a series present at only one end is left out of the window (we cannot know its start);
* a family absent from either scrape makes the window value NA (``Measured.value is None``
  with a reason), never 0; a declared family without any series contributes 0.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

from phase5site.metrics.exposition import Labels, Scrape
from phase5site.metrics.selectors import LabelMatcher

Buckets = list[tuple[float, float]]


@dataclass(frozen=True)
class Measured:
    """A window value, or None with the reason it cannot be measured.

    ``absent`` marks an NA caused by the metric family not being exported (as opposed to
    an unreachable source): only then may a derived formula replace it (CSV_V3.md).
    """

    value: object | None
    reason: str | None = None
    absent: bool = False

    @classmethod
    def na(cls, reason: str, *, absent: bool = False) -> Measured:
        return cls(None, reason, absent)


def counter_increase(previous: float | None, current: float | None) -> float | None:
    """Increase of one counter series between two readings, with the reset rule.

    >>> counter_increase(100, 160)
    60
    >>> counter_increase(100, 7)   # restarted during the window: 7 counted since
    7
    >>> counter_increase(None, 7) is None
    True
    """
    if previous is None or current is None:
        return None
    if math.isnan(previous) or math.isnan(current):
        return None
    if current < previous:
        return current
    return current - previous


def _absent(previous: Scrape, current: Scrape, name: str) -> str | None:
    missing = [label for label, scrape in (("start", previous), ("end", current))
               if not scrape.has_family(name)]
    if missing:
        return f"metric {name} absent at window {' and '.join(missing)}"
    return None


def _series_increases(
    previous: Scrape, current: Scrape, name: str, matchers: tuple[LabelMatcher, ...]
) -> dict[Labels, float]:
    # A series that is new at the window end counts from 0, like a reset: client
    # libraries (prom-client, prometheus_client) create a labelled series on its first
    # increment, so the first 5xx of a burst appears as a new {status="503"} series. Dropping
    # it would report that window's errors as 0. The family itself must exist at both ends
    # (``_absent``), so a service that was not exporting at all stays NA.
    # A NaN reading cannot be diffed; it is kept as NaN so that the sum (and the window)
    # is NA, never the other series' total as if that one had not moved.
    # A negative reading is no counter value either (a counter only grows from 0): kept as
    # NaN too, so a broken exporter's -5 cannot hide inside a plausible sum.
    before = previous.series(name, matchers)
    increases: dict[Labels, float] = {}
    for labels, value in current.series(name, matchers).items():
        start = before.get(labels, 0.0)
        increase = counter_increase(start, value) if value >= 0 and not start < 0 else None
        increases[labels] = math.nan if increase is None else increase
    return increases


def _unreadable_reason(name: str, previous: Scrape, current: Scrape, increases: dict[Labels, float],
                       matchers: tuple[LabelMatcher, ...]) -> str | None:
    """Why a series of the window cannot be diffed (NaN or negative reading), or None."""
    unreadable = [labels for labels, increase in increases.items() if math.isnan(increase)]
    if not unreadable:
        return None
    labels = unreadable[0]
    raw = [scrape.series(name, matchers).get(labels) for scrape in (previous, current)]
    shown = ",".join(f'{k}="{v}"' for k, v in labels)
    value = next((v for v in raw if v is not None and (math.isnan(v) or v < 0)), math.nan)
    return (f"metric {name}{{{shown}}} reads {value!r} at a window end: raw value {value!r} "
            "is not a counter reading (NaN, or below 0)")


def window_increase(
    previous: Scrape, current: Scrape, name: str, matchers: Iterable[LabelMatcher] = ()
) -> Measured:
    """Δ of counter ``name`` summed over the matching series (a new series counts from 0).

    >>> from phase5site.metrics.exposition import parse_exposition
    >>> a = parse_exposition('c_total{s="200"} 10\\nc_total{s="500"} 4\\n')
    >>> b = parse_exposition('c_total{s="200"} 25\\nc_total{s="500"} 1\\n')
    >>> window_increase(a, b, "c_total").value   # 15 + reset (1)
    16.0
    """
    reason = _absent(previous, current, name)
    if reason:
        return Measured.na(reason, absent=True)
    increases = _series_increases(previous, current, name, tuple(matchers))
    unreadable = _unreadable_reason(name, previous, current, increases, tuple(matchers))
    if unreadable:
        return Measured.na(unreadable)
    return Measured(float(sum(increases.values())))


def window_bucket_deltas(
    previous: Scrape, current: Scrape, histogram: str, matchers: Iterable[LabelMatcher] = ()
) -> Measured:
    """Per-``le`` Δ of ``<histogram>_bucket`` over all matching series, sorted by bound.

    The value is a list of ``(upper_bound, delta)``; series without a parseable ``le`` are
    ignored as Prometheus ignores them. Example: two routes each adding 3 requests below
    0.1 s and 1 above give ``[(0.1, 6.0), (inf, 8.0)]``.
    """
    name = f"{histogram}_bucket"
    reason = _absent(previous, current, name)
    if reason:
        return Measured.na(reason, absent=True)
    increases = _series_increases(previous, current, name, tuple(matchers))
    unreadable = _unreadable_reason(name, previous, current, increases, tuple(matchers))
    if unreadable:
        return Measured.na(unreadable)
    pooled: dict[float, float] = {}
    for labels, increase in increases.items():
        bound = _upper_bound(dict(labels).get("le"))
        if bound is not None:
            pooled[bound] = pooled.get(bound, 0.0) + increase
    return Measured(sorted(pooled.items()))


def _upper_bound(le: str | None) -> float | None:
    if le is None:
        return None
    try:
        return float(le)
    except ValueError:
        return None


def gauge_at(current: Scrape, name: str, matchers: Iterable[LabelMatcher] = ()) -> Measured:
    """Sum of gauge ``name`` over matching series at the window end (NA without a series)."""
    if not current.has_family(name):
        return Measured.na(f"metric {name} absent at window end", absent=True)
    series = current.series(name, tuple(matchers))
    if not series:
        return Measured.na(f"metric {name} has no series matching the selector at window end")
    return Measured(float(sum(series.values())))


def buckets_json(buckets: Buckets) -> str:
    """Bucket deltas as stored in the samples table: ``[[0.1, 6.0], ["+Inf", 8.0]]``.

    >>> buckets_json([(0.1, 6.0), (math.inf, 8.0)])
    '[[0.1, 6.0], ["+Inf", 8.0]]'
    """
    return json.dumps([["+Inf" if math.isinf(b) and b > 0 else b, count] for b, count in buckets])


def buckets_from_json(text: str) -> Buckets:
    """Inverse of ``buckets_json`` (for pooling bucket columns over a phase)."""
    return [(math.inf if bound == "+Inf" else float(bound), float(count))
            for bound, count in json.loads(text)]
