"""The built site in a real headless Chromium: every page loads with no console error, no
failed request and no request leaving the local server; every chart renders as SVG, also
after Material's instant navigation."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(built_site, site_httpd) -> Iterator[str]:  # type: ignore[no-untyped-def]
    thread = threading.Thread(target=site_httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{site_httpd.server_address[1]}"
    finally:
        site_httpd.shutdown()


@pytest.fixture(scope="module")
def page(server: str):  # type: ignore[no-untyped-def]
    assert CHROMIUM.exists(), "/usr/bin/chromium is required for the browser tests"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.problems = []  # type: ignore[attr-defined]
            host = urlsplit(server).netloc
            page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
            page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: page.problems.append(f"failed: {r.url} {r.failure}"))
            page.on("response", lambda r: r.status >= 400 and page.problems.append(f"HTTP {r.status}: {r.url}"))

            def check_host(request) -> None:  # type: ignore[no-untyped-def]
                parts = urlsplit(request.url)
                if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != host:
                    page.problems.append(f"outside request: {request.url}")

            page.on("request", check_host)
            # The synthetic runs name a request <script>alert(1)</script>: a dialog means it ran.
            page.on("dialog", lambda d: (page.problems.append(f"dialog: {d.message}"), d.dismiss()))
            yield page
        finally:
            browser.close()


def _all_pages(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if p.name != "404.html")


def _charts_rendered(page) -> None:  # type: ignore[no-untyped-def]
    count = page.locator("div.vega-chart").count()
    if count:
        page.wait_for_function(
            "() => [...document.querySelectorAll('div.vega-chart')].every(d => d.querySelector('svg.marks'))",
            timeout=20_000)
    rendered = page.locator("div.vega-chart svg.marks").count()
    assert rendered == count, f"{page.url}: {rendered} of {count} charts rendered"


def test_every_page_loads_cleanly_and_renders_its_charts(built_site, server, page) -> None:  # type: ignore[no-untyped-def]
    pages = _all_pages(built_site.site)
    assert any(p.startswith("runs/") for p in pages) and "generated/reference.html" in pages
    for path in pages:
        # networkidle: leave no request (e.g. the search worker) in flight to be aborted.
        page.goto(f"{server}/{path}", wait_until="networkidle")
        _charts_rendered(page)
        assert not page.problems, f"{path}: {page.problems}"


def test_charts_render_after_instant_navigation(built_site, server, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/index.html", wait_until="networkidle")
    page.wait_for_function("() => window.document$ !== undefined")
    page.evaluate("() => { window.__p5_marker = 1; }")
    page.locator("nav.md-nav a.md-nav__link", has_text="Overview").first.click()
    page.wait_for_url("**/generated/overview.html")
    page.locator(".p5-runs table").wait_for(state="attached", timeout=20_000)
    run_link = page.locator(".p5-runs a", has_text="day1-production-baseline").first
    run_link.click()
    page.wait_for_url("**/runs/day1-production-baseline-*/index.html")
    # The URL changes before the new content is swapped in: wait for the run page itself.
    page.locator("div.vega-chart").first.wait_for(state="attached", timeout=20_000)
    # Instant navigation swaps the content without a new document: the marker survives.
    assert page.evaluate("() => window.__p5_marker") == 1, "the nav reloaded the page instead of instant navigation"
    assert page.locator("div.vega-chart").count() >= 5
    _charts_rendered(page)
    assert not page.problems, page.problems
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "run-page.png"), full_page=True)


def test_charts_render_when_the_site_is_opened_as_files(built_site, page) -> None:  # type: ignore[no-untyped-def]
    """The README says `site/index.html` can be opened directly: with file:// Material never
    emits document$, so charts.js must render on page load too."""
    run_page = next(built_site.site.glob("runs/day1-production-baseline-*/index.html"))
    context = page.context.browser.new_context()  # its own context: no listeners of `page`
    try:
        file_page = context.new_page()
        errors: list[str] = []
        file_page.on("pageerror", lambda e: errors.append(str(e)))
        file_page.goto(run_page.as_uri(), wait_until="load")
        assert file_page.locator("div.vega-chart").count() >= 5
        _charts_rendered(file_page)
        assert not errors, errors
    finally:
        context.close()


def test_the_per_request_table_sorts_by_a_clicked_column(built_site, server, page) -> None:  # type: ignore[no-untyped-def]
    (run_page,) = [p for p in _all_pages(built_site.site) if p.startswith("runs/day1-") and p.endswith("index.html")]
    page.goto(f"{server}/{run_page}", wait_until="networkidle")
    table = page.locator("div.p5-endpoints table")
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    column = headers.index("p95 ms")

    def p95_values() -> list[float]:
        cells = table.locator(f"tbody tr td:nth-child({column + 1})").all_inner_texts()
        return [float(c.replace("≥", "").strip()) for c in cells]

    table.locator("thead th").nth(column).click()
    ascending = p95_values()
    assert len(ascending) >= 3 and ascending == sorted(ascending)
    table.locator("thead th").nth(column).click()
    assert p95_values() == sorted(ascending, reverse=True)
    assert table.locator("thead th").nth(column).get_attribute("aria-sort") == "descending"
    # the request named <script>alert(1)</script> is shown as text, never run (the dialog hook)
    assert "<script>alert(1)</script>" in table.inner_text()
    assert not page.problems, page.problems


# Every table of the page either fits in the viewport, or sits in a scroll container that
# fits and really scrolls (overflow-x auto/scroll): no column is clipped or hidden. Returns
# one line per offending table.
_LAYOUT_PROBLEMS = """
() => {
  const viewport = document.documentElement.clientWidth;
  const problems = [];
  document.querySelectorAll("article table").forEach((table, index) => {
    const name = `table ${index} (${(table.closest("[class^='p5-']") || table).className || "markdown"})`;
    const box = table.closest(".p5-table") || table.closest(".md-typeset__scrollwrap");
    const own = table.getBoundingClientRect();
    if (own.width === 0) { problems.push(`${name}: not displayed`); return; }
    if (!box) {
      if (own.right > viewport + 1) problems.push(`${name}: right edge ${own.right} > ${viewport}`);
      return;
    }
    const outer = box.getBoundingClientRect();
    if (outer.right > viewport + 1 || outer.left < -1) {
      problems.push(`${name}: its container spans ${outer.left}..${outer.right}, viewport ${viewport}`);
    }
    const overflowX = getComputedStyle(box).overflowX;
    if (box.scrollWidth > box.clientWidth + 1 && !["auto", "scroll"].includes(overflowX)) {
      problems.push(`${name}: ${box.scrollWidth}px wide in ${box.clientWidth}px with overflow-x ${overflowX}`);
    }
    for (const cell of table.querySelectorAll("thead th")) {
      if (cell.getBoundingClientRect().width < 8) problems.push(`${name}: a header cell is squeezed away`);
    }
  });
  return problems;
}
"""


def _open(page, url: str) -> None:  # type: ignore[no-untyped-def]
    """Leave the previous page first, then forget what its leaving cost: a request still in
    flight there (Material's favicon, fetched late) is aborted by the navigation, which is no
    fault of the page opened next."""
    page.goto("about:blank")
    page.problems.clear()
    page.goto(url, wait_until="networkidle")


def _layout_pages(site: Path) -> list[str]:
    runs = sorted(p.relative_to(site).as_posix() for p in site.glob("runs/*/index.html"))
    return ["index.html", "generated/overview.html", "generated/comparison.html", "generated/completion.html",
            "generated/slo.html", *runs]


@pytest.mark.parametrize("width", [1280, 768])
def test_no_table_is_cut_off_or_hidden(built_site, server, page, width: int) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": width, "height": 900})
    try:
        for path in _layout_pages(built_site.site):
            _open(page, f"{server}/{path}")
            assert not page.problems, page.problems
            assert page.locator("article table").count() > 0, path
            assert page.evaluate(_LAYOUT_PROBLEMS) == [], f"{path} at {width} px"
            if width == 1280 and path.startswith("runs/"):
                # The content column takes the width (no table of contents beside it).
                share = page.evaluate("() => document.querySelector('article').clientWidth / window.innerWidth")
                assert share > 0.7, f"{path}: content is {share:.0%} of the window"
                overflow = page.evaluate(
                    "() => { const d = document.querySelector('.p5-verdicts'); return d.scrollWidth - d.clientWidth; }")
                assert overflow <= 1, f"{path}: the verdict table needs {overflow}px more at 1280 px"
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
    assert not page.problems, page.problems


def test_fail_rows_are_highlighted(built_site, server, page) -> None:  # type: ignore[no-untyped-def]
    """The hostile run has 5% errors: its success-rate rows FAIL and stand out in colour."""
    path = next(built_site.site.glob("runs/imported-hostile-*/index.html")).relative_to(built_site.site)
    _open(page, f"{server}/{path.as_posix()}")
    fail_rows = page.locator(".p5-verdicts tr.p5-row-fail")
    assert fail_rows.count() >= 1
    assert all("FAIL" in text for text in fail_rows.all_inner_texts())
    colours = page.evaluate("""() => {
        const fail = document.querySelector('.p5-verdicts tr.p5-row-fail');
        const plain = [...document.querySelectorAll('.p5-verdicts tbody tr')].find(r => !r.className);
        return [getComputedStyle(fail).backgroundColor, plain && getComputedStyle(plain).backgroundColor];
    }""")
    assert colours[0] not in ("rgba(0, 0, 0, 0)", "transparent", colours[1]), colours
    assert not page.problems, page.problems


def test_home_page_shows_the_release_decision(built_site, server, page) -> None:  # type: ignore[no-untyped-def]
    """day1 GO and day2 INVALID count: the release is INVALID, with day2's reason; the run
    tagged test is listed apart."""
    _open(page, f"{server}/index.html")
    head = page.locator(".p5-decision-head")
    assert " ".join(head.inner_text().split()) == "Release decision: INVALID"
    block = page.locator(".p5-decision").inner_text()
    assert "day2-extended: INVALID" in block and "the load generator was delayed 612 ms" in block
    evidence = page.locator(".p5-evidence tbody tr")
    assert evidence.count() == 2
    assert "day1-production-baseline" in evidence.all_inner_texts()[0]
    left_out = page.locator(".p5-left-out tbody tr").all_inner_texts()
    assert len(left_out) == 1 and "tagged test" in left_out[0] and "NO-GO" in left_out[0]
    page.locator(".p5-evidence a", has_text="day1-production-baseline").click()
    page.wait_for_url("**/runs/day1-production-baseline-*/index.html")
    page.locator("div.vega-chart").first.wait_for(state="attached", timeout=20_000)
    _charts_rendered(page)
    page.wait_for_load_state("networkidle")  # leave nothing in flight for the next test to abort
    assert not page.problems, page.problems


def test_a_chart_data_table_is_one_click_away(built_site, server, page) -> None:  # type: ignore[no-untyped-def]
    path = next(built_site.site.glob("runs/day1-production-baseline-*/index.html")).relative_to(built_site.site)
    _open(page, f"{server}/{path.as_posix()}")
    details = page.locator('details.p5-chart-data[data-chart="chart-latency"]')
    assert details.locator("table").count() == 0
    details.locator("summary").click()
    table = details.locator("table")
    table.wait_for(state="attached", timeout=10_000)
    headers = table.locator("th").all_inner_texts()
    assert headers[0] == "time (UTC)" and "client p95" in headers and "server p95" in headers
    first = table.locator("tbody tr").first.locator("td").all_inner_texts()
    assert first[0].startswith("2026-11-18 11:0")  # day1 starts 2026-11-18 11:06:40 UTC
    assert table.locator("tbody tr").count() >= 140  # 140 s of per-second rows and 4 samples
    assert not page.problems, page.problems


def test_one_file_report_opens_from_file_with_no_request(built_site, page) -> None:  # type: ignore[no-untyped-def]
    report = next(built_site.site.glob("runs/day1-production-baseline-*/report.html"))
    context = page.context.browser.new_context(java_script_enabled=False)
    try:
        file_page = context.new_page()
        requests: list[str] = []
        file_page.on("request", lambda r: requests.append(r.url))
        file_page.goto(report.as_uri(), wait_until="load")
        assert requests == [report.as_uri()]
        assert file_page.locator("figure.p5-chart svg").count() >= 5
        assert file_page.locator("script").count() == 0
        assert file_page.locator("h1").inner_text() == "Run day1-production-baseline"
        assert file_page.locator(".p5-go").count() >= 1  # day1's decision, GO
        details = file_page.locator("figure.p5-chart details").first
        details.locator("summary").click()  # no script: the table is already there
        assert details.locator("tbody tr").count() > 0
        ARTIFACTS.mkdir(exist_ok=True)
        file_page.screenshot(path=str(ARTIFACTS / "one-file-report.png"))
    finally:
        context.close()
