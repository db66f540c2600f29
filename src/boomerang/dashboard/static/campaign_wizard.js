// Boomerang dashboard, the campaign wizard: as the form changes, the server answers (debounced) with the
// definition as text (or the fields' errors) and with the audience: the segment's members, whom each channel
// reaches, and the smallest lift the holdout can tell. Text only, never HTML.
(function () {
  "use strict";

  function number(value) { return value === null || value === undefined ? "–" : value.toLocaleString("en-US"); }

  function wizard(form) {
    var text = document.getElementById("definition"), box = document.getElementById("audience");
    var members = document.getElementById("audience-members"), any = document.getElementById("audience-any");
    var rows = document.querySelector("#audience-channels tbody"), status = document.getElementById("audience-status");
    var lift = document.getElementById("lift"), preview = document.getElementById("template-preview");
    var textEdited = false, asked = 0;

    function value(name) { var field = form.elements[name]; return field ? field.value : ""; }
    function channels() {
      return Array.prototype.filter.call(form.querySelectorAll("input[name=channels]"), function (c) { return c.checked; })
        .map(function (c) { return c.value; });
    }

    function showText() {  // the definition as text, or the fields' errors in its place
      if (textEdited) { return; }
      var data = new FormData(form);
      data.delete("definition");
      fetch(form.action + "/text", {method: "POST", body: data, credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(function (body) {
          if (textEdited) { return; }
          text.value = body.text !== undefined ? body.text :
            "# to fix before saving:\n" + (body.errors || []).map(function (e) { return "# " + e.field + ": " + e.reason; }).join("\n");
        });
    }

    function showAudience() {
      var segment = value("segment");
      if (!segment) {
        box.dataset.state = "idle"; status.textContent = "Choose a segment."; members.textContent = any.textContent = "–";
        rows.replaceChildren(); lift.textContent = "Choose a segment to see what the holdout can tell.";
        return;
      }
      var query = new URLSearchParams({segment: segment, holdout_percent: value("holdout_percent") || "10",
        variants: value("template_b") ? "2" : "1", attribution_days: value("attribution_days") || "5"});
      channels().forEach(function (c) { query.append("channels", c); });
      var mine = ++asked;
      box.dataset.state = "busy"; status.textContent = "Counting…";
      fetch(form.dataset.audience + "?" + query, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { return r.json().then(function (body) { return [r.status, body]; }); })
        .then(function (answer) {
          if (mine !== asked) { return; }
          var body = answer[1];
          if (answer[0] !== 200) { box.dataset.state = "error"; status.textContent = (body.errors || [{reason: "failed"}])[0].reason; return; }
          box.dataset.state = "ok";
          members.textContent = body.members === null ? "not computed" : number(body.members);
          any.textContent = number(body.any);
          rows.replaceChildren();
          Object.keys(body.channels).forEach(function (c) {
            var row = document.createElement("tr"), name = document.createElement("td"), n = document.createElement("td");
            row.dataset.channel = c; name.textContent = c; n.className = "num"; n.textContent = number(body.channels[c]);
            row.append(name, n); rows.appendChild(row);
          });
          status.textContent = body.computed_at ? "As computed " + body.computed_at.slice(0, 16).replace("T", " ") +
            "; the list is taken when the campaign starts." : "The segment has not been computed: refresh it on its page.";
          if (body.buying_share === null || body.buying_share === undefined) {
            lift.textContent = "";
          } else if (body.detectable_lift === null) {
            lift.textContent = (body.buying_share * 100).toFixed(1) + "% of these customers bought in the last " +
              value("attribution_days") + " days; too few in a group to tell a lift from chance.";
          } else {
            lift.textContent = (body.buying_share * 100).toFixed(1) + "% of these customers bought in the last " +
              value("attribution_days") + " days. With this holdout, a lift of " + (body.detectable_lift * 100).toFixed(1) +
              " points in buyers or more is found 8 times in 10 by the results' always-valid 95% intervals.";
          }
        }, function () { if (mine === asked) { box.dataset.state = "error"; status.textContent = "No answer from the server."; } });
    }

    function showPreview() {
      var name = value("template");
      preview.hidden = !name;
      preview.href = "/templates/" + encodeURIComponent(name);
    }

    var later = window.boomerang.debounced(function () { showText(); showAudience(); showPreview(); });
    form.addEventListener("input", function (event) { if (event.target !== text) { later(); } });
    form.addEventListener("change", function (event) { if (event.target !== text) { later(); } });
    text.addEventListener("input", function () { textEdited = true; });
    showAudience();
    showPreview();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("campaign-form");
    if (form) { wizard(form); }
  });
})();
