"""Prometheus mode: which scrapes are a window's edges. Pure.

Why: ``x - x offset T`` evaluated at the window end ``t_k`` reads, at each edge, the last
scrape *at or before* it, up to one scrape interval early. The first window of a phase then
began inside the warmup and absorbed its traffic (issue 12: 763 server requests for 800 sent,
``request_rate`` 38.15 for 40), and every window was shifted by the scrape phase.

The rule instead: a window's server values diff the **first and the last successful scrape
Prometheus holds inside the window** ``[t_{k-1}, t_k]``. Counts are then exactly those of
the interval ``(first, last]`` between those two scrapes, which lies wholly in the window,
so nothing from the previous window or a warmup leaks in; rates are divided by that interval
(``server_window_s``), never by the nominal T. The price: the traffic between the last scrape
of one window and the first of the next (at most one scrape interval around each boundary)
belongs to no window, so window counts add up to a little less than the run's total.

Scrape times come from the target's ``up`` series, which Prometheus writes at every scrape
(1 = success), read raw with a range selector ``up{selector}[T]`` at ``t_k``. Each target has
its own scrape times, so with several targets each is diffed between its own edges.
"""

from __future__ import annotations

from dataclasses import dataclass

from phase5site.metrics.promapi import Matrix
from phase5site.metrics.profile import duration_ms
from phase5site.metrics.selectors import LabelMatcher, promql_selector

# Prometheus timestamps are whole milliseconds; the window edges are floats.
_EDGE_SLACK_S = 0.0005
# Labels of ``up`` that identify a target (set by Prometheus from the scrape config).
TARGET_LABELS: tuple[str, ...] = ("job", "instance")


@dataclass(frozen=True)
class TargetEdges:
    """The two scrapes of one target that bound a window, and how many lay inside it."""

    labels: tuple[tuple[str, str], ...]  # the target's labels (those of its ``up`` series)
    start: float  # UTC epoch s of the first successful scrape inside the window
    end: float  # ... of the last one
    scrapes: int  # successful scrapes inside the window

    @property
    def window_s(self) -> float:
        """Seconds between the two edge scrapes, from Prometheus' whole milliseconds."""
        return round(self.end - self.start, 3)

    def matchers(self) -> tuple[LabelMatcher, ...]:
        """Matchers selecting this target's series only."""
        return tuple(LabelMatcher(name, "=", value) for name, value in self.labels)

    def describe(self) -> str:
        return ",".join(f'{k}="{v}"' for k, v in self.labels) or "the target"


def edges_query(selector: tuple[LabelMatcher, ...], window_s: float) -> str:
    """``up{selector}[T]``, evaluated at the window end: every scrape of the window.

    >>> edges_query((LabelMatcher("job", "=", "api"),), 20.0)
    'up{job="api"}[20000ms]'
    """
    return f"{promql_selector('up', selector)}[{duration_ms(window_s)}]"


def target_selector(selector: tuple[LabelMatcher, ...]) -> tuple[LabelMatcher, ...]:
    """The selector's matchers on target labels only (``job``, ``instance``): where ``up``
    has none of the service's own labels (``route``, ``status``), the edges come from these.

    >>> target_selector((LabelMatcher("job", "=", "api"), LabelMatcher("tier", "!=", "x")))
    (LabelMatcher(name='job', op='=', value='api'),)
    """
    return tuple(m for m in selector if m.name in TARGET_LABELS)


def scrape_edges(matrix: Matrix, window_start: float, window_end: float) -> tuple[list[TargetEdges], list[str]]:
    """Per target, the first and last successful scrape inside ``[window_start, window_end]``.

    Returns the targets with two such scrapes, and one reason per target with fewer (its
    increase over the window cannot be known from inside it).

    >>> up = [({"__name__": "up", "job": "api"}, [(99.0, 1.0), (100.5, 1.0), (101.5, 0.0), (102.5, 1.0), (104.5, 1.0)])]
    >>> edges, problems = scrape_edges(up, 100.0, 104.0)
    >>> edges[0].start, edges[0].end, edges[0].scrapes, edges[0].window_s, problems
    (100.5, 102.5, 2, 2.0, [])
    """
    edges: list[TargetEdges] = []
    problems: list[str] = []
    for labels, samples in matrix:
        target = tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))
        inside = sorted(ts for ts, value in samples
                        if value == 1.0 and window_start - _EDGE_SLACK_S <= ts <= window_end + _EDGE_SLACK_S)
        if len(inside) >= 2:
            edges.append(TargetEdges(target, inside[0], inside[-1], len(inside)))
            continue
        shown = ",".join(f'{k}="{v}"' for k, v in target)
        problems.append(f"{len(inside)} successful scrape(s) of {{{shown}}} inside the window; two are needed "
                        "(is the scrape interval longer than half the window, or the target down?)")
    return edges, problems
