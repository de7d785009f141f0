// microreboot incident explorer: filters and sorts the index table. Vanilla JS, no network.
(function () {
  "use strict";
  var table = document.getElementById("incidents");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var count = document.getElementById("count");
  var selects = {
    app: document.getElementById("f-app"),
    fault: document.getElementById("f-fault"),
    policy: document.getElementById("f-policy"),
    factor: document.getElementById("f-factor"),
    harmful: document.getElementById("f-harmful"),
    escalated: document.getElementById("f-escalated")
  };
  var text = document.getElementById("f-text");

  function apply() {
    var needle = text.value.trim().toLowerCase();
    var shown = 0;
    rows.forEach(function (row) {
      var ok = Object.keys(selects).every(function (key) {
        var want = selects[key].value;
        return want === "" || row.dataset[key] === want;
      });
      if (ok && needle !== "") {
        ok = row.textContent.toLowerCase().indexOf(needle) >= 0;
      }
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " runs";
    var state = [];
    Object.keys(selects).forEach(function (key) {
      if (selects[key].value !== "") { state.push(key + "=" + encodeURIComponent(selects[key].value)); }
    });
    if (needle !== "") { state.push("text=" + encodeURIComponent(text.value.trim())); }
    var hash = state.length ? "#" + state.join("&") : "";
    if (window.location.hash !== hash) {
      try {
        history.replaceState(null, "", hash || window.location.href.split("#")[0]);
      } catch (e) {
        // Some browsers refuse to rewrite file:// addresses; the filters still work.
      }
    }
  }

  function restore() {
    var hash = window.location.hash.replace(/^#/, "");
    if (hash === "") { return; }
    hash.split("&").forEach(function (pair) {
      var kv = pair.split("=");
      var value = decodeURIComponent(kv[1] || "");
      if (kv[0] === "text") { text.value = value; } else if (selects[kv[0]]) { selects[kv[0]].value = value; }
    });
  }

  function sortBy(th, index) {
    var numeric = th.dataset.sort === "num";
    var asc = !th.classList.contains("sorted-asc");
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) {
      c.classList.remove("sorted-asc", "sorted-desc");
    });
    th.classList.add(asc ? "sorted-asc" : "sorted-desc");
    var key = function (row) {
      var cell = row.cells[index];
      var v = cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent;
      return numeric ? parseFloat(v) : v;
    };
    var keyed = rows.map(function (row, i) { return [key(row), i, row]; });
    keyed.sort(function (a, b) {
      if (a[0] < b[0]) { return asc ? -1 : 1; }
      if (a[0] > b[0]) { return asc ? 1 : -1; }
      return a[1] - b[1];
    });
    keyed.forEach(function (k) { body.appendChild(k[2]); });
  }

  Object.keys(selects).forEach(function (key) { selects[key].addEventListener("change", apply); });
  text.addEventListener("input", apply);
  document.getElementById("f-reset").addEventListener("click", function () {
    Object.keys(selects).forEach(function (key) { selects[key].value = ""; });
    text.value = "";
    apply();
  });
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
    if (th.dataset.sort) { th.addEventListener("click", function () { sortBy(th, i); }); }
  });
  restore();
  apply();
}());
