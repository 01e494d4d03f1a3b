/* Click a column header of a table inside <div class="p5-sortable"> to sort its rows by that
 * column; a second click reverses the order. Cells that read as numbers ("1,234", "98.50%",
 * "≥ 2000.0", "NA") sort numerically, NA last; others alphabetically. No network, no library:
 * it runs from file:// as well. Material's document$ re-runs it after instant navigation. */
(function () {
  "use strict";

  function numeric(text) {
    var cleaned = text.replace(/[≥,%\s]/g, "");
    if (cleaned === "" || cleaned === "NA") { return null; }
    var value = Number(cleaned);
    return isNaN(value) ? undefined : value;
  }

  function compare(a, b) {
    var x = numeric(a), y = numeric(b);
    if (x !== undefined && y !== undefined) {
      if (x === null) { return y === null ? 0 : 1; }
      if (y === null) { return -1; }
      return x - y;
    }
    return a.localeCompare(b);
  }

  function sortBy(table, header, index) {
    var body = table.tBodies[0];
    var descending = header.getAttribute("aria-sort") === "ascending";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var order = compare(r1.cells[index].textContent.trim(), r2.cells[index].textContent.trim());
      return descending ? -order : order;
    });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) { cell.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
    rows.forEach(function (row) { body.appendChild(row); });
  }

  function makeSortable() {
    document.querySelectorAll("div.p5-sortable table:not([data-sortable])").forEach(function (table) {
      table.setAttribute("data-sortable", "yes");
      if (!table.tHead || !table.tBodies.length) { return; }
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, index) {
        header.setAttribute("title", "sort by this column");
        header.addEventListener("click", function () { sortBy(table, header, index); });
      });
    });
  }

  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(makeSortable);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", makeSortable);
  } else {
    makeSortable();
  }
})();
