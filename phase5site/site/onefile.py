"""The one-file report: a run as a single self-contained HTML file, to attach to a ticket.

Everything is inside the file: the CSS inline, each chart as the static SVG the build drew
for the run's archive (``<run>/charts/<name>.svg``, vl-convert), each chart's data as a
table in a ``<details>`` (opens without script), the icons inline SVG. It holds no script,
no link to a stylesheet, font, image or page outside itself, and an empty ``data:`` icon so
a browser does not even ask for a favicon: opened from ``file://`` it makes no request.

The same tables as the run page (``page_run``), so the file and the site never disagree.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from phase5site.errors import SiteError
from phase5site.site.assets import svg_job
from phase5site.site.charts import ChartSpec, build_charts, chart_digest, chart_table
from phase5site.site.escape import html_text
from phase5site.site.fmt import table, utc
from phase5site.site.health import health_section
from phase5site.site.page_run import (
    ONE_FILE_LABEL,
    ONE_FILE_NAME,
    decision_badge,
    event_table,
    na_reason_table,
    phase_table,
    summary_table,
    verdict_section,
)
from phase5site.site.rundata import RunData, read_run
from phase5site.site.verdicts import Evaluator, default_evaluator
from phase5site.site.vlrender import run_job

__all__ = ["ONE_FILE_LABEL", "ONE_FILE_NAME", "render_one_file", "write_one_file"]

_XML_PROLOG = re.compile(r"^\s*<\?xml[^>]*\?>\s*")
_STYLE = """
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #212121;
       margin: 0 auto; padding: 1em 2em; max-width: 110em; }
h1 { font-size: 1.7em; } h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #e0e0e0; }
.p5-table { overflow-x: auto; max-width: 100%; margin: 1em 0; }
table { border-collapse: collapse; width: 100%; font-size: .92em; }
th, td { border: 1px solid #e0e0e0; padding: .35em .6em; text-align: left; vertical-align: top;
         overflow-wrap: break-word; }
th { background: #f5f5f5; }
tr.p5-row-fail { background: #fdecea; } tr.p5-row-fail td:first-child { box-shadow: inset 4px 0 #c62828; }
tr.p5-row-na { background: #f3f3f3; } tr.p5-row-na td:first-child { box-shadow: inset 4px 0 #9e9e9e; }
tr.p5-row-invalid { background: #f3e5f5; } tr.p5-row-invalid td:first-child { box-shadow: inset 4px 0 #6a1b9a; }
tr.p5-row-other { background: #fff8e1; } tr.p5-row-other td:first-child { box-shadow: inset 4px 0 #ef6c00; }
.p5-verdict { white-space: nowrap; font-weight: 600; } .p5-icon { vertical-align: -0.25em; }
.p5-pass, .p5-go { color: #2e7d32; } .p5-fail, .p5-nogo { color: #c62828; }
.p5-na, .p5-other { color: #616161; } .p5-warn { color: #ef6c00; } .p5-invalid { color: #6a1b9a; }
.p5-chart { margin: 1.5em 0; } .p5-chart svg { max-width: 100%; height: auto; }
details { margin: .3em 0 1em; } summary { cursor: pointer; color: #3949ab; }
pre { background: #f5f5f5; padding: .8em; overflow: auto; max-height: 30em; }
"""


def _svg_markup(path: Path) -> str | None:
    """The chart's SVG, ready to sit in HTML; None when missing or holding a script (the
    file lives in a run folder anyone may have touched)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    text = _XML_PROLOG.sub("", text)
    if not text.lstrip().startswith("<svg") or re.search(r"<script|\son[a-z]+\s*=|href\s*=\s*[\"']?(?!#)", text, re.I):
        return None
    return text


def _data_table(chart: ChartSpec) -> str:
    columns, rows = chart_table(chart.spec)
    body = [[utc(at / 1000), *("NA" if value is None else value for value in values)] for at, *values in rows]
    return str(table(["time (UTC)", *columns], body, css="p5-chart-data"))


def _chart(chart: ChartSpec, charts_dir: Path) -> str:
    svg = _svg_markup(charts_dir / f"{chart.name}.svg")
    drawn = svg if svg is not None else (
        f"<p>The chart {html_text(chart.name)} has no static SVG in {html_text(charts_dir)}: "
        "run <code>phase5site build</code> (or this command again) to draw it.</p>")
    # No caption: the SVG draws the chart's title itself; the label names it for screen readers.
    return (f'<figure class="p5-chart" aria-label="{html_text(chart.title)}">'
            f"{drawn}<details><summary>Data table</summary>{_data_table(chart)}</details></figure>")


def render_one_file(run: RunData, charts: list[ChartSpec], charts_dir: Path) -> str:
    """The whole report as one HTML document (see the module docstring)."""
    description = run.spec.get("description") or ""
    sections = [
        f"<h1>Run {html_text(run.name)}</h1>",
        f"<p>{html_text(description)}</p>" if description else "",
        f"<p>Decision: {decision_badge(run)}. Written by phase5site from the run's store; every "
        "number can be recomputed from its run.duckdb; NA means it could not be measured.</p>",
        summary_table(run),
        "<h2>Verdict</h2>", verdict_section(run),
        "<h2>Charts</h2>",
        "<p>Time axis: UTC clock time; dashed grey lines mark phase starts, dashed red lines the SLO targets.</p>",
        "\n".join(_chart(chart, charts_dir) for chart in charts) or "<p>No chart has data.</p>",
        "<h2>Phases</h2>", phase_table(run),
        "<h2>Generator health and drops</h2>", health_section(run),
        "<h2>Events</h2>", event_table(run),
        "<h2>NA reasons</h2>", na_reason_table(run),
    ]
    body = "\n".join(section for section in sections if section)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,">'
            f"<title>Run {html_text(run.slug)}: {html_text(decision_badge(run).striptags())}</title>"
            f"<style>{_STYLE}</style></head>\n<body>\n{body}\n"
            f"<footer><p>Generated {html_text(utc(run.run.get('ended_at')))} UTC run end; "
            f"run folder {html_text(run.run_dir.name)}.</p></footer>\n</body></html>\n")


def _ensure_svgs(run: RunData, charts: list[ChartSpec]) -> Path:
    """The folder holding the run's chart SVGs, drawing any that is missing (here, in
    process: one run's handful of charts). A read-only run folder (an archive) keeps what
    it has; missing charts are then named in the report."""
    folder = run.run_dir / "charts"
    try:
        index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {}
    for chart in charts:
        target = folder / f"{chart.name}.svg"
        if index.get(chart.name) != chart_digest(chart) or not target.exists():
            run_job(svg_job(chart.spec, target))  # drawn for this report; the next build re-checks it
    return folder


def write_one_file(run_dir: Path, out: Path, evaluator: Evaluator | None = None) -> Path:
    """Read a run, judge it (``reporting.evaluate_run``) and write its one-file report to
    ``out``; returns ``out``. Raises ``SiteError`` for an unreadable run or an unwritable file."""
    run = read_run(Path(run_dir), evaluator or default_evaluator())
    charts = build_charts(run)
    html = render_one_file(run, charts, _ensure_svgs(run, charts))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    except OSError as error:
        raise SiteError(f"cannot write {out}: {error.strerror or error}", "choose another --html path") from error
    return out
