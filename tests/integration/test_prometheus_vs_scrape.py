"""One run, two server-side paths: Prometheus (scraping the embedded target every 1 s) and
direct scrapes of the same target, sampling the same windows of a short paced load.

Why the counters are compared with a tolerance: Prometheus mode diffs the first and the last
scrape it holds inside the window (up to one scrape interval after its start and before its
end), while the scrape source reads the page at the window edges. Each edge may therefore
differ by the requests served in that gap (rate x scrape interval), and no more; each
source divides its rates by the interval its own readings span (``server_window_s``).
tests/integration/test_prometheus_windows.py checks the Prometheus count exactly. Over the whole run, after the load has
stopped and both paths have seen the final page, the totals must agree within ±1.

Latencies: a latency stall of 150 ms on every request puts server and client latencies
in the same histogram bucket, (0.1, 0.25] s, well away from its edges, so "same bucket"
tests the measurement paths rather than luck at a bucket boundary.
"""

from __future__ import annotations

import bisect
import json
import math
import time
from pathlib import Path

import httpx
import pytest

from phase5site.engine import run_spec
from phase5site.metrics.local_prometheus import LocalPrometheus
from phase5site.quantiles import histogram_quantile
from phase5site.runspec import parse_spec_text
from phase5site.runspec.models import EmbeddedSpec, FaultSpec
from phase5site.store import RunReader
from phase5site.simulator import start_target
from phase5site.simulator.metrics import HTTP_BUCKETS_S

pytestmark = pytest.mark.prometheus
RATE = 40
SCRAPE_INTERVAL_S = 1.0
STALL_MS = 150.0
SPEC = """
version: 1
name: prom-vs-scrape
target:
  base_url: {base_url}
  allow_hosts: [127.0.0.1]
  timeout: 5s
metrics:
  source: both
  url: {prometheus}
  scrape_url: {metrics_url}
  selector: '{{job="metasheet-api"}}'
circuit_breaker: {{enabled: false}}
phases:
  - {{name: baseline, rate: {rate}, concurrency: 20, samples: 2, interval: 4s}}
"""


def bucket_index(seconds: float) -> int:
    """Index of the histogram bucket (upper bounds HTTP_BUCKETS_S, then +Inf) holding a value."""
    return bisect.bisect_left(HTTP_BUCKETS_S, seconds)


def wait_for_total(prom: LocalPrometheus, expected: float) -> float:
    deadline = time.monotonic() + 30
    value = math.nan
    while time.monotonic() < deadline:
        rows = prom.query('sum(http_requests_total{job="metasheet-api"})')
        value = float(rows[0]["value"][1]) if rows else math.nan
        if abs(value - expected) <= 1:
            return value
        time.sleep(0.25)
    return value


def test_prometheus_and_scrape_agree_on_the_same_windows(tmp_path: Path) -> None:
    stall = FaultSpec(kind="latency_stall", at=0, duration=600, delay_ms=STALL_MS)
    target = start_target(EmbeddedSpec(seed=7, faults=[stall]))
    try:
        host_port = target.base_url.removeprefix("http://")
        with LocalPrometheus([host_port], workdir=tmp_path / "prom", interval_s=SCRAPE_INTERVAL_S) as prom:
            # prom-client creates a labelled series at its first event: one request first.
            assert httpx.get(target.base_url + "/health", timeout=5).status_code == 200
            prom.wait_for_series('http_requests_total{job="metasheet-api"}')
            text = SPEC.format(base_url=target.base_url, metrics_url=target.metrics_url,
                               prometheus=prom.base_url, rate=RATE)
            outcome = run_spec(parse_spec_text(text, "prom-vs-scrape.yaml", {}), results_dir=tmp_path / "results")
            assert outcome.status == "completed", outcome.exit_reason
            served = target.request_count()
            prometheus_total = wait_for_total(prom, served)
            page_total = sum(float(line.rsplit(" ", 1)[1]) for line in
                             httpx.get(target.metrics_url).text.splitlines()
                             if line.startswith("http_requests_total{"))
    finally:
        target.stop()

    with RunReader(outcome.run_dir) as reader:
        prom_rows = {r["sample_num"]: r for r in reader.samples(phase="baseline", source="prometheus")}
        scrape_rows = {r["sample_num"]: r for r in reader.samples(phase="baseline", source="scrape")}
        sent = reader.outcome_counts(phase="baseline")
    assert sorted(prom_rows) == sorted(scrape_rows) == [1, 2]

    # Whole run: every path counted the same requests.
    client_total = sum(n for o, n in sent.items() if o != "dropped")
    assert abs(page_total - served) <= 1
    assert abs(prometheus_total - page_total) <= 1
    assert abs(client_total - page_total) <= 1

    edge_gap = RATE * SCRAPE_INTERVAL_S + 1
    for k in (1, 2):
        p, s = prom_rows[k], scrape_rows[k]
        print(f"window {k}: requests prometheus {p['server_requests']:g} scrape {s['server_requests']:g}; "
              f"p95 prometheus {p['p95_latency']:.4f} scrape {s['p95_latency']:.4f} "
              f"client {s['client_p95_ms'] / 1000:.4f} s")
        assert (p["window_start"], p["window_end"]) == (s["window_start"], s["window_end"])
        assert s["server_requests"] >= 0.8 * RATE * 4
        for column in ("server_requests", "server_ok"):
            assert abs(p[column] - s[column]) <= 2 * edge_gap, (k, column, p[column], s[column])
        for column in ("p50_latency", "p90_latency", "p95_latency", "p99_latency"):
            assert p[column] is not None and s[column] is not None, (k, column)
            assert bucket_index(p[column]) == bucket_index(s[column]), (k, column, p[column], s[column])
        # client-side p95 (exact, ms) is never below the server-side p95's bucket: the
        # client's time contains the server's. How far above is this machine's load (a CPU
        # hog put a 150 ms stall at 262 ms on the client, one bucket up), so no upper bound.
        assert bucket_index(s["client_p95_ms"] / 1000.0) >= bucket_index(s["p95_latency"]), (
            k, s["client_p95_ms"], s["p95_latency"])
        assert bucket_index(p["p95_latency"]) == bucket_index(STALL_MS / 1000.0)
        # and the stored p95 is the interpolation over the stored bucket deltas
        stored = s["latency_buckets"]
        pairs = json.loads(stored) if isinstance(stored, str) else stored
        buckets = [(math.inf if b == "+Inf" else float(b), c) for b, c in pairs]
        assert histogram_quantile(0.95, buckets) == pytest.approx(s["p95_latency"])
