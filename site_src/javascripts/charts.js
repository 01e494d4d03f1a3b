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

  // document$ alone is not enough: opened from file:// (site/index.html) Material completes
  // document$ without a value, so also render once the page itself has loaded. A chart is
  // rendered once whichever comes first (data-rendered marks it).
  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(renderCharts);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", renderCharts);
  } else {
    renderCharts();
  }
})();
