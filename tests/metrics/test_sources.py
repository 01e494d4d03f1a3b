"""Sources and the Prometheus client with injected transports and clocks (no sockets, no sleep)."""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Callable

import httpx
import pytest

from phase5site.errors import MetricsError
from phase5site.metrics.columns import SOURCE_COLUMNS
from phase5site.metrics.promapi import PrometheusClient
from phase5site.metrics.sources import PrometheusSource, ScrapeSource, make_sources
from phase5site.runspec.models import FlagsSpec, MetricsSpec

from .test_scrape_window import page

FLAGS = FlagsSpec()
Handler = Callable[[httpx.Request], httpx.Response]


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def vector(*values: float, labels: dict[str, str] | None = None) -> dict:
    result = [{"metric": labels or {}, "value": [1.0, str(v)]} for v in values]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


_RANGE_SELECTOR = re.compile(r"^up(\{.*\})?\[(\d+)ms\]$")


def with_edges(handler: Handler, *, scrape_every_s: float | None = None, offset_s: float = 0.0,
               targets: tuple[dict[str, str], ...] = ({"job": "api", "instance": "a:1"},)) -> Handler:
    """Answer the edge query (``up{...}[T]``) as Prometheus would: every scrape in
    [t - T, t]; by default one scrape exactly at each edge (the nominal window)."""
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path != "/api/v1/query":
            return handler(request)
        form = dict(httpx.QueryParams(request.content.decode()))
        match = _RANGE_SELECTOR.match(form["query"])
        if not match:
            return handler(request)
        end, length = float(form["time"]), int(match.group(2)) / 1000
        if scrape_every_s is None:
            times = [end - length, end]
        else:
            first = math.ceil((end - length - offset_s) / scrape_every_s) * scrape_every_s + offset_s
            times = [first + i * scrape_every_s for i in range(int(length / scrape_every_s) + 2)
                     if first + i * scrape_every_s <= end]
        result = [{"metric": {"__name__": "up", **labels}, "values": [[t, "1"] for t in times]}
                  for labels in targets]
        return httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": result}})
    return answer


def prometheus_source(handler: Handler, *, edges: bool = True, **kwargs: object) -> PrometheusSource:
    spec = MetricsSpec(source="prometheus", url="http://prom.test:9090", **kwargs)  # type: ignore[arg-type]
    transport = httpx.MockTransport(with_edges(handler) if edges else handler)
    [source] = make_sources(spec, scrape_url=None, headers={}, transport=transport,
                            clock=lambda: 1e12, sleep=_no_sleep)
    assert isinstance(source, PrometheusSource)
    return source


async def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"must not sleep (asked {seconds})")


def _raise_timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("slow", request=request)


def _raise_connect(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


@pytest.mark.parametrize(("handler", "reason"), [
    (lambda r: httpx.Response(500, text="internal"), "HTTP 500"),
    (lambda r: httpx.Response(503, json={"status": "error", "errorType": "unavailable", "error": "x"}),
     "HTTP 503: unavailable x"),
    (_raise_timeout, "timeout after 5s"),
    (_raise_connect, "unreachable"),
    (lambda r: httpx.Response(200, text="<html>not json"), "not JSON"),
    (lambda r: httpx.Response(200, json={"status": "error", "errorType": "bad_data", "error": "parse error"}),
     "status error: parse error"),
    (lambda r: httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": []}}),
     "expected an instant vector"),
    (lambda r: httpx.Response(200, json={"status": "success", "data": {"resultType": "vector"}}),
     "unexpected answer shape"),
], ids=["500", "503-json", "timeout", "refused", "bad-json", "status-error", "matrix", "shape"])
def test_prometheus_errors_become_na_with_reason(handler: Handler, reason: str) -> None:
    source = prometheus_source(handler)
    result = run(source.sample(1000.0, 1600.0, FLAGS))
    assert result.source == "prometheus"
    assert set(result.values) == set(SOURCE_COLUMNS)
    assert all(value is None for value in result.values.values())
    assert set(result.na_reasons) == set(SOURCE_COLUMNS)
    # The families the service does not export are NA by design, whatever Prometheus says.
    by_design = {"http_adapter_ops", "message_bus_rpc_attempts", "cache_get_attempts",
                 "fb_http_ratio", "fb_message_ratio", "fb_cache_ratio"}
    assert all(reason in text for column, text in result.na_reasons.items()
               if column not in by_design), result.na_reasons["p95_latency"]
    assert all(result.na_reasons[column].startswith("not exported by this service") for column in by_design)
    assert result.raw  # every query recorded
    run(source.aclose())


def test_client_posts_query_and_time() -> None:
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(httpx.QueryParams(request.content.decode())))
        return httpx.Response(200, json=vector(3))

    client = PrometheusClient("http://prom.test", transport=httpx.MockTransport(handler))
    answer = run(client.instant('sum(x{a="b"})', 1700000000.5))
    assert answer.vector == [({}, 3.0)]
    assert seen == [{"query": 'sum(x{a="b"})', "time": "1700000000.500"}]


def test_prometheus_source_settles_then_queries_at_window_end() -> None:
    slept: list[float] = []
    times: set[str] = set()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/metadata":
            return httpx.Response(200, json={"status": "success", "data": {}})
        form = dict(httpx.QueryParams(request.content.decode()))
        times.add(form["time"])
        if form["query"].startswith("count by (__name__)"):
            return httpx.Response(200, json=vector(1, labels={"__name__": "http_requests_total"}))
        return httpx.Response(200, json=vector(120.0) if "http_requests_total" in form["query"] else vector())

    spec = MetricsSpec(source="prometheus", url="http://prom.test")
    [source] = make_sources(spec, scrape_url=None, headers={}, transport=httpx.MockTransport(with_edges(handler)),
                            clock=lambda: 1600.5, sleep=sleep, settle_s=2.0)
    result = run(source.sample(1000.0, 1600.0, FLAGS))
    assert slept == [pytest.approx(1.5)]
    assert times == {"1000.000", "1600.000"}  # presence at both ends, everything else at the end
    assert result.values["server_requests"] == 120.0
    assert result.values["request_rate"] == pytest.approx(0.2)
    # families neither declared nor seen: NA, not 0
    assert result.values["raw_fallback_total"] is None
    assert "absent" in result.na_reasons["raw_fallback_total"]


def test_prometheus_empty_answer_is_zero_only_for_declared_families() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/metadata":
            return httpx.Response(200, json={"status": "success", "data": {
                "metasheet_fallback_total": [{"type": "counter"}], "http_requests_total": [{"type": "counter"}]}})
        return httpx.Response(200, json=vector())

    result = run(prometheus_source(handler).sample(1000.0, 1600.0, FLAGS))
    assert result.values["raw_fallback_total"] == 0
    assert result.values["fallback_cache"] == 0
    assert result.values["server_requests"] == 0
    assert result.values["http_success_rate"] is None
    assert "denominator zero" in result.na_reasons["http_success_rate"]
    assert result.values["http_adapter_ops"] is None  # not declared


def test_promql_override_with_range_placeholder() -> None:
    queries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/metadata":
            return httpx.Response(200, json={"status": "success", "data": {}})
        query = dict(httpx.QueryParams(request.content.decode()))["query"]
        queries.append(query)
        return httpx.Response(200, json=vector(0.042) if query.startswith("my_p95") else vector())

    source = prometheus_source(handler, overrides={"p95_latency": "my_p95(x[$__range])"})
    result = run(source.sample(1000.0, 1600.0, FLAGS))
    assert "my_p95(x[600000ms])" in queries
    assert result.values["p95_latency"] == 0.042
    latency_p95 = [q for q in queries
                   if q.startswith("histogram_quantile(0.95") and "http_server_requests_seconds" in q]
    assert latency_p95 == []
    assert any(q.startswith("histogram_quantile(0.99, sum by (le)") and "http_server_requests" in q
               for q in queries)


def test_selector_is_added_to_every_prometheus_query() -> None:
    queries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/query":
            queries.append(dict(httpx.QueryParams(request.content.decode()))["query"])
        return httpx.Response(200, json=vector())

    run(prometheus_source(handler, selector='{job="metasheet-api"}').sample(0.0, 60.0, FLAGS))
    assert queries
    for query in queries:
        # every series selector in the query carries the job matcher
        assert query.count('job="metasheet-api"') >= 1, query
        assert "_total -" not in query and "_bucket -" not in query, query


def scrape_source(pages: list[str | int], headers: dict[str, str] | None = None) -> tuple[ScrapeSource, list[httpx.Request]]:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        item = pages.pop(0)
        if isinstance(item, int):
            return httpx.Response(item, text="down")
        return httpx.Response(200, text=item)

    spec = MetricsSpec(source="scrape", scrape_url="http://svc.test/metrics/prom")
    [source] = make_sources(spec, scrape_url=None, headers=headers or {}, transport=httpx.MockTransport(handler))
    assert isinstance(source, ScrapeSource)
    return source, requests


def test_scrape_source_diffs_consecutive_scrapes() -> None:
    source, requests = scrape_source([page(100, 0, 1), page(160, 0, 4), page(400, 0, 4)],
                                     headers={"Authorization": "Bearer eyJtest"})
    raw = run(source.open(0.0))
    assert raw[0].startswith("# GET http://svc.test/metrics/prom -> HTTP 200")
    first = run(source.sample(0.0, 60.0, FLAGS))
    second = run(source.sample(60.0, 120.0, FLAGS))
    assert (first.values["server_requests"], second.values["server_requests"]) == (63, 240)
    assert first.values["error_rate_5xx"] == pytest.approx(3 / 63)
    assert second.values["error_rate_5xx"] == 0
    assert requests[0].headers["Authorization"] == "Bearer eyJtest"
    assert "eyJtest" not in "".join(first.raw)


def test_scrape_selector_ignores_prometheus_target_labels() -> None:
    pages = [page(100), page(150)]
    spec = MetricsSpec(source="scrape", scrape_url="http://svc.test/m", selector='{job="metasheet-api", method="GET"}')
    [source] = make_sources(spec, scrape_url=None, headers={},
                            transport=httpx.MockTransport(lambda r: httpx.Response(200, text=pages.pop(0))))
    run(source.open(0.0))
    assert run(source.sample(0.0, 60.0, FLAGS)).values["server_requests"] == 50


def test_scrape_failure_makes_this_and_next_window_na() -> None:
    source, _ = scrape_source([page(100), 503, page(300), page(400)])
    run(source.open(0.0))
    failed = run(source.sample(0.0, 60.0, FLAGS))
    assert all(v is None for v in failed.values.values())
    assert "HTTP 503" in failed.na_reasons["server_requests"]
    after = run(source.sample(60.0, 120.0, FLAGS))
    assert after.values["server_requests"] is None
    assert "no scrape at window start" in after.na_reasons["server_requests"]
    recovered = run(source.sample(120.0, 180.0, FLAGS))
    assert recovered.values["server_requests"] == 100


def test_scrape_unreachable_is_na() -> None:
    spec = MetricsSpec(source="scrape", scrape_url="http://svc.test/metrics/prom")
    [source] = make_sources(spec, scrape_url=None, headers={}, transport=httpx.MockTransport(_raise_connect))
    run(source.open(0.0))
    result = run(source.sample(0.0, 60.0, FLAGS))
    assert "ConnectError" in result.na_reasons["rss_mb"]


def test_both_scrapes_at_window_end_even_when_prometheus_is_sampled_first() -> None:
    events: list[str] = []
    pages = [page(100), page(150)]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "svc.test":
            events.append("scrape")
            return httpx.Response(200, text=pages.pop(0))
        return httpx.Response(200, json=vector())

    async def sleep(seconds: float) -> None:
        for _ in range(200):  # let other tasks run, as a real settle delay would
            if events.count("scrape") == 2:
                break
            await asyncio.sleep(0)
        events.append("settle done")

    async def scenario() -> tuple[object, object]:
        spec = MetricsSpec(source="both", url="http://prom.test", scrape_url="http://svc.test/m")
        scrape, prometheus = make_sources(spec, scrape_url=None, headers={}, transport=httpx.MockTransport(handler),
                                          clock=lambda: 60.0, sleep=sleep)
        await scrape.open(0.0)
        await prometheus.sample(0.0, 60.0, FLAGS)  # the runner asks Prometheus first
        result = await scrape.sample(0.0, 60.0, FLAGS)
        return result.values["server_requests"], len(pages)

    assert run(scenario()) == (50, 0)
    assert events == ["scrape", "scrape", "settle done"]  # window-end scrape taken during the settle delay


def test_both_scrape_first_order_does_not_scrape_twice() -> None:
    pages = [page(100), page(150), page(180)]
    scrapes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "svc.test":
            scrapes.append(1)
            return httpx.Response(200, text=pages.pop(0))
        return httpx.Response(200, json=vector())

    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    async def scenario() -> list[object]:
        spec = MetricsSpec(source="both", url="http://prom.test", scrape_url="http://svc.test/m")
        scrape, prometheus = make_sources(spec, scrape_url=None, headers={}, transport=httpx.MockTransport(handler),
                                          clock=lambda: 1e9, sleep=no_wait)
        await scrape.open(0.0)
        values = []
        for end in (60.0, 120.0):
            values.append((await scrape.sample(end - 60, end, FLAGS)).values["server_requests"])
            await prometheus.sample(end - 60, end, FLAGS)
        await scrape.aclose()
        return values

    assert run(scenario()) == [50, 30]
    assert len(scrapes) == 3  # open + one per window: no stray prefetch


def test_make_sources_choices() -> None:
    assert make_sources(MetricsSpec(), scrape_url=None, headers={}) == []
    both = make_sources(MetricsSpec(source="both", url="http://p:9090"), scrape_url="http://s/m", headers={})
    assert [s.name for s in both] == ["scrape", "prometheus"]
    scrape = make_sources(MetricsSpec(source="scrape", url="http://svc/metrics/prom"), scrape_url="http://x/y", headers={})
    assert scrape[0].url == "http://svc/metrics/prom"  # type: ignore[attr-defined]
    with pytest.raises(MetricsError, match="metrics page URL"):
        make_sources(MetricsSpec(source="scrape"), scrape_url=None, headers={})
    with pytest.raises(MetricsError, match="cannot be parsed"):
        make_sources(MetricsSpec(source="scrape", selector="{job=oops}"), scrape_url="http://s", headers={})
    with pytest.raises(MetricsError, match="unknown column"):
        make_sources(MetricsSpec(source="both", url="http://p", overrides={"p95": "x"}), scrape_url="http://s", headers={})


def test_raw_records_hold_every_query_and_answer() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=vector())

    result = run(prometheus_source(handler).sample(0.0, 60.0, FLAGS))
    queries = [line for line in result.raw if line.startswith("# prometheus query")]
    assert len(queries) >= 22 + 8 + 2  # the 3 quantities of families not exported are not asked
    assert all(json.loads(line.split("\n", 1)[1])["status"] == "success" for line in queries)


def _recording(queries: list[tuple[str, str]], requests_total: float = 118.0) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/metadata":
            return httpx.Response(200, json={"status": "success", "data": {}})
        form = dict(httpx.QueryParams(request.content.decode()))
        queries.append((form["time"], form["query"]))
        if form["query"].startswith("count by (__name__)"):
            return httpx.Response(200, json=vector(1, labels={"__name__": "http_requests_total"}))
        if form["query"].startswith("sum(") and "http_requests_total" in form["query"] and "status" not in form["query"]:
            return httpx.Response(200, json=vector(requests_total))
        return httpx.Response(200, json=vector())
    return handler


def _source(handler: Handler, **edges: object) -> PrometheusSource:
    spec = MetricsSpec(source="prometheus", url="http://prom.test", selector='{job="api"}')
    [source] = make_sources(spec, scrape_url=None, headers={},
                            transport=httpx.MockTransport(with_edges(handler, **edges)),  # type: ignore[arg-type]
                            clock=lambda: 1e12, sleep=_no_sleep)
    assert isinstance(source, PrometheusSource)
    return source


def test_window_edges_are_the_first_and_last_scrape_inside_the_window() -> None:
    """Scrapes every 10 s at :05: the window (1000, 1600] is read between the scrapes at
    1005 and 1595, never at the last scrape before 1000 (it would hold the previous window's
    traffic); the rate is divided by the 590 s covered."""
    queries: list[tuple[str, str]] = []
    result = run(_source(_recording(queries), scrape_every_s=10.0, offset_s=5.0).sample(1000.0, 1600.0, FLAGS))
    assert result.server_window is not None
    assert (result.server_window.start, result.server_window.end, result.server_window.window_s) == (1005.0, 1595.0, 590.0)
    assert result.raw[0].startswith('# prometheus query time=1600.000 expr=up{job="api"}[600000ms] -> ok')
    times = {time for time, query in queries if query.startswith("count by (__name__)")}
    assert times == {"1005.000", "1595.000"}
    quantity_times = {time for time, query in queries if not query.startswith("count by (__name__)")}
    assert quantity_times == {"1595.000"}
    requests = [q for _, q in queries if q.startswith("sum(") and "http_requests_total" in q and "status" not in q]
    assert requests and all("offset 590000ms" in q and 'instance="a:1"' in q and 'job="api"' in q for q in requests)
    assert result.values["server_requests"] == 118.0
    assert result.values["request_rate"] == pytest.approx(118.0 / 590.0)


def test_a_target_without_two_scrapes_inside_the_window_is_na() -> None:
    result = run(_source(_recording([]), scrape_every_s=700.0, offset_s=1300.0).sample(1000.0, 1600.0, FLAGS))
    assert result.server_window is None
    assert all(v is None for v in result.values.values())
    assert "1 successful scrape(s) of {instance=\"a:1\",job=\"api\"} inside the window; two are needed" in \
        result.na_reasons["server_requests"]


def test_a_selector_on_service_labels_takes_the_edges_from_its_job() -> None:
    queries: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode())) if request.url.path == "/api/v1/query" else {}
        if form.get("query", "").startswith('up{job="api",route="/a"}['):
            queries.append(form["query"])
            return httpx.Response(200, json={"status": "success", "data": {"resultType": "matrix", "result": []}})
        return with_edges(lambda r: httpx.Response(200, json=vector()))(request)

    spec = MetricsSpec(source="prometheus", url="http://prom.test", selector='{job="api",route="/a"}')
    [source] = make_sources(spec, scrape_url=None, headers={}, transport=httpx.MockTransport(handler),
                            clock=lambda: 1e12, sleep=_no_sleep)
    result = run(source.sample(0.0, 60.0, FLAGS))
    assert queries == ['up{job="api",route="/a"}[60000ms]']
    assert result.server_window is not None and result.server_window.window_s == 60.0
    assert any('expr=up{job="api"}[60000ms]' in line for line in result.raw)


def test_several_targets_are_each_diffed_between_their_own_edges() -> None:
    """Two replicas scraped at different phases: each target's queries carry its instance
    and its own edges; counts add up, rates add each one's count over its own interval."""
    seen: list[tuple[str, str]] = []
    per_instance = {"a:1": 100.0, "b:1": 60.0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/metadata":
            return httpx.Response(200, json={"status": "success", "data": {}})
        form = dict(httpx.QueryParams(request.content.decode()))
        seen.append((form["time"], form["query"]))
        query = form["query"]
        if query.startswith("count by (__name__)"):
            return httpx.Response(200, json=vector(1, labels={"__name__": "http_requests_total"}))
        instance = next((i for i in per_instance if f'instance="{i}"' in query), None)
        if query.startswith("sum(") and "http_requests_total" in query and "status" not in query and instance:
            return httpx.Response(200, json=vector(per_instance[instance]))
        return httpx.Response(200, json=vector())

    two = ({"job": "api", "instance": "a:1"}, {"job": "api", "instance": "b:1"})
    edges_a = with_edges(handler, scrape_every_s=10.0, offset_s=5.0, targets=two[:1])
    edges_b = with_edges(handler, scrape_every_s=10.0, offset_s=2.0, targets=two[1:])

    def both(request: httpx.Request) -> httpx.Response:
        a, b = edges_a(request), edges_b(request)
        if a.headers.get("content-type") == "application/json" and b"matrix" in a.content:
            merged = json.loads(a.content)
            merged["data"]["result"] += json.loads(b.content)["data"]["result"]
            return httpx.Response(200, json=merged)
        return a

    spec = MetricsSpec(source="prometheus", url="http://prom.test", selector='{job="api"}')
    [source] = make_sources(spec, scrape_url=None, headers={}, transport=httpx.MockTransport(both),
                            clock=lambda: 1e12, sleep=_no_sleep)
    result = run(source.sample(1000.0, 1600.0, FLAGS))
    a_requests = {t for t, q in seen if 'instance="a:1"' in q and "http_requests_total" in q and q.startswith("sum(")}
    b_requests = {t for t, q in seen if 'instance="b:1"' in q and "http_requests_total" in q and q.startswith("sum(")}
    assert a_requests == {"1595.000"} and b_requests == {"1592.000"}
    assert result.values["server_requests"] == 160.0
    assert result.values["request_rate"] == pytest.approx(100.0 / 590.0 + 60.0 / 590.0)
    window = result.server_window
    assert window is not None and (window.start, window.end) == (1002.0, 1595.0)


def test_scrape_mode_divides_rates_by_the_time_between_the_two_page_reads() -> None:
    pages = [page(1000), page(1060)]
    reads = iter([100.0, 130.0])  # the second page was read 30 s after the first
    spec = MetricsSpec(source="scrape", scrape_url="http://svc.test/metrics/prom")
    [source] = make_sources(spec, scrape_url=None, headers={},
                            transport=httpx.MockTransport(lambda r: httpx.Response(200, text=pages.pop(0))),
                            clock=lambda: next(reads))
    run(source.open(100.0))
    result = run(source.sample(100.0, 120.0, FLAGS))
    assert result.server_window is not None
    assert (result.server_window.start, result.server_window.end, result.server_window.window_s) == (100.0, 130.0, 30.0)
    assert result.values["request_rate"] == pytest.approx(60 / 30)
