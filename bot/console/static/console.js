/* The dashboard's charts, drawn by Chart.js from the page's JSON data block (no inline
   script: the page's Content-Security-Policy allows only files from the app). */
(function () {
  "use strict";
  var block = document.getElementById("chart-data");
  if (!block || typeof Chart === "undefined") { return; }
  var data = JSON.parse(block.textContent);
  var green = "#06c755", blue = "#2f6fdb", grey = "#9aa5b1", amber = "#f5a524";
  var common = { responsive: true, maintainAspectRatio: false, animation: false,
                 plugins: { legend: { position: "bottom" } } };
  function chart(name, type, datasets, extra) {
    var canvas = document.querySelector('canvas[data-chart="' + name + '"]');
    if (!canvas) { return; }
    new Chart(canvas, { type: type, data: { labels: data[name].labels, datasets: datasets },
                        options: Object.assign({}, common, extra || {}) });
  }
  var w = data.weekly, c = data.customers;
  chart("weekly", "bar", [
    { label: w.names.purchases, data: w.purchases, backgroundColor: green, yAxisID: "y" },
    { label: w.names.revenue, data: w.revenue, type: "line", borderColor: blue,
      backgroundColor: blue, yAxisID: "y1" }],
    { scales: { y: { beginAtZero: true, position: "left" },
                y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } } } });
  chart("customers", "bar", [
    { label: c.names.new, data: c.new, backgroundColor: green },
    { label: c.names.returning, data: c.returning, backgroundColor: blue }],
    { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } });
  chart("coupons", "bar", [
    { label: data.coupons.names.redeemed, data: data.coupons.redeemed, backgroundColor: amber }],
    { indexAxis: "y", scales: { x: { beginAtZero: true } } });
  chart("funnel", "bar", [
    { label: data.funnel.names.cards, data: data.funnel.cards, backgroundColor: green }],
    { scales: { y: { beginAtZero: true } } });
  chart("tiers", "doughnut", [
    { label: data.tiers.names.members, data: data.tiers.members,
      backgroundColor: [grey, blue, amber, green, "#8e59ff", "#e5484d"] }]);
}());

/* The import form: a file past the upload limit is stopped here, before minutes of
   uploading end in a refusal (the server refuses it too, with the same words). */
(function () {
  "use strict";
  var form = document.getElementById("import-form");
  if (!form) { return; }
  var most = Number(form.dataset.maxBytes), warning = document.getElementById("import-too-large");
  var input = form.querySelector("input[type=file]");
  function tooLarge() {
    var file = input.files && input.files[0];
    return Boolean(file && file.size > most);
  }
  input.addEventListener("change", function () { warning.hidden = !tooLarge(); });
  form.addEventListener("submit", function (event) {
    if (tooLarge()) { warning.hidden = false; event.preventDefault(); }
  });
}());

/* The campaigns page: whom the new campaign reaches and what it costs, counted by the
   server (the same figures as the count button) as the form changes. */
(function () {
  "use strict";
  var form = document.querySelector("form[data-reach-url]");
  if (!form || !window.fetch) { return; }
  var shown = form.querySelector("[data-reach]"), timer = null, asked = 0;
  function count() {
    var params = new URLSearchParams(new FormData(form));
    params.delete("csrf_token");
    var mine = ++asked;
    fetch(form.dataset.reachUrl + "?" + params.toString(), { credentials: "same-origin" })
      .then(function (answer) { return answer.json(); })
      .then(function (data) {
        if (mine !== asked) { return; }  // a later count is on its way
        shown.textContent = data.error || data.text;
        shown.classList.toggle("error", Boolean(data.error));
      })
      .catch(function () { /* the count button still works */ });
  }
  function soon() { clearTimeout(timer); timer = setTimeout(count, 250); }
  form.addEventListener("change", soon);
  form.addEventListener("input", soon);
  count();
}());
