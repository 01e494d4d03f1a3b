"""The one gate every sample value passes (columns.gate_value / gate_row), and both
sources going through it: non-finite, negative and out-of-range values become NA with a
reason naming the raw value (issue 13 item 2)."""

from __future__ import annotations

import math

import pytest

from phase5site.columns import (
    COLUMN_RANGES,
    SampleLimits,
    gate_row,
    gate_sample,
    gate_value,
)
from phase5site.metrics.counters import Measured
from phase5site.metrics.exposition import parse_exposition
from phase5site.metrics.profile import get_profile
from phase5site.metrics.prometheus_window import Presence, WindowPlan, prometheus_window_columns
from phase5site.metrics.promapi import QueryAnswer
from phase5site.metrics.scrape_window import scrape_window_columns
from phase5site.store.schema import BOOLEAN_SAMPLE_COLUMNS, JSON_SAMPLE_COLUMNS, SAMPLE_COLUMNS

from .test_scrape_window import page

TWO_CORES = SampleLimits(cpu_cores=2, memory_bytes=8 * 2**30)


def test_every_numeric_and_bucket_column_of_a_sample_has_a_range() -> None:
    keys = {"phase", "source", "timestamp", "sample_num", "na_reasons"}
    stored = set(SAMPLE_COLUMNS) - keys - set(BOOLEAN_SAMPLE_COLUMNS)
    assert stored - set(COLUMN_RANGES) == set()
    assert {c for c, r in COLUMN_RANGES.items() if r.kind == "buckets"} == set(JSON_SAMPLE_COLUMNS) - {"na_reasons"}


@pytest.mark.parametrize(
    ("column", "value", "limits", "reason"),
    [
        ("http_success_rate", 0.99, SampleLimits(), None),
        ("http_success_rate", 1.5, SampleLimits(), "raw value 1.5 is above 1"),
        ("error_rate", -0.05, SampleLimits(), "raw value -0.05 is below 0"),
        ("server_requests", math.inf, SampleLimits(), "raw value inf is not a finite number"),
        ("server_requests", math.nan, SampleLimits(), "raw value nan is not a finite number"),
        ("server_requests", 1e300, SampleLimits(), "raw value 1e+300 is above 9.0072e+15"),
        ("server_5xx", -5.0, SampleLimits(), "raw value -5.0 is below 0: a counter increase"),
        ("server_requests", 10**400, SampleLimits(), "is not a finite number"),
        ("server_requests", True, SampleLimits(), "raw value True is not a number"),
        ("rss_mb", "big", SampleLimits(), "raw value 'big' is not a number"),
        ("cpu_percent", 180.0, TWO_CORES, None),
        ("cpu_percent", 400.0, TWO_CORES, "above 250 (2 cores x 100 % x 1.25 for scrape timing)"),
        ("cpu_percent", -166.0, TWO_CORES, "raw value -166.0 is below 0"),
        ("rss_mb", 9000.0, TWO_CORES, "above 8192 (the machine's memory)"),
        ("rss_mb", 9000.0, SampleLimits(), None),  # an unknown machine may have that much
        ("effective_fallback_ratio", 1.5, SampleLimits(), None),  # a request may fall back twice
        ("p95_latency", 0.12, SampleLimits(), None),
        ("p95_latency", 1e9, SampleLimits(), "above 86400"),
        ("latency_buckets", [[0.1, 3.0], ["+Inf", 4.0]], SampleLimits(), None),
        ("latency_buckets", [(0.1, 3.0), (math.inf, 4.0)], SampleLimits(), None),
        ("latency_buckets", [[0.1, -3.0], ["+Inf", 4.0]], SampleLimits(), "bucket le=0.1: raw value -3.0 is below 0"),
        ("latency_buckets", [["+Inf", math.inf]], SampleLimits(), "bucket le='+Inf': raw value inf"),
        ("latency_buckets", '[[0.1, "x"]]', SampleLimits(), "raw value 'x' is not a number"),
        ("latency_buckets", "not json", SampleLimits(), "is not a JSON bucket list"),
        ("latency_buckets", {"le": 1}, SampleLimits(), "is not a bucket list"),
        ("latency_buckets", [[0.1]], SampleLimits(), "is not an (upper bound, count) pair"),
        ("window_end", 1e300, SampleLimits(), "above 2.53402e+11"),
        ("generator_lag_p99_ms", -0.2, SampleLimits(), None),  # two clocks: no lower bound
        ("client_p95_ms", math.inf, SampleLimits(), "not a finite number"),
        ("error_rate", None, SampleLimits(), None),
    ],
)
def test_gate_value(column: str, value: object, limits: SampleLimits, reason: str | None) -> None:
    problem = gate_value(column, value, limits)
    if reason is None:
        assert problem is None
    else:
        assert problem is not None and reason in problem


def test_a_part_larger_than_its_whole_makes_the_parts_na() -> None:
    values, reasons = gate_row({"server_requests": 100.0, "server_ok": 150.0, "server_4xx": 0.0, "server_5xx": 0.0})
    assert values["server_ok"] is None and values["server_requests"] == 100.0
    assert reasons["server_ok"] == ("raw server_ok = 150.0 exceeds server_requests = 100.0: "
                                    "a part cannot be larger than its whole")


def test_gate_sample_keeps_stored_reasons_and_replaces_garbage() -> None:
    assert gate_sample({"rss_mb": 1.0, "na_reasons": {"p95_latency": "absent"}})["na_reasons"] == {"p95_latency": "absent"}
    assert gate_sample({"rss_mb": -1.0, "na_reasons": ["not", "a", "dict"]})["na_reasons"] == {
        "rss_mb": "raw value -1.0 is below 0: resident memory in MiB cannot be"}


def _hostile_page(value: str) -> str:
    """A page whose 5xx counter, RSS and CPU all read ``value`` at the window end."""
    text = page(ok=160, e5=1, rss=104857600, cpu=20.0)
    text = text.replace('status="503"} 1', f'status="503"}} {value}')
    text = text.replace("process_resident_memory_bytes{job=\"api\"} 104857600",
                        f"process_resident_memory_bytes{{job=\"api\"}} {value}")
    return text.replace('process_cpu_seconds_total{job="api"} 20.0', f'process_cpu_seconds_total{{job="api"}} {value}')


@pytest.mark.parametrize(("raw", "shown"), [("+Inf", "inf"), ("1e400", "inf"), ("NaN", None), ("1e300", "1e+300")])
def test_scrape_mode_turns_impossible_values_into_na_naming_them(raw: str, shown: str | None) -> None:
    before = parse_exposition(page(ok=100, e5=0, cpu=10.0))
    after = parse_exposition(_hostile_page(raw))
    out = scrape_window_columns(get_profile("metasheet"), before, after, window_s=60.0, limits=TWO_CORES)
    for column in ("server_5xx", "error_rate", "error_rate_5xx", "rss_mb", "cpu_percent"):
        assert out[column].value is None, (column, out[column])
        if shown is not None:
            assert f"raw value {shown}" in (out[column].reason or ""), (column, out[column].reason)
    assert out["server_ok"].value == 60.0  # the 200s are fine and stay


def test_scrape_mode_negative_increase_cannot_give_an_error_rate_of_200_percent() -> None:
    # A counter read -5 (a broken exporter): the reset rule would count -5, which would also
    # hide inside the request total as 10 - 5; the reading itself is refused.
    before = parse_exposition(page(ok=100, e5=10))
    after = parse_exposition(page(ok=110, e5=10).replace('status="503"} 10', 'status="503"} -5'))
    out = scrape_window_columns(get_profile("metasheet"), before, after, window_s=60.0)
    assert out["server_5xx"].value is None and out["server_requests"].value is None
    assert out["server_5xx"].reason == ('metric http_requests_total{job="api",method="GET",status="503"} reads -5.0 '
                                        "at a window end: raw value -5.0 is not a counter reading (NaN, or below 0)")
    assert out["error_rate"].value is None and "raw value -5.0" in (out["error_rate"].reason or "")
    assert out["server_ok"].value == 10.0


def _answer(value: str) -> QueryAnswer:
    return QueryAnswer("q", vector=[({}, float(value))])


@pytest.mark.parametrize("raw", ["+Inf", "1e400", "-5", "1e300"])
def test_prometheus_mode_turns_impossible_values_into_na_naming_them(raw: str) -> None:
    plan = WindowPlan(get_profile("metasheet"), (), 60.0)
    quantities = {name: _answer("0") for name in plan.quantity_queries()}
    quantities.update(server_requests=_answer("100"), server_ok=_answer("95"), server_4xx=_answer("0"),
                      server_5xx=_answer(raw), rss_bytes=_answer(raw), cpu_seconds=_answer(raw),
                      latency=QueryAnswer("q", vector=[({"le": "0.1"}, 90.0), ({"le": "+Inf"}, float(raw))]))
    presence = Presence(declared=frozenset(n.removesuffix("_bucket") for n in plan.sample_names()) | frozenset(
        plan.sample_names()))
    out = prometheus_window_columns(plan, quantities, {}, {}, presence, count_cache_miss=False, limits=TWO_CORES)
    shown = repr(float(raw))
    for column in ("server_5xx", "error_rate", "rss_mb", "cpu_percent", "latency_buckets", "p95_latency"):
        assert out[column].value is None, (column, out[column])
        assert f"raw value {shown}" in (out[column].reason or ""), (column, out[column].reason)
    assert out["http_success_rate"].value == pytest.approx(0.95)
    assert all(isinstance(m, Measured) for m in out.values())
