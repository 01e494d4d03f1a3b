"""The run page's charts as Vega-Lite specs, built with Altair from aggregated rows.

Every chart shares the time axis (UTC clock time: a reader lines a spike up with the
service's own dashboards and logs, which speak clock time, not seconds since our start) and
marks phase boundaries with dashed rules named after the phase. A chart whose every value is
NA is left out (the page says so) rather than drawn empty.

Altair validates every object against the Vega-Lite schema as it is built; that check is
switched off while charts are built (``debug_mode(False)``): it cost about half of the
chart time of a build and the specs are built from fixed code, checked by the tests (which
render every chart in a real browser).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

import altair as alt
from altair.utils.schemapi import debug_mode

from phase5site.site.rundata import RunData
from phase5site.site.series import (
    bucket_seconds,
    has_values,
    per_second_rows,
    sample_rows,
)

HEIGHT_PX = 220


@dataclass(frozen=True)
class ChartSpec:
    name: str  # file-safe, e.g. "latency"
    title: str
    spec: dict[str, Any]  # Vega-Lite


def chart_digest(chart: ChartSpec) -> str:
    """The hash of a chart's spec: its static SVG is redrawn only when this changes."""
    return hashlib.sha256(json.dumps(chart.spec, sort_keys=True).encode()).hexdigest()


def _lines(rows: list[dict[str, Any]], columns: dict[str, str], y_title: str,
           *, points: bool = False, y_format: str | None = None, by_source: bool = False) -> alt.Chart:
    """Wide rows folded into one line per column; ``columns`` maps field -> legend label.

    With ``by_source`` the labels read "<source> <measure>" (``client p95``): colour shows the
    measure and the dash the source, so client and server lines of one quantile match.
    """
    renamed = [{"at": row["at"], **{label: row.get(field) for field, label in columns.items()}}
               for row in rows]
    axis = alt.Axis(format=y_format) if y_format else alt.Axis()
    chart = (alt.Chart(_data(renamed))
             .transform_fold(list(columns.values()), as_=["series", "value"])
             .transform_filter("datum.value != null")
             .mark_line(point=points, strokeWidth=1.5))
    tooltip = [alt.Tooltip("at:T", title="UTC", format="%Y-%m-%d %H:%M:%S", formatType="utc"),
               alt.Tooltip("series:N", title="series"), alt.Tooltip("value:Q", format=".4~g")]
    x = alt.X("at:T", title="time (UTC)", scale=alt.Scale(type="utc"))
    y = alt.Y("value:Q", title=y_title, axis=axis)
    if by_source:
        return chart.transform_calculate(
            source="split(datum.series, ' ')[0]", measure="split(datum.series, ' ')[1]"
        ).encode(x=x, y=y, color=alt.Color("measure:N", title=None),
                 # The dash legend draws no visible symbol beside point layers: titles say it.
                 strokeDash=alt.StrokeDash("source:N", sort=["client", "server"], legend=None),
                 tooltip=tooltip)
    return chart.encode(x=x, y=y, color=alt.Color("series:N", title=None, sort=list(columns.values())),
                        tooltip=tooltip)


def _thresholds(lines: list[tuple[str, float]]) -> list[alt.Chart]:
    if not lines:
        return []
    data = _data([{"label": label, "y": value} for label, value in lines])
    rule = alt.Chart(data).mark_rule(color="#c62828", strokeDash=[6, 3]).encode(y="y:Q")
    # Labels sit at the right edge, away from the phase names at the top left.
    text = alt.Chart(data).mark_text(align="right", dx=-4, dy=-6, color="#c62828", fontSize=10).encode(
        y="y:Q", x=alt.value({"expr": "width"}), text="label:N")
    return [rule, text]


def _phase_marks(boundaries: list[dict[str, Any]]) -> list[alt.Chart]:
    data = _data(boundaries)
    x = alt.X("at:T", scale=alt.Scale(type="utc"))
    rule = alt.Chart(data).mark_rule(color="#757575", strokeDash=[2, 2]).encode(x=x)
    text = alt.Chart(data).mark_text(align="left", baseline="top", dx=3, dy=2, color="#616161",
                                     fontSize=10).encode(x=x, y=alt.value(0), text="phase:N")
    return [rule, text]


# Rows of a chart wait here, under a placeholder name, until the spec is a plain dict:
# Altair's to_dict deep-copies inline values object by object, which was most of the chart
# time of a long run (900 points x 9 series x 8 charts). Filled and emptied within one
# build_charts call.
_WAITING: dict[str, list[dict[str, Any]]] = {}
_NAMES = itertools.count()


def _data(rows: list[dict[str, Any]]) -> alt.Data:
    name = f"p5rows{next(_NAMES)}"
    _WAITING[name] = rows
    return alt.Data(name=name)


def _fill(node: Any) -> Any:
    """Put the waiting rows back where their placeholder is: ``{"data": {"values": rows}}``,
    the same spec Altair would have written with inline values."""
    if isinstance(node, dict):
        data = node.get("data")
        if isinstance(data, dict) and data.get("name") in _WAITING:
            node["data"] = {"values": _WAITING[data["name"]]}
        for value in node.values():
            _fill(value)
    elif isinstance(node, list):
        for value in node:
            _fill(value)
    return node


def _layer(name: str, title: str, layers: list[alt.Chart], phase_marks: list[alt.Chart]) -> ChartSpec:
    chart = alt.layer(*layers, *phase_marks).properties(
        title=title, width="container", height=HEIGHT_PX)
    return ChartSpec(name, title, _fill(chart.to_dict(validate=False)))


def _phase_offsets(run: RunData) -> tuple[dict[str, float], list[dict[str, Any]]]:
    start = run.started_at or 0.0
    offsets = {p["name"]: float(p.get("started_at") or start) - start for p in run.phases}
    marks = [{"t_s": round(offsets[p["name"]], 1), "phase": p["name"]} for p in run.phases]
    return offsets, with_clock(marks, start)


def with_clock(rows: list[dict[str, Any]], run_started_at: float) -> list[dict[str, Any]]:
    """Add ``at``, the UTC instant of ``t_s`` in epoch milliseconds (Vega-Lite's time unit).

    Example: ``with_clock([{"t_s": 1.5}], 1_795_000_000.0)`` -> ``[{"t_s": 1.5, "at": 1795000001500}]``.
    """
    for row in rows:
        row["at"] = round((run_started_at + float(row["t_s"])) * 1000)
    return rows


def build_charts(run: RunData) -> list[ChartSpec]:
    """Every chart of the run page that has data, in page order."""
    try:
        with debug_mode(False):
            return _build_charts(run)
    finally:
        _WAITING.clear()


def _build_charts(run: RunData) -> list[ChartSpec]:
    start = run.started_at or 0.0
    offsets, boundaries = _phase_offsets(run)
    marks = _phase_marks(boundaries)  # built once: Altair objects are slow to construct
    total_s = sum(len(rows) for rows in run.per_second.values())
    bucket_s = bucket_seconds(total_s)
    lengths = {p["name"]: float(p["ended_at"]) - float(p["started_at"]) for p in run.phases
               if p.get("started_at") is not None and p.get("ended_at") is not None}
    seconds = with_clock(per_second_rows(run.per_second, offsets, bucket_s, lengths), start)
    samples = with_clock(sample_rows(run.samples, start, run.primary_source), start)
    slo = run.slo()
    per = "per second" if bucket_s == 1 else f"per {bucket_s}-s bucket, worst second"
    charts = [
        _latency(seconds, samples, slo, per, marks),
        _rate(run, seconds, samples, per, marks, boundaries, bucket_s),
        _errors(seconds, samples, per, marks),
        _send_lag(seconds, per, marks),
        _sample_chart("fallback", "Fallback ratio: raw vs effective, by source (per sample)", samples,
                      {"raw_fallback_ratio": "raw", "effective_fallback_ratio": "effective",
                       "fb_http_ratio": "http", "fb_message_ratio": "message", "fb_cache_ratio": "cache"},
                      "ratio", marks, [("effective max", slo.get("effective_fallback_max"))], ".1%"),
        _sample_chart("cache", "Cache hit rate (per sample)", samples, {"cache_hit_rate": "hit rate"},
                      "ratio", marks, [("target", slo.get("cache_hit_rate_min", 0.8))], ".0%"),
        _sample_chart("memory", "Resident memory (per sample)", samples, {"rss_mb": "RSS"}, "MiB",
                      marks, [("mean RSS max", slo.get("rss_mean_mb_max"))]),
        _sample_chart("cpu", "CPU (per sample)", samples, {"cpu_percent": "CPU"}, "percent", marks, []),
        _sample_chart("plugins", "Plugin reload and snapshot durations (per sample)", samples,
                      {"plugin_reload_p95_ms": "reload p95", "plugin_reload_p99_ms": "reload p99",
                       "snapshot_operation_p95_ms": "snapshot p95",
                       "snapshot_operation_p99_ms": "snapshot p99"}, "ms", marks, []),
    ]
    return [chart for chart in charts if chart is not None]


def _latency(seconds: list[dict[str, Any]], samples: list[dict[str, Any]], slo: dict[str, Any],
             per: str, marks: list[alt.Chart]) -> ChartSpec | None:
    client = {"p50_ms": "client p50", "p95_ms": "client p95", "p99_ms": "client p99"}
    server = {"server_p50_ms": "server p50", "server_p95_ms": "server p95", "server_p99_ms": "server p99"}
    layers = []
    if has_values(seconds, client):
        layers.append(_lines(seconds, client, "latency (ms)", by_source=True))
    if has_values(samples, server):
        layers.append(_lines(samples, server, "latency (ms)", points=True, by_source=True))
    if not layers:
        return None
    lines = [(f"P{q} SLO {slo[k]:g} ms", float(slo[k]))
             for q, k in (("95", "latency_p95_ms"), ("99", "latency_p99_ms")) if slo.get(k) is not None]
    return _layer("latency", f"Latency: client (solid, {per}) vs server (dashed, per sample)",
                  layers + _thresholds(lines), marks)


def _rate(run: RunData, seconds: list[dict[str, Any]], samples: list[dict[str, Any]], per: str,
          marks: list[alt.Chart], boundaries: list[dict[str, Any]], bucket_s: int) -> ChartSpec | None:
    if not seconds:
        return None
    offsets = {b["phase"]: b["t_s"] for b in boundaries}
    target = []
    for phase in run.phases:
        start = offsets.get(phase["name"], 0.0)
        length = phase.get("planned_duration_s") or 0.0
        target += [{"t_s": start, "target": phase.get("rate")},
                   {"t_s": round(start + float(length), 1), "target": phase.get("rate")}]
    with_clock(target, run.started_at or 0.0)
    layers = [_lines(seconds, {"achieved_rate": "achieved (client)"}, "requests per second"),
              _lines(target, {"target": "target"}, "requests per second")]
    if has_values(samples, ["request_rate"]):
        layers.append(_lines(samples, {"request_rate": "server"}, "requests per second", points=True))
    return _layer("rate", f"Request rate: target vs achieved ({per if bucket_s == 1 else f'mean per {bucket_s}-s bucket'})",
                  layers, marks)


def _errors(seconds: list[dict[str, Any]], samples: list[dict[str, Any]], per: str,
            marks: list[alt.Chart]) -> ChartSpec | None:
    client = {"share_4xx": "client 4xx", "share_5xx": "client 5xx", "share_transport": "client transport",
              "share_dropped": "client dropped"}
    server = {"error_rate_4xx": "server 4xx", "error_rate_5xx": "server 5xx"}
    layers = []
    if has_values(seconds, client):
        layers.append(_lines(seconds, client, "share of requests", y_format=".1%", by_source=True))
    if has_values(samples, server):
        layers.append(_lines(samples, server, "share of requests", points=True, y_format=".1%",
                             by_source=True))
    if not layers:
        return None
    title = ("Error rate 4xx / 5xx / transport / dropped: client (solid, " + per.replace(", worst second", "")
             + ", of every request intended) and server (dashed, per sample)")
    return _layer("errors", title, layers, marks)


def _send_lag(seconds: list[dict[str, Any]], per: str, marks: list[alt.Chart]) -> ChartSpec | None:
    """Largest send lag per second: of every send, and of those with a free slot (the load
    generator's own delay: a busy host shows here, not in the service's latency)."""
    columns = {"send_lag_max_ms": "every send", "generator_lag_max_ms": "slot free (own lag)"}
    if not has_values(seconds, columns):
        return None
    return _layer("send-lag", f"Send lag: actual minus intended send time, largest ({per})",
                  [_lines(seconds, columns, "send lag (ms)")], marks)


def _sample_chart(name: str, title: str, samples: list[dict[str, Any]], columns: dict[str, str],
                  y_title: str, marks: list[alt.Chart], lines: list[tuple[str, Any]],
                  y_format: str | None = None) -> ChartSpec | None:
    present = {field: label for field, label in columns.items() if has_values(samples, [field])}
    if not present:
        return None
    fmt = (lambda v: f"{v:.0%}") if y_format and "%" in y_format else (lambda v: f"{v:g}")
    rules = [(f"{label} {fmt(float(value))}", float(value)) for label, value in lines if value is not None]
    return _layer(name, title, [_lines(samples, present, y_title, points=True, y_format=y_format),
                                *_thresholds(rules)], marks)


_NOT_SERIES = frozenset({"at", "t_s", "phase", "label", "y", "sample"})


def chart_table(spec: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The data behind a chart as one table: a row per instant (UTC epoch ms in ``at``), a
    column per series. charts.js builds the same table in the browser from the same spec.

    Example: layers with values ``[{"at": 0, "client p95": 40}]`` and ``[{"at": 0, "target": 80}]``
    -> ``(["client p95", "target"], [[0, 40, 80]])`` (the first cell of each row is ``at``).
    """
    columns: list[str] = []
    by_instant: dict[int, dict[str, Any]] = {}
    for layer in spec.get("layer", []):
        for row in (layer.get("data") or {}).get("values", []) or []:
            names = [key for key in row if key not in _NOT_SERIES]
            if "at" not in row or not names:
                continue  # phase marks and SLO lines: drawn, but not data
            cells = by_instant.setdefault(int(row["at"]), {})
            for name in names:
                if name not in columns:
                    columns.append(name)
                if row[name] is not None:
                    cells[name] = row[name]
    rows = [[at, *(cells.get(name) for name in columns)] for at, cells in sorted(by_instant.items())]
    return columns, rows
