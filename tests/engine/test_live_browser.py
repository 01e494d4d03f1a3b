"""``phase5site run SPEC --live`` in a real headless Chromium: the page updates while a short
run against the embedded simulator goes (the sent count grows between two reads, the
charts draw lines), asks nothing of any host but 127.0.0.1, logs no console error, and
shows no secret; the server stops with the run."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .helpers import fake_token

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = pytest.mark.browser
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]

SPEC = """
version: 1
name: live
target:
  embedded: {seed: 4}
  auth: {bearer: "${LIVE_TEST_JWT}"}
phases:
  - {name: main, rate: 20, concurrency: 4, duration: 25, observe: false}
"""


def _sent(page) -> int:  # type: ignore[no-untyped-def]
    text = page.locator("td[data-key='sent']").text_content(timeout=60_000) or ""
    return int(text.split(" ")[0])


def test_the_live_page_updates_during_a_run_and_stops_with_it(tmp_path: Path) -> None:
    assert CHROMIUM.exists(), "/usr/bin/chromium is required for the browser tests"
    from playwright.sync_api import sync_playwright

    token = fake_token()
    spec = tmp_path / "live.yaml"
    spec.write_text(SPEC)
    process = subprocess.Popen(
        [sys.executable, "-m", "phase5site", "run", str(spec), "--live", "--no-site", "--skip-verify",
         "--results-dir", str(tmp_path / "results")],
        env={**os.environ, "LIVE_TEST_JWT": token}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        cwd=tmp_path, text=True)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        url = None
        while url is None:
            line = lines.get(timeout=120)
            found = re.search(r"live page: (http://127\.0\.0\.1:\d+/)", line)
            url = found.group(1) if found else None
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                 args=LAUNCH_ARGS)
            try:
                page = browser.new_page()
                problems: list[str] = []
                host = urlsplit(url).netloc
                page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
                page.on("request", lambda r: urlsplit(r.url).scheme in ("http", "https", "ws", "wss")
                        and urlsplit(r.url).netloc != host and problems.append(f"outside request: {r.url}"))
                page.goto(url, wait_until="load")
                page.wait_for_function(
                    "() => { const td = document.querySelector(\"td[data-key='sent']\");"
                    " return td && parseInt(td.textContent) > 0; }", timeout=90_000)
                first = _sent(page)
                page.wait_for_function(
                    f"() => parseInt(document.querySelector(\"td[data-key='sent']\").textContent) > {first}",
                    timeout=60_000)
                second = _sent(page)
                assert second > first
                # The rate chart has drawn a line of several per-second points.
                page.wait_for_function(
                    "() => { const l = document.querySelector(\"#chart-rate polyline[data-series='rate']\");"
                    " return l && Number(l.dataset.points) >= 2; }", timeout=60_000)
                assert page.locator("#chart-p95 svg").count() == 1
                assert page.locator("#chart-failed svg").count() == 1
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "live-page.png"), full_page=True)
                with urllib.request.urlopen(url + "state.json", timeout=30) as response:
                    state_text = response.read().decode()
                state = json.loads(state_text)
                assert state["status"]["status"] == "running" and state["history"]
                assert token not in state_text and token not in page.content()
                assert not problems, problems  # while the run went
                process.wait(timeout=240)
                # The page learns how the run ended (or that its server is gone) without a
                # script error; its polling stops either way.
                page.wait_for_function("() => ['ended', 'lost'].includes(document.getElementById('banner').className)",
                                       timeout=30_000)
                assert not [p for p in problems if p.startswith("page error")], problems
            finally:
                browser.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = "".join(output)
    # the run ended by itself: GO / NO-GO / INVALID, or NOT-EVALUATED (its phase takes no samples)
    assert process.returncode in (0, 3, 5, 6), text
    assert text.count("live page: ") == 1, text  # the URL is printed once
    with pytest.raises(OSError):  # the server stopped with the run
        urllib.request.urlopen(url + "state.json", timeout=5)
