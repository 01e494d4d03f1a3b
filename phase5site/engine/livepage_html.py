"""The live page's HTML: one self-contained document (inline CSS and script, SVG drawn by
the script itself), so it works offline and fetches nothing but ``/state.json``.

Values from the run (phase names come from the spec) are set as text, never as HTML. The
Content-Security-Policy allows exactly this style and this script (by their hashes) and
connections to the page's own origin only.
"""

from __future__ import annotations

import base64
import hashlib

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
#banner { padding: .4em .8em; border-radius: 4px; background: #e8f0fe; display: inline-block; }
#banner.ended { background: #e6f4ea; } #banner.lost { background: #fce8e6; }
.grid { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; margin-top: 1em; }
table { border-collapse: collapse; background: #fff; }
td { border-bottom: 1px solid #ddd; padding: .25em .8em; }
td:first-child { font-weight: 600; }
.chart { background: #fff; border: 1px solid #ddd; padding: .4em; }
.chart h2 { font-size: 1em; margin: 0 0 .2em; }
.note { color: #555; font-size: .9em; max-width: 60em; }
"""

SCRIPT = """
"use strict";
const ROWS = [
  ["run", s => s.run_id], ["status", s => s.status],
  ["phase", s => s.phase ? `${s.phase} (${s.phase_index}/${(s.phases || []).length})` : null],
  ["elapsed", s => s.phase ? `${fmt(s.elapsed_s, 0)} s of ${s.planned_s} s` : null],
  ["run left", s => s.run_left_s == null ? null : `${fmt(s.run_left_s, 0)} s of ${s.run_planned_s} s`],
  ["rate", s => s.phase ? `${fmt(s.achieved_rate, 1)} of ${s.target_rate} req/s` : null],
  ["sent", s => s.phase ? `${s.sent} of ${s.planned_requests}` : null],
  ["completed", s => s.completed], ["in flight", s => s.in_flight], ["dropped", s => s.dropped],
  ["errors", s => s.errors ? (Object.entries(s.errors).map(([k, v]) => `${k} ${v}`).join(", ") || "none") : null],
  ["client p95", s => s.phase ? `${fmt(s.client_p95_ms, 1)} ms` : null],
  ["send lag p99", s => s.phase ? `${fmt(s.send_lag_p99_ms, 1)} ms` : null],
  ["samples", s => s.samples_planned ? `${s.samples_done}/${s.samples_planned}` : null],
  ["SLO so far", s => s.slo_so_far == null ? null : `${s.slo_so_far} (per-sample screen; the verdict pools at the end)`],
  ["breaker", s => s.breaker], ["exit reason", s => s.exit_reason], ["updated", s => s.updated_at],
];
const CHARTS = [
  ["chart-rate", "rate (req/s): achieved, target dashed", [["rate", "#1a73e8", ""], ["target_rate", "#888", "4 3"]]],
  ["chart-p95", "client p95 so far in the phase (ms)", [["p95_ms", "#e37400", ""]]],
  ["chart-failed", "errors and drops per second", [["failed_per_s", "#d93025", ""]]],
];
const SVG = "http://www.w3.org/2000/svg";
const W = 460, H = 170, PAD = 38;
function fmt(v, digits) { return v == null ? "NA" : Number(v).toFixed(digits); }
function el(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}
function drawTable(s) {
  const body = document.getElementById("state");
  body.replaceChildren();
  for (const [label, get] of ROWS) {
    const value = get(s);
    if (value == null) continue;
    const tr = document.createElement("tr");
    const a = document.createElement("td"), b = document.createElement("td");
    a.textContent = label; b.textContent = String(value);
    b.dataset.key = label;
    tr.append(a, b); body.appendChild(tr);
  }
}
function drawChart(id, title, series, history) {
  const box = document.getElementById(id);
  box.replaceChildren();
  const h2 = document.createElement("h2"); h2.textContent = title; box.appendChild(h2);
  const svg = el("svg", {width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img"}, box);
  const values = history.flatMap(p => series.map(([key]) => p[key])).filter(v => v != null);
  const ts = history.map(p => p.t);
  const t0 = ts.length ? Math.min(...ts) : 0, t1 = ts.length ? Math.max(...ts) : 1;
  const top = values.length ? Math.max(...values) * 1.1 || 1 : 1;
  const x = t => PAD + (W - PAD - 8) * (t1 > t0 ? (t - t0) / (t1 - t0) : 0.5);
  const y = v => H - 20 - (H - 30) * (v / top);
  el("line", {x1: PAD, y1: H - 20, x2: W - 8, y2: H - 20, stroke: "#999"}, svg);
  el("line", {x1: PAD, y1: 10, x2: PAD, y2: H - 20, stroke: "#999"}, svg);
  const label = (text, attrs) => { el("text", {"font-size": 10, fill: "#555", ...attrs}, svg).textContent = text; };
  label(fmt(top, top < 10 ? 1 : 0), {x: 2, y: 14});
  label("0", {x: 2, y: H - 20});
  label(`${fmt(t0, 0)} s`, {x: PAD, y: H - 5});
  label(`${fmt(t1, 0)} s into the run`, {x: W - 120, y: H - 5});
  for (const [key, color, dash] of series) {
    const points = history.filter(p => p[key] != null).map(p => `${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`);
    if (!points.length) continue;
    el("polyline", {points: points.join(" "), fill: "none", stroke: color, "stroke-width": 1.6,
                    "stroke-dasharray": dash || "none", "data-series": key, "data-points": points.length}, svg);
  }
}
let timer = null;
function banner(text, kind) {
  const b = document.getElementById("banner");
  b.textContent = text; b.className = kind;
}
async function poll() {
  let state;
  try {
    const response = await fetch("state.json", {cache: "no-store"});
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    state = await response.json();
  } catch (error) {
    banner("no answer from the runner: the run has ended or its process stopped (see the run folder)", "lost");
    clearInterval(timer);
    return;
  }
  const s = state.status || {};
  drawTable(s);
  for (const [id, title, series] of CHARTS) drawChart(id, title, series, state.history || []);
  document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  if (s.status && s.status !== "running" && s.status !== "starting") {
    banner(`run ${s.status}: the report and the site follow in the terminal`, "ended");
    clearInterval(timer);
  } else {
    banner(`live: updated every ${state.poll_s} s from the runner's own state`, "");
  }
}
timer = setInterval(poll, 2000);
poll();
"""

PAGE_HTML = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>phase5site live run</title>
<style>{STYLE}</style>
</head>
<body>
<h1>phase5site: live run</h1>
<div id="banner">connecting to the runner...</div>
<div class="grid">
<table><tbody id="state"></tbody></table>
<div>
<div class="chart" id="chart-rate"></div>
<div class="chart" id="chart-p95"></div>
<div class="chart" id="chart-failed"></div>
</div>
</div>
<p class="note">A screen of the run while it goes, not its verdict: the client p95 here is a
live histogram estimate, the SLO line a per-sample screen. The verdict, pooled from the stored
requests and samples, is in the report written when the run ends.</p>
<script>{SCRIPT}</script>
</body>
</html>
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src {_sha256(SCRIPT)}; style-src {_sha256(STYLE)}; "
    "connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
