// The dashboard's few behaviours, without a framework (and CSP-clean: no inline code).
// The display zone, auto-refresh, the histogram brush and the live tail.
(function () {
  "use strict";

  function store(key, value) {
    try { window.localStorage.setItem("stackwatch." + key, value); } catch (e) { /* private mode */ }
  }
  function recall(key) {
    try { return window.localStorage.getItem("stackwatch." + key); } catch (e) { return null; }
  }

  // Display zone: UTC, or the browser's zone, remembered in the "tz" cookie the server reads.
  var picker = document.getElementById("timepicker");
  var toggle = document.getElementById("zone-toggle");
  if (picker && toggle) {
    toggle.addEventListener("click", function () {
      var browser = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
      var next = picker.dataset.zone === "UTC" ? browser : "UTC";
      document.cookie = "tz=" + next + "; path=/; max-age=31536000; samesite=lax";
      store("tz", next);
      window.location.reload();
    });
  }

  // Auto-refresh: reload every 30 s while the box is ticked (remembered per browser).
  var auto = document.getElementById("auto-refresh");
  if (auto) {
    var reloadTimer = null;
    var schedule = function () {
      window.clearTimeout(reloadTimer);
      if (auto.checked) { reloadTimer = window.setTimeout(function () { window.location.reload(); }, 30000); }
    };
    auto.checked = recall("autorefresh") === "1";
    auto.addEventListener("change", function () { store("autorefresh", auto.checked ? "1" : "0"); schedule(); });
    schedule();
  }

  // Histogram brush: drag across the bars to zoom the time window to that span.
  var svg = document.getElementById("histogram");
  var brush = document.getElementById("brush");
  if (svg && brush) {
    var left = Number(svg.dataset.left), width = Number(svg.dataset.plotWidth);
    var start = Number(svg.dataset.start), step = Number(svg.dataset.step), size = Number(svg.dataset.size);
    var anchor = null, dragged = false;
    var xOf = function (evt) {
      var point = svg.createSVGPoint();
      point.x = evt.clientX; point.y = evt.clientY;
      var x = point.matrixTransform(svg.getScreenCTM().inverse()).x;
      return Math.min(Math.max(x, left), left + width);
    };
    var timeOf = function (x) { return new Date(start + (x - left) / width * size * step).toISOString(); };
    svg.addEventListener("mousedown", function (evt) {
      anchor = xOf(evt); dragged = false;
      brush.setAttribute("x", anchor); brush.setAttribute("width", 0);
      evt.preventDefault();
    });
    svg.addEventListener("mousemove", function (evt) {
      if (anchor === null) { return; }
      var x = xOf(evt);
      dragged = dragged || Math.abs(x - anchor) > 3;
      brush.setAttribute("x", Math.min(anchor, x)); brush.setAttribute("width", Math.abs(x - anchor));
    });
    window.addEventListener("mouseup", function (evt) {
      if (anchor === null) { return; }
      var x = xOf(evt), a = Math.min(anchor, x), b = Math.max(anchor, x);
      anchor = null;
      if (!dragged) { return; }  // a click: the bar's own link zooms to it
      var params = new URLSearchParams(window.location.search);
      params.delete("range"); params.delete("offset");
      params.set("from", timeOf(a)); params.set("to", timeOf(b));
      window.location.assign(window.location.pathname + "?" + params.toString());
    });
    svg.addEventListener("click", function (evt) { if (dragged) { evt.preventDefault(); } }, true);
  }

  // Live tail: the server pushes the events stored after the newest one shown (Server-Sent
  // Events, /search/stream; the browser reconnects by itself with Last-Event-ID); where
  // EventSource is missing or the stream is refused, poll /search/tail every 2 s instead.
  var tail = document.getElementById("live-tail");
  var table = document.getElementById("events");
  if (tail && table) {
    var pollTimer = null;
    var source = null;
    var count = document.getElementById("hit-count");
    var tailParams = function () {
      var params = new URLSearchParams(window.location.search);
      params.delete("offset");
      params.set("after", table.dataset.lastSeq || "0");
      return params;
    };
    var addRows = function (html) {
      if (!html.trim()) { return; }
      var holder = document.createElement("tbody");
      holder.innerHTML = html;
      var rows = Array.prototype.slice.call(holder.rows);
      var body = table.tBodies[0];
      rows.reverse().forEach(function (row) {
        body.insertBefore(row, body.firstChild);
        // data-after: the server's cursor after this poll (a commit position on the shared store)
        var cursor = Number(row.dataset.after || row.dataset.seq);
        table.dataset.lastSeq = String(Math.max(Number(table.dataset.lastSeq || 0), cursor));
      });
      if (count) { count.textContent = String(Number(count.textContent) + rows.length); }
      var empty = document.getElementById("no-results");
      if (empty) { empty.remove(); }
    };
    var poll = function () {
      window.fetch("/search/tail?" + tailParams().toString(), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : ""; })
        .then(addRows)
        .catch(function () { /* the next poll retries */ })
        .then(function () { if (tail.checked && !source) { pollTimer = window.setTimeout(poll, 2000); } });
    };
    var stopTail = function () {
      window.clearTimeout(pollTimer);
      if (source) { source.close(); source = null; }
      table.dataset.tailMode = "";
    };
    var startTail = function () {
      stopTail();
      if (!window.EventSource) { table.dataset.tailMode = "poll"; poll(); return; }
      source = new window.EventSource("/search/stream?" + tailParams().toString());
      table.dataset.tailMode = "stream";
      source.addEventListener("rows", function (evt) { addRows(evt.data); });
      source.addEventListener("error", function () {
        // CONNECTING: a dropped stream the browser is resuming; CLOSED: refused (an HTTP
        // error, the session gone, too many streams): fall back to polling.
        if (source && source.readyState === window.EventSource.CLOSED) {
          source = null;
          table.dataset.tailMode = "poll";
          poll();
        }
      });
    };
    tail.checked = recall("tail") === "1";
    tail.addEventListener("change", function () {
      store("tail", tail.checked ? "1" : "0");
      if (tail.checked) { startTail(); } else { stopTail(); }
    });
    if (tail.checked) { startTail(); }
  }
}());
