"""parse_exposition: every fixture page parses; escapes, summaries, declared families."""

from __future__ import annotations

from pathlib import Path

import pytest

from phase5site.metrics.exposition import family_candidates, parse_exposition
from phase5site.metrics.selectors import parse_selector

FIXTURES = Path("/work/shared/fixtures/metasheet2")
RAW_FILES = sorted(FIXTURES.glob("*/raw-metrics.txt"))


def test_fixtures_exist() -> None:
    assert len(RAW_FILES) >= 20


@pytest.mark.parametrize("path", RAW_FILES, ids=[p.parent.name for p in RAW_FILES])
def test_every_fixture_page_parses(path: Path) -> None:
    text = path.read_text()
    scrape = parse_exposition(text)
    sample_lines = [
        line for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    assert len(scrape.samples) == len(sample_lines)
    assert scrape.skipped_lines == ()
    assert scrape.series("process_resident_memory_bytes")
    assert scrape.declared["http_requests_total"] == "counter"


def test_fixture_values_read_correctly() -> None:
    scrape = parse_exposition((FIXTURES / "phase5-20251124-200917/raw-metrics.txt").read_text())
    assert scrape.series("http_requests_total") == {(("method", "GET"), ("status", "200")): 6046.0}
    health = parse_selector('{route="/health", le="+Inf"}')
    assert list(scrape.series("http_server_requests_seconds_bucket", health).values()) == [2026.0]
    summary = scrape.series("http_server_requests_seconds_summary", parse_selector('{quantile="0.99", route="/health"}'))
    assert list(summary.values()) == [pytest.approx(0.0007092135426666667)]
    # labelled counter declared without samples: present, no series
    assert scrape.series("metasheet_fallback_total") == {}
    assert scrape.has_family("metasheet_fallback_total")
    assert not scrape.has_family("metasheet_fallback_effective_total")


PAGE = r'''# HELP req_total Requests "quoted" help
# TYPE req_total counter
req_total{path="/a\"b",note="line\nbreak",back="c:\\d"} 7
# TYPE lat_seconds histogram
lat_seconds_bucket{le="0.1"} 3
lat_seconds_bucket{le="+Inf"} 5
lat_seconds_sum 0.9
lat_seconds_count 5
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 0.01
rpc_seconds_sum 4
rpc_seconds_count 100
# HELP only_help_total declared by HELP only
stamped_total 9 1700000000000
'''


def test_escapes_histograms_summaries_and_timestamps() -> None:
    scrape = parse_exposition(PAGE)
    labels = {"path": '/a"b', "note": "line\nbreak", "back": "c:\\d"}
    assert scrape.series("req_total") == {tuple(sorted(labels.items())): 7.0}
    assert scrape.series("lat_seconds_bucket", parse_selector('{le="+Inf"}')) == {(("le", "+Inf"),): 5.0}
    assert scrape.series("rpc_seconds_count") == {(): 100.0}
    assert scrape.series("stamped_total") == {(): 9.0}
    assert scrape.declared == {
        "req_total": "counter", "lat_seconds": "histogram", "rpc_seconds": "summary",
        "only_help_total": "untyped",
    }
    assert scrape.has_family("lat_seconds_bucket") and scrape.has_family("only_help_total")


def test_non_exposition_lines_are_skipped_and_reported() -> None:
    text = "=== Sample 3 at 2025-11-24 13:48:21 ===\n" + PAGE + "curl: (7) Failed to connect\n"
    scrape = parse_exposition(text)
    assert [line for _, line in scrape.skipped_lines] == [
        "=== Sample 3 at 2025-11-24 13:48:21 ===", "curl: (7) Failed to connect",
    ]
    assert scrape.skipped_lines[0][0] == 1
    assert scrape.series("req_total")


def test_parser_rejection_falls_back_line_by_line() -> None:
    # Unquoted label values pass the line filter but prometheus_client rejects them.
    text = "# TYPE ok_total counter\nok_total 1\nbad{b=c} 2\n"
    scrape = parse_exposition(text)
    assert scrape.series("ok_total") == {(): 1.0}
    assert scrape.skipped_lines == ((3, "bad{b=c} 2"),)


def test_family_candidates() -> None:
    assert family_candidates("x_seconds_bucket") == ["x_seconds_bucket", "x_seconds"]
