// Consentry admin: a running import's progress. Every second it asks the
// server how far the import (or its undo) has gone, moves the progress
// bar and the counts, and reloads the page once the import has ended, to
// show its report. Without this script the page has a Refresh link and
// can follow the progress by reloading itself.
(function () {
  "use strict";
  var live = document.getElementById("import-live");
  if (!live || !window.fetch) {
    return;
  }
  var endpoint = live.getAttribute("data-endpoint");
  var bar = document.getElementById("import-progress");
  var text = document.getElementById("progress-text");
  var removed = document.getElementById("removed-count");
  var running = ["queued", "running", "undoing"];
  var figure = function (n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  };

  function show(p) {
    if (bar) {
      bar.max = Math.max(p.total, 1);
      bar.value = p.position;
      bar.textContent = Math.floor((100 * p.position) / Math.max(p.total, 1)) + "%";
    }
    if (text) {
      text.textContent = figure(p.position) + " of " + figure(p.total) + " rows read";
    }
    if (removed) {
      removed.textContent = figure(p.removed);
    }
    var counts = live.querySelectorAll("[data-count]");
    for (var i = 0; i < counts.length; i++) {
      var k = counts[i].getAttribute("data-count");
      if (typeof p[k] === "number") {
        counts[i].textContent = figure(p[k]);
      }
    }
  }

  function poll() {
    fetch(endpoint, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (res) {
        if (!res.ok) {
          throw new Error("HTTP " + res.status);
        }
        return res.json();
      })
      .then(function (p) {
        show(p);
        if (running.indexOf(p.status) < 0) {
          window.location.replace(window.location.pathname);
          return;
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () {
        window.setTimeout(poll, 5000);
      });
  }
  window.setTimeout(poll, 1000);
})();
