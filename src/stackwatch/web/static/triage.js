// Alerts page: "select all" ticks every alert on the page; the bar counts the selection.
// Delegated from document so it keeps working after htmx swaps the table in.
(function () {
  function update() {
    var picks = document.querySelectorAll("#bulk input.pick");
    var n = 0;
    picks.forEach(function (p) { if (p.checked) { n += 1; } });
    var label = document.getElementById("selected-count");
    if (label) { label.textContent = n ? n + " selected:" : "With selected:"; }
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      document.querySelectorAll("#bulk input.pick").forEach(function (p) { p.checked = target.checked; });
    }
    if (target.id === "select-all" || target.classList.contains("pick")) { update(); }
  });
})();
