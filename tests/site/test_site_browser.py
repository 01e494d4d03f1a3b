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
