// Boomerang dashboard: draws the charts whose data the page carries in JSON blocks, and small conveniences.
(function () {
  "use strict";
  var palette = ["#2563eb", "#f97316", "#16a34a", "#db2777", "#7c3aed", "#0891b2"];

  // An editor's field errors, one line each, "field: reason" (messaging.js uses it too).
  function listErrors(into, body, code, fallback) {
    (body.errors || [{field: "preview", reason: "failed with status " + code}]).forEach(function (e) {
      var line = document.createElement("div"), field = document.createElement("strong");
      field.textContent = e.field || fallback;
      line.appendChild(field);
      line.appendChild(document.createTextNode(": " + e.reason));
      into.appendChild(line);
    });
    into.hidden = false;
  }
  // A live preview's requests: one POST of `payload()` at a time; text changed meanwhile is sent when the
  // answer comes, and an answer for older text is dropped. `started` marks the box busy; `show(status, body)`.
  function previewer(url, token, payload, started, show) {
    var busy = false, again = false;
    function ask() {
      if (busy) { again = true; return; }
      busy = true;
      again = false;
      started();
      fetch(url, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": token},
        body: JSON.stringify(payload())
      }).then(function (response) {
        return response.json().then(function (body) { return [response.status, body]; }, function () {
          return [response.status, {errors: [{field: "preview", reason: "no answer (status " + response.status + "): reload the page"}]}];
        });
      }, function () {
        return [0, {errors: [{field: "preview", reason: "the server did not answer"}]}];
      }).then(function (answer) {
        busy = false;
        if (again) { ask(); } else { show(answer[0], answer[1]); }
      });
    }
    return ask;
  }

  function debounced(fn) {  // runs fn 400 ms after the last call
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, 400); };
  }

  window.boomerang = {listErrors: listErrors, previewer: previewer, debounced: debounced};

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
    var partial = spec.partial || [];
    if (partial.length) {  // an incomplete bucket (a month five days old): a lighter bar, a dashed line into a hollow point
      datasets.forEach(function (d) {
        var colour = d.borderColor;
        if ((d.type || spec.type) === "line") {
          d.segment = {borderDash: function (ctx) { return partial[ctx.p1DataIndex] || partial[ctx.p0DataIndex] ? [5, 4] : undefined; }};
          d.pointBackgroundColor = partial.map(function (p) { return p ? "#fff" : colour; });
        } else {
          d.backgroundColor = partial.map(function (p) { return p ? colour + "55" : colour + "cc"; });
        }
      });
    }
    var tooltip = {callbacks: {}};
    if (spec.percent) { tooltip.callbacks.label = function (c) { return c.dataset.label + ": " + percent(c.parsed.y); }; }
    if (partial.length) {
      tooltip.callbacks.title = function (items) {
        return items.length ? items[0].label + (partial[items[0].dataIndex] ? " (incomplete)" : "") : "";
      };
    }
    var scales = {y: {beginAtZero: true, ticks: spec.percent ? {callback: percent} : {}}};
    if (spec.stacked) { scales.x = {stacked: true}; scales.y.stacked = true; }  // parts of one whole (shares of revenue)
    if (spec.spark) {  // a small trend in a table cell: the line only
      scales = {x: {display: false}, y: {display: false, beginAtZero: true}};
      datasets.forEach(function (d) { d.pointRadius = 1; d.borderWidth = 1.5; });
    }
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
          tooltip: tooltip
        }
      }
    });
    canvas.dataset.rendered = "true";
  }

  // <form data-confirm="Delete it?">: asks first. <form data-busy="Saving…">: once sent, its button says what is
  // going on and cannot be pressed twice.
  function guardForm(form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { event.preventDefault(); return; }
      if (!form.dataset.busy) { return; }
      if (form.dataset.state === "busy") { event.preventDefault(); return; }
      var button = form.querySelector("button[type=submit]");
      form.dataset.state = "busy";
      form.setAttribute("aria-busy", "true");
      if (button) {
        button.textContent = form.dataset.busy;
        setTimeout(function () { button.disabled = true; }, 0);  // after this event, so that the form is still sent
      }
    });
  }

  // A page that takes a while to come (the first overview of a large shop, the funnel) says it is coming:
  // a bar at the top once a followed link or a sent form has waited 300 ms.
  function loadingBar() {
    var bar = document.createElement("div"), timer = null;
    bar.id = "loading";
    bar.setAttribute("role", "status");
    bar.hidden = true;
    bar.textContent = "Loading…";
    document.body.appendChild(bar);
    function soon() { clearTimeout(timer); timer = setTimeout(function () { bar.hidden = false; }, 300); }
    document.addEventListener("click", function (event) {
      var link = event.target.closest && event.target.closest("a[href]");
      if (!link || event.defaultPrevented || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey ||
          link.target || link.hasAttribute("download") || link.origin !== window.location.origin ||
          (link.pathname === window.location.pathname && link.search === window.location.search && link.hash)) { return; }
      soon();
    });
    document.addEventListener("submit", function (event) {
      if (!event.defaultPrevented && !event.target.dataset.preview) { soon(); }
    });
    window.addEventListener("pageshow", function () { clearTimeout(timer); bar.hidden = true; });  // back to a kept page
  }

  document.addEventListener("DOMContentLoaded", function () {
    loadingBar();
    document.querySelectorAll("form").forEach(guardForm);
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    document.querySelectorAll("form[data-preview]").forEach(livePreview);
  });

  // The segment builder: the rule's text goes (debounced) to the preview endpoint; the answer is its
  // size, share and a sample of members, or the errors naming the field. Text only, never HTML.
  function livePreview(form) {
    var rule = form.querySelector("textarea[name=rule]"), asOf = document.getElementById("preview-as-of");
    var box = document.getElementById("preview"), size = document.getElementById("preview-size");
    var share = document.getElementById("preview-share"), status = document.getElementById("preview-status");
    var errors = document.getElementById("preview-errors"), sample = document.getElementById("preview-sample");
    var token = form.querySelector("input[name=csrf_token]").value;

    function show(code, body) {
      errors.replaceChildren();
      sample.replaceChildren();
      if (code === 200) {
        box.dataset.state = "ok";
        box.dataset.size = String(body.size);
        size.textContent = body.size.toLocaleString("en-US");
        share.textContent = body.share === null ? "" : percent(body.share) + " of " + body.customers.toLocaleString("en-US") + " customers";
        status.textContent = "As of " + body.as_of.slice(0, 10) + ", computed in " + body.seconds + " s.";
        errors.hidden = true;
        body.sample.forEach(function (id) {
          var item = document.createElement("li"), link = document.createElement("a");
          link.href = "/customers/" + encodeURIComponent(id);
          link.textContent = id;
          item.appendChild(link);
          sample.appendChild(item);
        });
        return;
      }
      box.dataset.state = "error";
      delete box.dataset.size;
      size.textContent = "–";
      share.textContent = "";
      status.textContent = "Fix the rule to see its size.";
      listErrors(errors, body, code, "rule");
    }

    var ask = previewer(form.dataset.preview, token, function () {
      return {rule: rule.value, as_of: asOf ? asOf.value : ""};
    }, function () { box.dataset.state = "busy"; status.textContent = "Computing…"; }, show);
    var later = debounced(ask);
    rule.addEventListener("input", later);
    if (asOf) { asOf.addEventListener("change", later); }
    ask();
  }
})();
