// Boomerang dashboard, the recommendations pages: the chain's rows (add, remove, move), the live preview of the
// block being edited (the form as it is, sent after each change; text only, never HTML), suggestions of customers
// and products for it, and a training followed until it is done.
(function () {
  "use strict";

  function debounced(fn, ms) {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms || 350); };
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  // -- the chain's rows ---------------------------------------------------------------------------------------

  function chainRows(list, add, changed) {
    function describe(row) {
      var select = row.querySelector("select"), option = select.options[select.selectedIndex];
      row.querySelector(".step-description").textContent = option ? (option.dataset.description || "") : "";
    }
    list.addEventListener("change", function (event) {
      if (event.target.tagName === "SELECT") { describe(event.target.closest("li")); }
    });
    list.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-move]");
      if (!button) { return; }
      var row = button.closest("li"), rows = list.querySelectorAll("li");
      if (button.dataset.move === "up" && row.previousElementSibling) {
        list.insertBefore(row, row.previousElementSibling);
      } else if (button.dataset.move === "down" && row.nextElementSibling) {
        list.insertBefore(row.nextElementSibling, row);
      } else if (button.dataset.move === "remove") {
        if (rows.length > 1) { row.remove(); } else { row.querySelector("select").value = ""; describe(row); }
      } else { return; }
      renumber();
      changed();
    });
    function renumber() {
      list.querySelectorAll("li select").forEach(function (select, i) { select.setAttribute("aria-label", "algorithm " + (i + 1)); });
    }
    add.addEventListener("click", function () {
      var row = list.querySelector("li").cloneNode(true), select = row.querySelector("select");
      var used = Array.prototype.map.call(list.querySelectorAll("select"), function (s) { return s.value; });
      select.value = "";
      for (var i = 0; i < select.options.length; i++) {  // the first algorithm not in the chain yet
        if (select.options[i].value && used.indexOf(select.options[i].value) < 0) { select.value = select.options[i].value; break; }
      }
      describe(row);
      list.appendChild(row);
      renumber();
      select.focus();
      changed();
    });
  }

  // -- the preview ----------------------------------------------------------------------------------------------

  function preview(form, box) {
    var status = document.getElementById("preview-status"), errors = document.getElementById("preview-errors");
    var items = document.getElementById("preview-items"), customer = document.getElementById("preview-customer");
    var busy = false, again = false;

    function show(code, body) {
      errors.replaceChildren();
      items.replaceChildren();
      if (code !== 200) {
        box.dataset.state = "error";
        status.textContent = "Nothing to show until this is fixed:";
        (body.errors || [{label: "preview", reason: "failed with status " + code}]).forEach(function (e) {
          var line = el("div");
          line.appendChild(el("strong", null, e.label || e.field));
          line.appendChild(document.createTextNode(": " + e.reason));
          errors.appendChild(line);
        });
        errors.hidden = false;
        return;
      }
      errors.hidden = true;
      box.dataset.state = "ok";
      box.dataset.count = String(body.items.length);
      var who = customer.value.trim() ? (body.customer_id ? "for customer " + body.customer_id : "no customer " + customer.value.trim() + ": shown as an unknown visitor") : "for a visitor the shop does not know";
      status.textContent = body.items.length + " products " + who + (body.model_trained_at ? "" : " (no model trained yet: catalog rules alone)") + ".";
      body.items.forEach(function (item) {
        var li = el("li", "reco-item"), head = el("div", "reco-head");
        li.dataset.sku = item.sku;
        li.dataset.source = item.source;
        li.dataset.category = item.category || "";
        head.appendChild(el("span", "reco-name", item.name || item.sku));
        head.appendChild(el("span", "badge reco-source", item.algorithm));
        li.appendChild(head);
        var price = item.price === null || item.price === undefined ? "" : " · " + Number(item.price).toFixed(2) + " " + (item.currency || "");
        li.appendChild(el("div", "hint", item.sku + (item.category ? " · " + item.category : "") + (item.brand ? " · " + item.brand : "") + price));
        li.appendChild(el("div", "reco-reason", item.reason));
        items.appendChild(li);
      });
    }

    function ask() {
      if (busy) { again = true; return; }
      busy = true;
      again = false;
      box.dataset.state = "busy";
      status.replaceChildren(el("span", "working"), document.createTextNode("Working…"));
      fetch(box.dataset.url, {
        method: "POST", credentials: "same-origin", headers: {"Accept": "application/json"},
        body: new URLSearchParams(new FormData(form))
      }).then(function (response) {
        return response.json().then(function (body) { return [response.status, body]; }, function () {
          return [response.status, {errors: [{label: "preview", reason: "no answer (status " + response.status + "): reload the page"}]}];
        });
      }, function () {
        return [0, {errors: [{label: "preview", reason: "the server did not answer"}]}];
      }).then(function (answer) {
        busy = false;
        if (again) { ask(); } else { show(answer[0], answer[1]); }
      });
    }
    return ask;
  }

  // suggestions for a preview field, from /recommendations/lookup?customer=... or ?product=...
  function suggest(input, list, lookup, kind) {
    input.addEventListener("input", debounced(function () {
      var text = input.value.trim();
      if (text.length < 2) { return; }
      fetch(lookup + "?" + kind + "=" + encodeURIComponent(text), {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) { return response.ok ? response.json() : []; })
        .then(function (rows) {
          list.replaceChildren();
          rows.forEach(function (row) {
            var option = el("option");
            option.value = row.value;
            option.label = row.label;
            list.appendChild(option);
          });
        }, function () { /* no suggestions this time */ });
    }, 250));
  }

  // -- training -------------------------------------------------------------------------------------------------

  function follow(box) {
    var status = document.getElementById("training-status");
    function poll() {
      fetch(box.dataset.trainingUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) { return response.json(); })
        .then(function (state) {
          if (!state.running) {
            window.location.replace(window.location.pathname + "?trained=1#quality");
            return;
          }
          status.replaceChildren(el("span", "working"), document.createTextNode("Training: " + state.step + "…"));
          setTimeout(poll, 1000);
        }, function () { setTimeout(poll, 3000); });
    }
    setTimeout(poll, 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var training = document.getElementById("training");
    if (training && training.dataset.state === "busy") { follow(training); }

    var form = document.getElementById("block-form"), box = document.getElementById("preview");
    if (!form || !box) { return; }
    var ask = preview(form, box), later = debounced(ask);
    chainRows(document.getElementById("chain-rows"), document.getElementById("add-step"), later);
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    box.addEventListener("input", later);  // the customer and the product belong to the form from outside it
    suggest(document.getElementById("preview-customer"), document.getElementById("customer-options"), box.dataset.lookup, "customer");
    suggest(document.getElementById("preview-product"), document.getElementById("product-options"), box.dataset.lookup, "product");
    ask();
  });
})();
