/* pellucid report: sortable tables, and sections that open for links and for printing.
   Works on the page alone; nothing is fetched. Without scripts the page reads the same,
   in the order pellucid wrote it. */
(function () {
  "use strict";

  // A cell's sort key: its data-sort attribute, else its text; numbers compare as numbers
  // ("93.4%", "1,234", "−0.5" too), the rest as text, and empty cells or dashes go last.
  function key(cell) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
    raw = (raw || "").trim();
    if (raw === "" || raw === "\u2014") return null;
    var t = raw.replace(/[\u2212\u2013]/g, "-").replace(/[,%+\s]/g, "");
    var m = t.match(/^-?(\d+\.?\d*|\.\d+)(e-?\d+)?/i);
    return m ? parseFloat(m[0]) : raw.toLowerCase();
  }

  function compare(a, b) {
    if (a === null) return b === null ? 0 : 1;
    if (b === null) return -1;
    if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
    return typeof a === "number" ? -1 : 1;
  }

  function sortBy(table, col, th) {
    var body = table.tBodies[0];
    if (!body) return;
    var asc = th.getAttribute("aria-sort") !== "ascending";
    var rows = Array.prototype.slice.call(body.rows);
    var top = rows.filter(function (r) { return r.getAttribute("data-pin") === "top"; });
    var bottom = rows.filter(function (r) { return r.getAttribute("data-pin") === "bottom"; });
    var free = rows.filter(function (r) { return !r.hasAttribute("data-pin"); });
    var keyed = free.map(function (r, i) {
      var c = r.cells[col];
      return { row: r, k: c ? key(c) : null, i: i };
    });
    keyed.sort(function (x, y) {
      var d = compare(x.k, y.k);
      if (d !== 0 && x.k !== null && y.k !== null && !asc) d = -d;
      return d !== 0 ? d : x.i - y.i; // stable: ties keep the report's order
    });
    top.concat(keyed.map(function (x) { return x.row; }), bottom).forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var head = table.tHead;
    if (!head || !head.rows.length) return;
    var row = head.rows[head.rows.length - 1];
    var col = 0;
    Array.prototype.forEach.call(row.cells, function (th) {
      var at = col;
      col += th.colSpan || 1;
      if (th.colSpan > 1) return;
      th.classList.add("sort");
      th.tabIndex = 0;
      th.title = "Sort by this column";
      th.addEventListener("click", function () { sortBy(table, at, th); });
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortBy(table, at, th); }
      });
    });
  });

  // A link to a section (the contents, a limitation) opens the sections around its target.
  function reveal() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    for (; el; el = el.parentElement) {
      if (el.tagName === "DETAILS") el.open = true;
      var inner = el.tagName === "SECTION" && el.querySelector(":scope > details");
      if (inner) inner.open = true;
    }
  }
  window.addEventListener("hashchange", reveal);
  reveal();

  // Printing shows everything: closed sections open for the print and close again after.
  var closed = [];
  window.addEventListener("beforeprint", function () {
    closed = Array.prototype.filter.call(document.querySelectorAll("details"), function (d) { return !d.open; });
    closed.forEach(function (d) { d.open = true; });
  });
  window.addEventListener("afterprint", function () {
    closed.forEach(function (d) { d.open = false; });
    closed = [];
  });
})();
