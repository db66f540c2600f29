// Boomerang dashboard: draws the charts whose data the page carries in JSON blocks, and small conveniences.
(function () {
  "use strict";
  var palette = ["#2563eb", "#f97316", "#16a34a", "#db2777", "#7c3aed", "#0891b2"];

  function percent(value) { return value === null || value === undefined ? "–" : (value * 100).toFixed(1) + "%"; }

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof Chart === "undefined") { return; }
    var spec = JSON.parse(source.textContent);
    var datasets = spec.datasets.map(function (d, i) {
      var colour = palette[i % palette.length];
      var line = (d.type || spec.type) === "line";
      return Object.assign({
        borderColor: colour, backgroundColor: line ? colour : colour + "cc", borderWidth: line ? 2 : 0,
        pointRadius: line ? 2 : 0, tension: 0.25, spanGaps: true
      }, d);
    });
    var scales = {y: {beginAtZero: true, ticks: spec.percent ? {callback: percent} : {}}};
    if (datasets.some(function (d) { return d.yAxisID === "y2"; })) {
      scales.y2 = {beginAtZero: true, position: "right", grid: {drawOnChartArea: false}};
    }
    new Chart(canvas, {
      type: spec.type,
      data: {labels: spec.labels, datasets: datasets},
      options: {
        responsive: true, maintainAspectRatio: false, animation: false, scales: scales,
        interaction: {mode: "index", intersect: false},
        plugins: {
          legend: {display: datasets.length > 1},
          tooltip: spec.percent ? {callbacks: {label: function (c) { return c.dataset.label + ": " + percent(c.parsed.y); }}} : {}
        }
      }
    });
    canvas.dataset.rendered = "true";
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  });
})();
