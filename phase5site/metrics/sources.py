"""Metrics sources used by the engine's sampler (docs-dev/CONTRACTS.md, "Metrics").

* ``ScrapeSource`` scrapes the service's metrics page at ``open()`` and at every
  ``sample()`` and diffs each scrape with the previous one.
* ``PrometheusSource`` asks the Prometheus HTTP API for the window ending at
  ``window_end``. Prometheus stores a scrape only after it happened, so the source first
  waits until ``window_end + settle_s`` on its (injectable) clock.

Neither raises for an unreachable or broken endpoint: every affected column is None with
a reason, and every raw answer is returned for raw-metrics.txt.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from phase5site.columns import SampleLimits, gate_row
from phase5site.errors import MetricsError
from phase5site.metrics.columns import SOURCE_COLUMNS, split_values
from phase5site.metrics.counters import Measured
from phase5site.metrics.exposition import Scrape, parse_exposition
from phase5site.metrics.profile import Profile, get_profile, required_families
from phase5site.metrics.prometheus_window import Presence, TargetWindow, WindowPlan, targets_window_columns
from phase5site.metrics.promapi import Answer, PrometheusClient, QueryAnswer
from phase5site.metrics.scrape_edges import TargetEdges, edges_query, scrape_edges, target_selector
from phase5site.metrics.scrape_window import check_overrides, scrape_window_columns
from phase5site.metrics.selectors import LabelMatcher, page_matchers, parse_selector
from phase5site.runspec.models import FlagsSpec, MetricsSpec

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
DEFAULT_SETTLE_S = 2.0


@dataclass(frozen=True)
class ServerWindow:
    """The interval the server values cover: the readings at its two ends (UTC epoch s).

    ``window_s`` is what rates were divided by: ``end - start`` for one target (or scrape
    mode); with several Prometheus targets, each target's increase was divided by its own
    interval, and ``window_s`` is their mean.
    """

    start: float
    end: float
    window_s: float

    def columns(self) -> dict[str, float]:
        """The ``columns.SERVER_WINDOW_COLUMNS`` of a sample row."""
        return {"server_window_start": self.start, "server_window_end": self.end,
                "server_window_s": self.window_s}


@dataclass
class SampleResult:
    source: str  # 'prometheus' | 'scrape'
    values: dict[str, object]  # SOURCE_COLUMNS; None = NA
    na_reasons: dict[str, str]  # column -> reason, for every None
    raw: list[str] = field(default_factory=list)  # raw answers, for raw-metrics.txt
    server_window: ServerWindow | None = None  # None: no two readings (every column NA)


class MetricsSource(Protocol):
    name: str

    async def open(self, at: float) -> list[str]: ...

    async def sample(self, window_start: float, window_end: float, flags: FlagsSpec) -> SampleResult: ...

    async def aclose(self) -> None: ...


def all_na(source: str, reason: str, raw: list[str]) -> SampleResult:
    measured = {column: Measured.na(reason) for column in SOURCE_COLUMNS}
    values, reasons = split_values(measured)
    return SampleResult(source, values, reasons, raw)


def _result(source: str, measured: dict[str, Measured], raw: list[str], limits: SampleLimits,
            window: ServerWindow) -> SampleResult:
    # The window functions gated every value; gate_row adds the checks across columns
    # (a part larger than its whole), so what a source hands out is always storable.
    values, reasons = gate_row(*split_values(measured), limits)
    return SampleResult(source, values, reasons, raw, window)


# --- scrape -------------------------------------------------------------------------------


@dataclass
class _ScrapeOutcome:
    scrape: Scrape | None
    error: str | None
    raw: str
    at: float = math.nan  # when the page was requested (as Prometheus timestamps a scrape)


class ScrapeSource:
    """Diff of two scrapes of the metrics page (``/metrics/prom``) per window."""

    name = "scrape"

    def __init__(
        self,
        url: str,
        *,
        profile: Profile,
        selector: tuple[LabelMatcher, ...] = (),
        overrides: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: SampleLimits = SampleLimits(),
        clock: Clock = time.time,
    ) -> None:
        self.url = url
        self.limits = limits
        self.clock = clock
        self.profile = profile
        self.selector = page_matchers(selector)  # job/instance exist only in Prometheus
        self.overrides = dict(overrides or {})
        check_overrides(self.overrides)
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport, headers=headers or {})
        self._previous: Scrape | None = None
        self._previous_error: str | None = "no baseline scrape (open() was not called)"
        self._previous_at = math.nan
        self._prefetched: dict[float, asyncio.Future[_ScrapeOutcome]] = {}
        self._sampled_until = -math.inf  # window_end of the latest sample() call

    def prefetch(self, window_end: float) -> None:
        """Scrape now, for the window ending at ``window_end``.

        With ``source: both`` the Prometheus source calls this before its settle delay, so
        the page is read at the window end whatever order the sampler asks the sources in.
        """
        if window_end > self._sampled_until and window_end not in self._prefetched:
            self._prefetched[window_end] = asyncio.ensure_future(self._scrape())

    async def _scrape(self) -> _ScrapeOutcome:
        at = self.clock()
        try:
            response = await self._client.get(self.url)
        except httpx.HTTPError as error:
            message = f"scrape of {self.url} failed: {error!r}"
            return _ScrapeOutcome(None, message, f"# GET {self.url} -> {message}", at)
        header = f"# GET {self.url} -> HTTP {response.status_code} ({len(response.content)} bytes)"
        if response.status_code != 200:
            message = f"scrape of {self.url} answered HTTP {response.status_code}"
            return _ScrapeOutcome(None, message, f"{header}\n{response.text[:2000]}", at)
        scrape = parse_exposition(response.text)
        if scrape.skipped_lines:
            header += f"; skipped {len(scrape.skipped_lines)} non-exposition line(s)"
        return _ScrapeOutcome(scrape, None, f"{header}\n{response.text}", at)

    async def open(self, at: float) -> list[str]:
        outcome = await self._scrape()
        self._previous, self._previous_error, self._previous_at = outcome.scrape, outcome.error, outcome.at
        return [outcome.raw]

    async def sample(self, window_start: float, window_end: float, flags: FlagsSpec) -> SampleResult:
        self._sampled_until = max(self._sampled_until, window_end)
        pending = self._prefetched.pop(window_end, None)
        outcome = await pending if pending is not None else await self._scrape()
        previous, previous_error, previous_at = self._previous, self._previous_error, self._previous_at
        self._previous, self._previous_error, self._previous_at = outcome.scrape, outcome.error, outcome.at
        if outcome.scrape is None:
            return all_na(self.name, outcome.error or "scrape failed", [outcome.raw])
        if previous is None:
            return all_na(self.name, f"no scrape at window start: {previous_error}", [outcome.raw])
        # The two pages were read when they were requested, not at the nominal edges: rates
        # are divided by the interval the diff covers (a late scrape is not a faster service).
        window = ServerWindow(previous_at, outcome.at, outcome.at - previous_at)
        measured = scrape_window_columns(
            self.profile, previous, outcome.scrape, window_s=window.window_s,
            selector=self.selector, overrides=self.overrides,
            count_cache_miss=flags.COUNT_CACHE_MISS_AS_FALLBACK, limits=self.limits,
        )
        return _result(self.name, measured, [outcome.raw], self.limits, window)

    async def aclose(self) -> None:
        for pending in self._prefetched.values():
            pending.cancel()
        self._prefetched.clear()
        await self._client.aclose()


# --- prometheus ---------------------------------------------------------------------------


class PrometheusSource:
    """PromQL over the window, evaluated at its end, after a settle delay."""

    name = "prometheus"

    def __init__(
        self,
        client: PrometheusClient,
        *,
        profile: Profile,
        selector: tuple[LabelMatcher, ...] = (),
        overrides: dict[str, str] | None = None,
        settle_s: float = DEFAULT_SETTLE_S,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        limits: SampleLimits = SampleLimits(),
    ) -> None:
        self.client = client
        self.limits = limits
        self.profile = profile
        self.selector = selector
        self.overrides = dict(overrides or {})
        check_overrides(self.overrides)
        self.settle_s = settle_s
        self.clock = clock
        self.sleep = sleep
        # Called with window_end before settling (ScrapeSource.prefetch with source: both).
        self.before_settle: list[Callable[[float], None]] = []

    async def open(self, at: float) -> list[str]:
        answer = await self.client.instant(f"up{_braced(self.selector)}", at)
        return [_record(answer)]

    async def _settle(self, window_end: float) -> None:
        remaining = window_end + self.settle_s - self.clock()
        if remaining > 0:
            await self.sleep(remaining)

    async def _presence(self, plan: WindowPlan, window_start: float, window_end: float,
                        raw: list[str]) -> Presence:
        query = plan.presence_query()
        start, end, metadata = await asyncio.gather(
            self.client.instant(query, window_start), self.client.instant(query, window_end),
            self.client.metadata())
        raw.extend(_record(answer) for answer in (start, end))
        raw.append(_record(metadata, body=False))
        errors = [a.error for a in (start, end, metadata) if a.error]
        declared = metadata.data if metadata.ok and isinstance(metadata.data, dict) else {}
        return Presence(
            at_start=frozenset(labels.get("__name__", "") for labels, _ in start.vector),
            at_end=frozenset(labels.get("__name__", "") for labels, _ in end.vector),
            declared=frozenset(declared), error="; ".join(errors) or None)

    async def _ask(self, queries: dict[str, str], at: float, raw: list[str]) -> dict[str, QueryAnswer]:
        answers = await asyncio.gather(*(self.client.instant(expr, at) for expr in queries.values()))
        raw.extend(_record(answer) for answer in answers)
        return dict(zip(queries, answers))

    async def _edges(self, window_start: float, window_end: float, raw: list[str]) -> tuple[list[TargetEdges], str | None]:
        """The edge scrapes of every target inside the window (``metrics.scrape_edges``), or
        the reason there are none. ``up`` carries only target labels: a selector on the
        service's own labels (``route``) finds no ``up``, so its job/instance part is used."""
        selectors = [self.selector]
        if target_selector(self.selector) != self.selector:
            selectors.append(target_selector(self.selector))
        for selector in selectors:
            answer = await self.client.raw_samples(edges_query(selector, window_end - window_start), window_end)
            raw.append(_record(answer))
            if not answer.ok:
                return [], f"prometheus: {answer.error}"
            if answer.matrix:
                edges, problems = scrape_edges(answer.matrix, window_start, window_end)
                # A target without two scrapes inside the window would be missing from the
                # sum: a partial count understates, so the window is NA, not smaller.
                return (edges, None) if not problems else ([], f"prometheus: {'; '.join(problems)}")
        return [], (f"prometheus: no scrape target matches up{_braced(self.selector)} in the window, so "
                    "the scrapes bounding it are unknown")

    async def _target(self, edge: TargetEdges, raw: list[str]) -> TargetWindow:
        plan = WindowPlan(self.profile, self.selector + edge.matchers(), edge.window_s, self.overrides)
        presence = await self._presence(plan, edge.start, edge.end, raw)
        quantities = await self._ask(plan.quantity_queries(), edge.end, raw)
        return TargetWindow(plan, presence, quantities)

    async def sample(self, window_start: float, window_end: float, flags: FlagsSpec) -> SampleResult:
        for hook in self.before_settle:
            hook(window_end)
        await self._settle(window_end)
        raw: list[str] = []
        edges, problem = await self._edges(window_start, window_end, raw)
        if not edges:
            return all_na(self.name, problem or "no window edges", raw)
        targets = [await self._target(edge, raw) for edge in edges]
        first, start, end = targets[0], min(e.start for e in edges), max(e.end for e in edges)
        # One target: Prometheus' own histogram_quantile over its bucket increases. Several:
        # the quantiles come from the pooled increases (targets_window_columns).
        quantiles = await self._ask(first.plan.quantile_queries(), end, raw) if len(targets) == 1 else {}
        override_plan = WindowPlan(self.profile, self.selector, round(end - start, 3), self.overrides)
        presence = first.presence if len(targets) == 1 else await self._presence(override_plan, start, end, raw)
        overrides = await self._ask(override_plan.override_queries(presence), end, raw)
        measured = targets_window_columns(targets, quantiles, overrides,
                                          count_cache_miss=flags.COUNT_CACHE_MISS_AS_FALLBACK, limits=self.limits)
        window_s = sum(e.window_s for e in edges) / len(edges)
        return _result(self.name, measured, raw, self.limits, ServerWindow(start, end, window_s))

    async def aclose(self) -> None:
        await self.client.aclose()


def _braced(selector: tuple[LabelMatcher, ...]) -> str:
    return "{" + ",".join(m.promql() for m in selector) + "}" if selector else ""


def _record(answer: Answer, *, body: bool = True) -> str:
    status = "ok" if answer.ok else f"error: {answer.error}"
    text = f"# prometheus {answer.request} -> {status}"
    # The metadata answer lists every family of every target: kept short in the record.
    return f"{text}\n{answer.raw}" if body and answer.raw else text


# --- factory ------------------------------------------------------------------------------


def _scrape_url(metrics: MetricsSpec, scrape_url: str | None) -> str:
    if metrics.scrape_url:
        return metrics.scrape_url
    if metrics.source == "scrape" and metrics.url:
        return metrics.url
    if scrape_url:
        return scrape_url
    raise MetricsError(
        f"metrics source {metrics.source!r} needs the service's metrics page URL",
        hint="set metrics.scrape_url (e.g. http://host:8900/metrics/prom) or use an embedded target",
    )


def make_sources(
    metrics: MetricsSpec,
    *,
    scrape_url: str | None,
    headers: dict[str, str],
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
    sleep: Sleep | None = None,
    settle_s: float = DEFAULT_SETTLE_S,
    limits: SampleLimits = SampleLimits(),
) -> list[MetricsSource]:
    """The sources ``metrics.source`` asks for: [], [scrape], [prometheus] or both.

    ``limits``: the machine the service runs on, where known (``machine_limits()`` for the
    embedded target), so that CPU above its cores or RSS above its memory is NA.

    ``headers`` (e.g. the bearer token) go to the service's metrics page only, never to
    Prometheus. Raises MetricsError for a bad selector, profile, override or missing URL.
    """
    if metrics.source == "none":
        return []
    profile = get_profile(metrics.profile)
    selector = parse_selector(metrics.selector)
    sources: list[MetricsSource] = []
    scrape: ScrapeSource | None = None
    if metrics.source in ("scrape", "both"):
        scrape = ScrapeSource(
            _scrape_url(metrics, scrape_url), profile=profile, selector=selector,
            overrides=dict(metrics.overrides), headers=headers, timeout_s=metrics.timeout,
            transport=transport, limits=limits, clock=clock or time.time)
        sources.append(scrape)
    if metrics.source in ("prometheus", "both"):
        assert metrics.url is not None  # MetricsSpec validates this
        client = PrometheusClient(metrics.url, timeout_s=metrics.timeout, transport=transport)
        prometheus = PrometheusSource(
            client, profile=profile, selector=selector, overrides=dict(metrics.overrides),
            settle_s=settle_s, clock=clock or time.time, sleep=sleep or asyncio.sleep, limits=limits)
        if scrape is not None:
            # Both paths must read the same window: the scrape is taken at the window end
            # even when the sampler asks Prometheus (and its settle delay) first.
            prometheus.before_settle.append(scrape.prefetch)
        sources.append(prometheus)
    return sources


def machine_limits() -> SampleLimits:
    """This machine's cores and memory: the limits of a service running here (the embedded
    target). Where the OS does not say, the limit stays the largest any machine has."""
    cores = os.cpu_count()
    try:
        memory = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        memory = None
    default = SampleLimits()
    return SampleLimits(cpu_cores=float(cores) if cores else default.cpu_cores,
                        memory_bytes=memory if memory and memory > 0 else default.memory_bytes)


def check_families(source: str | Scrape, profile: str = "metasheet") -> list[str]:
    """Required sample names missing from a metrics page (text or parsed), for ``verify``.

    A family declared by HELP/TYPE without samples counts as present.
    """
    scrape = parse_exposition(source) if isinstance(source, str) else source
    return [name for name in required_families(profile) if not scrape.has_family(name)]


async def check_prometheus_families(
    url: str,
    *,
    selector: str = "",
    profile: str = "metasheet",
    at: float | None = None,
    timeout_s: float = 5.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[list[str], str | None]:
    """(missing sample names, error) for a Prometheus server, for ``verify``.

    A name is present when it has a series matching ``selector`` now, or when
    ``/api/v1/metadata`` lists its family. On an API error the list is empty and the
    error says why.
    """
    plan = WindowPlan(get_profile(profile), parse_selector(selector), 60.0)
    client = PrometheusClient(url, timeout_s=timeout_s, transport=transport)
    try:
        now = time.time() if at is None else at
        answer, metadata = await asyncio.gather(
            client.instant(plan.presence_query(), now), client.metadata())
    finally:
        await client.aclose()
    if not answer.ok:
        return [], answer.error
    found = {labels.get("__name__", "") for labels, _ in answer.vector}
    declared = set(metadata.data) if metadata.ok and isinstance(metadata.data, dict) else set()
    presence = Presence(frozenset(found), frozenset(found), frozenset(declared))
    return [n for n in required_families(profile) if not presence.present(n)], None
