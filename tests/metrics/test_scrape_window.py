"""Window arithmetic over two scrapes: resets, absent families, NA ratios, selectors."""

from __future__ import annotations

import json
import math

import pytest

from phase5site.columns import SERVER_COUNT_COLUMNS
from phase5site.errors import MetricsError
from phase5site.metrics.columns import SOURCE_COLUMNS
from phase5site.metrics.counters import (
    buckets_from_json, counter_increase, window_bucket_deltas, window_increase,
)
from phase5site.metrics.exposition import parse_exposition
from phase5site.metrics.profile import get_profile, required_families
from phase5site.metrics.scrape_window import scrape_window_columns
from phase5site.metrics.selectors import parse_selector

PROFILE = get_profile("metasheet")
BOUNDS = ["0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2", "5", "+Inf"]


def page(
    ok: int = 0, e4: int = 0, e5: int = 0, *, job: str = "api", buckets: list[int] | None = None,
    fallback: dict[str, int] | None = None, effective: int | None = None, rss: int = 104857600,
    cpu: float = 10.0, hits: int = 0, misses: int = 0, omit: tuple[str, ...] = (),
) -> str:
    """A MetaSheet-like page; ``omit`` drops whole families (no HELP/TYPE either)."""
    parts: dict[str, list[str]] = {}
    parts["http_requests_total"] = ["# TYPE http_requests_total counter"] + [
        f'http_requests_total{{job="{job}",method="GET",status="{s}"}} {n}'
        for s, n in (("200", ok), ("404", e4), ("503", e5)) if n
    ]
    cumulative = buckets or [ok + e4 + e5] * len(BOUNDS)
    parts["http_server_requests_seconds"] = ["# TYPE http_server_requests_seconds histogram"] + [
        f'http_server_requests_seconds_bucket{{job="{job}",le="{le}",route="/a"}} {c}'
        for le, c in zip(BOUNDS, cumulative)
    ]
    parts["process_resident_memory_bytes"] = [f'process_resident_memory_bytes{{job="{job}"}} {rss}']
    parts["process_cpu_seconds_total"] = [f'process_cpu_seconds_total{{job="{job}"}} {cpu}']
    parts["metasheet_fallback_total"] = ["# TYPE metasheet_fallback_total counter"] + [
        f'metasheet_fallback_total{{job="{job}",reason="{r}"}} {n}' for r, n in (fallback or {}).items()
    ]
    if effective is not None:
        parts["metasheet_fallback_effective_total"] = [
            f'metasheet_fallback_effective_total{{job="{job}"}} {effective}']
    parts["cache"] = [f'cache_hits_total{{job="{job}"}} {hits}', f'cache_miss_total{{job="{job}"}} {misses}']
    for name in ("metasheet_http_adapter_ops_total", "metasheet_message_bus_rpc_attempts_total",
                 "metasheet_cache_get_attempts_total", "metasheet_plugin_reload_total",
                 "metasheet_snapshot_create_total", "metasheet_snapshot_restore_total"):
        parts[name] = [f"# TYPE {name} counter"]
    for name in ("metasheet_plugin_reload_duration_seconds", "metasheet_snapshot_operation_duration_seconds"):
        parts[name] = [f"# TYPE {name} histogram"]
    return "\n".join(line for name, lines in parts.items() if name not in omit for line in lines) + "\n"


def window(before: str, after: str, window_s: float = 60.0, profile: str = "metasheet",
           **kwargs: object) -> dict[str, object]:
    measured = scrape_window_columns(
        get_profile(profile), parse_exposition(before), parse_exposition(after), window_s=window_s, **kwargs  # type: ignore[arg-type]
    )
    assert set(measured) == set(SOURCE_COLUMNS)
    for column, m in measured.items():
        assert (m.value is None) == (m.reason is not None), column
    return {column: m.value for column, m in measured.items()} | {
        f"why:{column}": m.reason for column, m in measured.items() if m.value is None
    }


@pytest.mark.parametrize(("previous", "current", "expected"), [
    (100, 160, 60), (100, 100, 0), (100, 7, 7), (100, 0, 0), (None, 5, None), (5, None, None),
    (0, 1e9, 1e9), (math.nan, 3, None),
])
def test_counter_increase(previous: float | None, current: float | None, expected: float | None) -> None:
    assert counter_increase(previous, current) == expected


def test_normal_window() -> None:
    values = window(page(100, 2, 1, cpu=10, hits=90, misses=10, fallback={"cache_miss": 1}),
                    page(1100, 12, 6, cpu=13, hits=990, misses=110, fallback={"cache_miss": 5, "http_error": 2}),
                    window_s=100)
    assert values["server_requests"] == 1015
    assert values["server_ok"] == 1000
    assert values["http_success_rate"] == pytest.approx(1000 / 1015)
    assert values["error_rate"] == pytest.approx(15 / 1015)
    assert values["error_rate_4xx"] == pytest.approx(10 / 1015)
    assert values["error_rate_5xx"] == pytest.approx(5 / 1015)
    assert values["request_rate"] == pytest.approx(10.15)
    assert values["cpu_percent"] == pytest.approx(3.0)
    assert values["rss_mb"] == pytest.approx(100.0)
    assert values["cache_hit_rate"] == pytest.approx(900 / 1000)
    assert (values["cache_hits_raw"], values["cache_misses_raw"]) == (900, 100)
    # the http_error series appeared mid-window (created on its first increment): from 0
    assert values["raw_fallback_total"] == 6
    assert values["fallback_cache"] == 4
    assert values["fallback_http"] == 2
    assert values["effective_fallback_total"] == 2  # raw minus cache_miss (family absent)
    assert values["p50_latency"] is not None
    assert buckets_from_json(values["latency_buckets"])[-1] == (math.inf, 1015.0)  # type: ignore[arg-type]


def test_counter_reset_mid_window() -> None:
    # process restarted: counters start again from 0 and reached 40 / 2
    values = window(page(5000, 0, 10), page(40, 0, 2))
    assert values["server_requests"] == 42
    assert values["server_5xx"] == 2
    assert values["error_rate_5xx"] == pytest.approx(2 / 42)


def test_metric_absent_in_one_scrape_is_na_not_zero() -> None:
    values = window(page(100, omit=("http_requests_total", "cache")), page(200))
    for column in ("server_requests", "http_success_rate", "error_rate", "request_rate",
                   "raw_fallback_ratio", "cache_hit_rate", "cache_hits_raw"):
        assert values[column] is None, column
    assert "absent at window start" in values["why:server_requests"]  # type: ignore[operator]
    # columns from other families are unaffected
    assert values["p95_latency"] is not None and values["rss_mb"] is not None
    values = window(page(100), page(200, omit=("process_resident_memory_bytes",)))
    assert values["rss_mb"] is None and "absent" in values["why:rss_mb"]  # type: ignore[operator]


def test_zero_requests_gives_na_ratios() -> None:
    values = window(page(100, 1, 1), page(100, 1, 1))
    assert values["server_requests"] == 0
    assert values["request_rate"] == 0
    for column in ("http_success_rate", "error_rate", "error_rate_4xx", "error_rate_5xx",
                   "raw_fallback_ratio", "effective_fallback_ratio", "cache_hit_rate",
                   "plugin_reload_success_rate", "snapshot_success_rate"):
        assert values[column] is None, column
        assert "denominator zero" in values[f"why:{column}"]  # type: ignore[operator]
    assert values["why:fb_http_ratio"] == "not exported by this service: metasheet_http_adapter_ops_total"
    old = window(page(100, 1, 1), page(100, 1, 1), profile="metasheet-2025")
    assert "denominator zero" in old["why:fb_http_ratio"]  # type: ignore[operator]
    for column in ("p50_latency", "p99_latency", "plugin_reload_p95", "snapshot_operation_p99"):
        assert values[column] is None and "no observations" in values[f"why:{column}"]  # type: ignore[operator]


def test_empty_window_has_no_rates() -> None:
    values = window(page(100), page(100), window_s=0.0)
    assert values["request_rate"] is None and values["cpu_percent"] is None
    assert "empty window" in values["why:request_rate"]  # type: ignore[operator]


def test_latency_quantiles_from_bucket_deltas() -> None:
    before = page(100, buckets=[50, 80, 90, 95, 100, 100, 100, 100, 100, 100])
    after = page(200, buckets=[50, 80, 90, 95, 100, 150, 190, 200, 200, 200])
    values = window(before, after)
    # all 100 new requests are in (0.25, 0.5] x50, (0.5, 1] x40, (1, 2] x10
    assert values["p50_latency"] == pytest.approx(0.5)
    assert values["p95_latency"] == pytest.approx(1 + 1 * (95 - 90) / 10)
    assert json.loads(values["latency_buckets"])[5] == [0.5, 50.0]  # type: ignore[arg-type]


def test_summary_only_service_gives_na_quantiles() -> None:
    summary = ('# TYPE http_server_requests_seconds_summary summary\n'
               'http_server_requests_seconds_summary{quantile="0.95"} 0.004\n'
               'http_server_requests_seconds_summary_count 10\n')
    before = page(10, omit=("http_server_requests_seconds",)) + summary
    after = page(20, omit=("http_server_requests_seconds",)) + summary.replace("count 10", "count 20")
    values = window(before, after)
    assert values["p95_latency"] is None
    assert "http_server_requests_seconds_bucket absent" in values["why:p95_latency"]  # type: ignore[operator]
    assert values["latency_buckets"] is None
    assert values["server_requests"] == 10  # counters still measured
    # ... unless the spec points the column at the summary's quantile (a gauge read)
    values = window(before, after,
                    overrides={"p95_latency": 'http_server_requests_seconds_summary{quantile="0.95"}'})
    assert values["p95_latency"] == pytest.approx(0.004)


def test_label_selector_filters_every_series() -> None:
    before = page(100, job="api") + page(1000, 50, 50, job="other")
    after = page(200, job="api") + page(5000, 500, 500, job="other")
    values = window(before, after, selector=parse_selector('{job="api"}'))
    assert values["server_requests"] == 100
    assert values["error_rate"] == 0
    assert values["rss_mb"] == pytest.approx(100.0)
    for selector, expected in (('{job!="api"}', 4900), ('{job=~"oth.*"}', 4900), ('{job!~"a.*"}', 4900),
                               ('{job=~"api|other"}', 5000), ("", 5000)):
        values = window(before, after, selector=parse_selector(selector))
        assert values["server_requests"] == expected, selector


def test_effective_fallback_rules() -> None:
    before = page(100, fallback={"cache_miss": 10, "http_error": 5})
    after = page(200, fallback={"cache_miss": 14, "http_error": 8})
    assert window(before, after)["effective_fallback_total"] == 3
    assert window(before, after, count_cache_miss=True)["effective_fallback_total"] == 7
    reported = window(page(100, fallback={"cache_miss": 10}, effective=20),
                      page(200, fallback={"cache_miss": 15}, effective=21), count_cache_miss=True)
    assert reported["effective_fallback_total"] == 1
    assert reported["effective_fallback_ratio"] == pytest.approx(0.01)
    no_family = window(page(100, omit=("metasheet_fallback_total",)), page(200, omit=("metasheet_fallback_total",)))
    assert no_family["effective_fallback_total"] is None
    assert no_family["fallback_http"] is None


def test_declared_family_without_series_counts_zero() -> None:
    values = window(page(100), page(200), profile="metasheet-2025")
    assert values["raw_fallback_total"] == 0
    assert values["http_adapter_ops"] == 0
    assert values["fb_http_ratio"] is None  # 0 / 0
    # The current service has no such family: declared on a page or not, NA by design.
    current = window(page(100), page(200))
    assert current["http_adapter_ops"] is None
    assert current["why:http_adapter_ops"].startswith("not exported by this service")  # type: ignore[union-attr]


def test_count_override_keeps_profile_matchers() -> None:
    before = page(100) + 'my_fallbacks_total{reason="http_error"} 1\nmy_fallbacks_total{reason="cache_miss"} 1\n'
    after = page(200) + 'my_fallbacks_total{reason="http_error"} 4\nmy_fallbacks_total{reason="cache_miss"} 9\n'
    values = window(before, after, overrides={"fallback_http": "my_fallbacks_total"})
    assert values["fallback_http"] == 3


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(MetricsError, match="p95_latncy"):
        window(page(1), page(2), overrides={"p95_latncy": "x"})


def test_bucket_deltas_pool_series_and_ignore_bad_le() -> None:
    a = parse_exposition('h_bucket{le="0.1",r="a"} 1\nh_bucket{le="0.1",r="b"} 2\nh_bucket{le="x"} 1\n'
                         'h_bucket{le="+Inf",r="a"} 2\nh_bucket{le="+Inf",r="b"} 2\n')
    b = parse_exposition('h_bucket{le="0.1",r="a"} 4\nh_bucket{le="0.1",r="b"} 5\nh_bucket{le="x"} 9\n'
                         'h_bucket{le="+Inf",r="a"} 6\nh_bucket{le="+Inf",r="b"} 5\n')
    assert window_bucket_deltas(a, b, "h").value == [(0.1, 6.0), (math.inf, 7.0)]
    assert window_increase(a, b, "h_bucket", parse_selector('{r="a"}')).value == 7.0


def test_required_families_covers_profile() -> None:
    names = required_families("metasheet")
    assert "http_requests_total" in names
    assert "http_server_requests_seconds_bucket" in names
    assert "metasheet_fallback_effective_total" not in names
    assert set(SERVER_COUNT_COLUMNS) <= set(SOURCE_COLUMNS)


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(st.lists(st.integers(0, 10_000), min_size=2, max_size=30))
def test_window_increases_add_up_and_are_never_negative(steps: list[int]) -> None:
    """Without resets the windows' Δ add up to last − first; with resets every Δ is ≥ 0 and
    the total is the sum of the counts reached after each restart."""
    increasing = [sum(steps[: i + 1]) for i in range(len(steps))]
    scrapes = [parse_exposition(f"c_total {v}\n") for v in increasing]
    deltas = [window_increase(a, b, "c_total").value for a, b in zip(scrapes, scrapes[1:])]
    assert sum(deltas) == increasing[-1] - increasing[0]  # type: ignore[arg-type]
    restarted = [parse_exposition(f"c_total {v}\n") for v in steps]  # may go down: resets
    deltas = [window_increase(a, b, "c_total").value for a, b in zip(restarted, restarted[1:])]
    assert all(d is not None and d >= 0 for d in deltas)  # type: ignore[operator]
    expected = sum(b if b < a else b - a for a, b in zip(steps, steps[1:]))
    assert sum(deltas) == expected  # type: ignore[arg-type]


def test_first_errors_of_a_burst_are_counted() -> None:
    # Before the burst the service has never answered 503, so its {status="503"} series
    # does not exist yet (client libraries create it on the first increment). The window
    # in which the burst starts must show those errors, not an error rate of 0.
    values = window(page(1000), page(1950, 0, 50))
    assert values["server_requests"] == 1000
    assert values["server_5xx"] == 50
    assert values["error_rate_5xx"] == pytest.approx(0.05)
    assert values["http_success_rate"] == pytest.approx(0.95)
