"""Sources and the Prometheus client with injected transports and clocks (no sockets, no sleep)."""

from __future__ import annotations

import asyncio
import json
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


def prometheus_source(handler: Handler, **kwargs: object) -> PrometheusSource:
    spec = MetricsSpec(source="prometheus", url="http://prom.test:9090", **kwargs)  # type: ignore[arg-type]
    [source] = make_sources(spec, scrape_url=None, headers={}, transport=httpx.MockTransport(handler),
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
    [source] = make_sources(spec, scrape_url=None, headers={}, transport=httpx.MockTransport(handler),
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
