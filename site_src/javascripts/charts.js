/* Render every chart on the page with vega-embed (from generated/assets/vega-bundle.js).
 * Charts are <div class="vega-chart" data-vega-spec='...'> holding a Vega-Lite spec.
 * Material's document$ emits on the first load and after every instant navigation, so
 * charts on pages reached through the nav render too. Nothing is fetched from the network. */
(function () {
  "use strict";

  function renderCharts() {
    var charts = document.querySelectorAll("div.vega-chart:not([data-rendered])");
    charts.forEach(function (element) {
      element.setAttribute("data-rendered", "pending");
      var spec;
      try {
        spec = JSON.parse(element.getAttribute("data-vega-spec"));
      } catch (error) {
        console.error("chart " + element.id + ": spec is not valid JSON", error);
        return;
      }
      window.vegaEmbed(element, spec, { renderer: "svg", actions: false })
        .then(function () { element.setAttribute("data-rendered", "done"); })
        .catch(function (error) { console.error("chart " + element.id + " failed", error); });
    });
  }

  // A chart's data table (site/charts.py chart_table does the same in Python): one row per
  // instant, one column per series, from the spec's own data; phase marks and SLO lines
  // (rows without a series value) are left out. Built when its <details> opens.
  var NOT_SERIES = { at: 1, t_s: 1, phase: 1, label: 1, y: 1, sample: 1 };

  function utcText(ms) {
    return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
  }

  function chartTable(spec) {
    var columns = [], byInstant = {}, instants = [];
    (spec.layer || []).forEach(function (layer) {
      ((layer.data || {}).values || []).forEach(function (row) {
        var names = Object.keys(row).filter(function (k) { return !NOT_SERIES[k]; });
        if (row.at === undefined || !names.length) { return; }
        if (!byInstant[row.at]) { byInstant[row.at] = {}; instants.push(row.at); }
        names.forEach(function (name) {
          if (columns.indexOf(name) < 0) { columns.push(name); }
          if (row[name] !== null) { byInstant[row.at][name] = row[name]; }
        });
      });
    });
    instants.sort(function (a, b) { return a - b; });
    var table = document.createElement("table");
    var head = table.createTHead().insertRow();
    ["time (UTC)"].concat(columns).forEach(function (name) {
      var th = document.createElement("th"); th.textContent = name; head.appendChild(th);
    });
    var body = table.createTBody();
    instants.forEach(function (at) {
      var tr = body.insertRow();
      tr.insertCell().textContent = utcText(at);
      columns.forEach(function (name) {
        var value = byInstant[at][name];
        tr.insertCell().textContent = value === undefined ? "NA" : String(value);
      });
    });
    var box = document.createElement("div");
    box.className = "p5-table";
    box.appendChild(table);
    return box;
  }

  function wireDataTables() {
    document.querySelectorAll("details.p5-chart-data:not([data-wired])").forEach(function (details) {
      details.setAttribute("data-wired", "1");
      details.addEventListener("toggle", function () {
        if (!details.open || details.querySelector("table")) { return; }
        var chart = document.getElementById(details.getAttribute("data-chart"));
        try {
          details.appendChild(chartTable(JSON.parse(chart.getAttribute("data-vega-spec"))));
        } catch (error) {
          console.error("data table of " + details.getAttribute("data-chart") + " failed", error);
        }
      });
    });
  }

  function renderPage() {
    renderCharts();
    wireDataTables();
  }

  // document$ alone is not enough: opened from file:// (site/index.html) Material completes
  // document$ without a value, so also render once the page itself has loaded. A chart is
  // rendered once whichever comes first (data-rendered marks it).
  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(renderPage);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", renderPage);
  } else {
    renderPage();
  }
})();
