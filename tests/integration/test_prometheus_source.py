"""PrometheusSource against a real Prometheus, compared with ScrapeSource on the same page.

The page moves from state A to state B; Prometheus scrapes it every second. Both sources
measure the window (A, B]: counters must agree exactly (boundary difference), quantiles
too (Prometheus' histogram_quantile over bucket deltas vs ours), absent and declared-only
families must give the same NA / 0, and a reset counter falls back to ``increase``.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import pytest

from phase5site.metrics.local_prometheus import LocalPrometheus, PageServer
from phase5site.metrics.sources import SampleResult, make_sources
from phase5site.runspec.models import FlagsSpec, MetricsSpec

pytestmark = pytest.mark.prometheus
BOUNDS = ["0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2", "5", "+Inf"]


def page(ok: int, e5: int, buckets: list[int], *, hits: int, misses: int, fallback: dict[str, int],
         other_job_requests: int, restarted: int, rpc: int) -> str:
    lines = [
        "# TYPE http_requests_total counter",
        f'http_requests_total{{method="GET",status="200"}} {ok}',
        f'http_requests_total{{method="GET",status="503"}} {e5}',
        f'http_requests_total{{method="POST",status="200",tier="x"}} {other_job_requests}',
        "# TYPE http_server_requests_seconds histogram",
        *[f'http_server_requests_seconds_bucket{{le="{le}",route="/a"}} {c}' for le, c in zip(BOUNDS, buckets)],
        "# TYPE process_resident_memory_bytes gauge",
        "process_resident_memory_bytes 209715200",
        "# TYPE process_cpu_seconds_total counter",
        f"process_cpu_seconds_total {restarted / 10}",
        "# TYPE metasheet_fallback_total counter",
        *[f'metasheet_fallback_total{{reason="{r}"}} {n}' for r, n in fallback.items()],
        f"cache_hits_total {hits}",
        f"cache_miss_total {misses}",
        "# TYPE metasheet_http_adapter_ops_total counter",
        f"metasheet_http_adapter_ops_total {restarted}",
        f"metasheet_message_bus_rpc_attempts_total {rpc}",
        "# HELP metasheet_plugin_reload_total declared, never incremented",
        "# TYPE metasheet_plugin_reload_total counter",
    ]
    return "\n".join(lines) + "\n"


STATE_A = page(1000, 10, [500, 800, 900, 950, 990, 1000, 1010, 1010, 1010, 1010], hits=90, misses=10,
               fallback={"cache_miss": 4, "http_error": 1}, other_job_requests=7, restarted=900, rpc=900)
# restarted inside the window: rpc attempts fall to 5, then grow past the old value
STATE_MID = STATE_A.replace("metasheet_message_bus_rpc_attempts_total 900", "metasheet_message_bus_rpc_attempts_total 5")
STATE_B = page(1600, 40, [700, 1200, 1400, 1500, 1560, 1620, 1635, 1640, 1640, 1640], hits=180, misses=30,
               fallback={"cache_miss": 9, "http_error": 3}, other_job_requests=50, restarted=30, rpc=1000)


def wait_until_scraped(prom: LocalPrometheus, expr: str, expected: float) -> float:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        result = prom.query(expr)
        if result and float(result[0]["value"][1]) == expected:
            return time.time()
        time.sleep(0.2)
    raise AssertionError(f"Prometheus never saw {expr} == {expected}")


def test_prometheus_and_scrape_sources_agree(tmp_path: Path) -> None:
    with PageServer(STATE_A) as server, LocalPrometheus([server.target], workdir=tmp_path) as prom:
        # The page is shaped like the 2025 service's (it still had the adapter/RPC families).
        spec = MetricsSpec(source="both", url=prom.base_url, scrape_url=server.url,
                           selector='{tier!="x"}', profile="metasheet-2025")
        results = asyncio.run(_measure(spec, prom, server))
    scrape, prometheus = results["scrape"], results["prometheus"]
    assert scrape.values["server_requests"] == 630
    assert scrape.values["server_5xx"] == 30
    assert scrape.values["rss_mb"] == pytest.approx(200.0)
    assert scrape.values["raw_fallback_total"] == 7
    assert scrape.values["effective_fallback_total"] == 2  # raw minus cache_miss (family absent)
    assert scrape.values["plugin_reload_success"] == 0  # declared, no series
    assert scrape.values["snapshot_create_success"] is None  # not exported at all
    rates = ("request_rate", "cpu_percent")  # each divided by the interval its own readings span
    exact = [c for c, v in scrape.values.items()
             if isinstance(v, float) and c not in ("message_bus_rpc_attempts", "fb_message_ratio", *rates)]
    for column in exact:
        assert prometheus.values[column] == pytest.approx(scrape.values[column], rel=1e-9), column
    assert prometheus.server_window is not None and scrape.server_window is not None
    for result in (prometheus, scrape):
        window_s = result.server_window.window_s  # type: ignore[union-attr]
        assert result.values["request_rate"] == pytest.approx(630 / window_s)
        assert result.values["cpu_percent"] == pytest.approx(
            (scrape.values["cpu_percent"] * scrape.server_window.window_s) / window_s)  # type: ignore[operator]
    for column in ("latency_buckets", "plugin_reload_buckets"):
        assert prometheus.values[column] == scrape.values[column], column
    assert set(prometheus.na_reasons) == set(scrape.na_reasons)
    assert "absent" in prometheus.na_reasons["snapshot_create_success"]
    # reset seen at the boundaries (900 -> 30): both apply the reset rule
    assert scrape.values["http_adapter_ops"] == prometheus.values["http_adapter_ops"] == 30
    # reset inside the window, regrown past the old value (900 -> 5 -> 1000): the scrapes
    # only see +100; Prometheus sees the reset and uses increase() (>= 1000, extrapolated)
    assert scrape.values["message_bus_rpc_attempts"] == 100
    assert prometheus.values["message_bus_rpc_attempts"] >= 1000  # type: ignore[operator]
    assert any("resets(" in line for line in prometheus.raw)


async def _measure(spec: MetricsSpec, prom: LocalPrometheus, server: PageServer) -> dict[str, SampleResult]:
    sources = make_sources(spec, scrape_url=None, headers={}, settle_s=0.0)
    by_name = {source.name: source for source in sources}
    requests = 'sum(http_requests_total{status="200",method="GET"})'
    window_start = await asyncio.to_thread(wait_until_scraped, prom, requests, 1000)
    await by_name["scrape"].open(window_start)
    # resets() only sees samples inside the window: let one more scrape of A land in it
    await asyncio.to_thread(wait_until_scraped, prom,
                            f"timestamp(metasheet_message_bus_rpc_attempts_total) > bool {window_start}", 1)
    server.text = STATE_MID
    await asyncio.to_thread(wait_until_scraped, prom, "metasheet_message_bus_rpc_attempts_total", 5)
    server.text = STATE_B
    window_end = await asyncio.to_thread(wait_until_scraped, prom, requests, 1600)
    flags = FlagsSpec()
    results = {name: await source.sample(window_start, window_end, flags) for name, source in by_name.items()}
    for source in sources:
        await source.aclose()
    for result in results.values():
        assert set(result.na_reasons) == {c for c, v in result.values.items() if v is None}
        assert not any(isinstance(v, float) and math.isnan(v) for v in result.values.values())
    return results
