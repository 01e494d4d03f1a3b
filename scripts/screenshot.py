"""Screenshot of a run page of the built site, for the README (docs-dev/run-page.png).

Opens the page from ``file://`` in headless Chromium (/usr/bin/chromium through playwright),
waits until every chart is drawn, and saves the top of the page as a PNG. The browser runs
with networking extras off, so nothing leaves the machine; a request to anything but a local
file fails the script rather than ending up in the picture.

    .venv/bin/phase5site run runspecs/demo.yaml        # builds site/ at its end
    .venv/bin/python scripts/screenshot.py             # newest demo run -> docs-dev/run-page.png
    .venv/bin/python scripts/screenshot.py --page site/runs/<run>/index.html --out /tmp/x.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
MAX_BYTES = 200_000  # the README's picture stays small


def newest_run_page(site: Path, name: str) -> Path:
    pages = sorted(site.glob(f"runs/{name}-*/index.html"))
    if not pages:
        raise SystemExit(f"no run page runs/{name}-*/index.html in {site}: run `phase5site run runspecs/demo.yaml`")
    return pages[-1]  # folder names end in a UTC timestamp: the last sorts newest


def shoot(page_path: Path, out: Path, width: int, height: int, anchor: str) -> int:
    """Save the screenshot; returns its size in bytes."""
    from playwright.sync_api import sync_playwright

    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
            page.on("request", lambda r: r.url.startswith("file://") or outside.append(r.url))
            page.goto(page_path.resolve().as_uri(), wait_until="load")
            page.wait_for_function(
                "() => [...document.querySelectorAll('div.vega-chart')].every(d => d.querySelector('svg.marks'))",
                timeout=30_000)
            if anchor:  # start the picture at that section (its heading under the header bar)
                page.evaluate("(id) => { const h = document.getElementById(id);"
                              " if (h) window.scrollTo(0, h.getBoundingClientRect().top + window.scrollY - 64); }",
                              anchor)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=False)
        finally:
            browser.close()
    if outside:
        raise SystemExit(f"the page asked for something outside the site: {outside[:3]}")
    return out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=REPO / "site", help="the built site (default: site/)")
    parser.add_argument("--run", default="demo", help="spec name of the run to show (newest run of it)")
    parser.add_argument("--page", type=Path, default=None, help="a page to show instead of the newest run's")
    parser.add_argument("--out", type=Path, default=REPO / "docs-dev" / "run-page.png", help="PNG to write")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in px")
    parser.add_argument("--height", type=int, default=900, help="viewport height in px")
    parser.add_argument("--anchor", default="verdict",
                        help="id of the heading the picture starts at ('' for the top of the page)")
    args = parser.parse_args()
    page = args.page or newest_run_page(args.site, args.run)
    size = shoot(page, args.out, args.width, args.height, args.anchor)
    print(f"wrote {args.out} ({size / 1024:.0f} KiB) from {page}")
    if size > MAX_BYTES:
        print(f"warning: {size:,} bytes is over the README budget of {MAX_BYTES:,}; try a smaller --height",
              file=sys.stderr)


if __name__ == "__main__":
    main()
