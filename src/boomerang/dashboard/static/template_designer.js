// Boomerang dashboard: the email designer. The template's definition (from #designer-state) is edited as data:
// each locale's email.design is a list of blocks; the palette adds blocks (click or drag), the canvas reorders
// them (drag, or the arrows), the panel edits the selected one. Every change previews the locale being edited
// through /templates/preview (the server makes the MJML into HTML; it goes only into the sandboxed iframe);
// "Send a test" posts the same to /templates/designer/test; Save posts the whole definition as JSON in a form.
// Text only into the page (textContent), never HTML; no inline styles (the dashboard's CSP).
(function () {
  "use strict";

  var LABELS = {heading: "Heading", text: "Text", image: "Image", button: "Button", divider: "Divider", spacer: "Spacer",
    products: "Product cards", cart: "Cart lines", order: "Order lines", loyalty: "Loyalty balance",
    social: "Social links", footer: "Footer (preferences, unsubscribe)"};
  var TEST_TO = "boomerang.designer.testTo.";  // + the user: each person their own address

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function copy(value) { return JSON.parse(JSON.stringify(value)); }

  function designer(root) {
    var state = JSON.parse(document.getElementById("designer-state").textContent);
    var def = copy(state.definition), canAct = root.dataset.canAct === "yes";
    var designed = {};  // locales that had a design when the page opened (the others get one only when blocks come)
    Object.keys(def.locales).forEach(function (loc) {
      var email = (def.locales[loc] || {}).email;
      designed[loc] = !!(email && Array.isArray(email.design));
    });
    var locale = def.default_locale in def.locales ? def.default_locale : Object.keys(def.locales)[0];
    var selected = -1;
    var $ = function (id) { return document.getElementById(id); };
    var tokenInput = document.querySelector("#design-form input[name=csrf_token]") || $("csrf");
    var token = tokenInput ? tokenInput.value : "";

    function fields() {
      var f = def.locales[locale];
      if (!f.email || typeof f.email !== "object") { f.email = {}; }
      return f;
    }
    function blocks() {
      var email = fields().email;
      if (!Array.isArray(email.design)) { email.design = []; }
      return email.design;
    }
    function cleaned(locales) {  // a locale never designed and still without blocks keeps its hand-written email
      var out = {};
      Object.keys(locales).forEach(function (loc) {
        var f = copy(locales[loc]);
        if (f.email && Array.isArray(f.email.design) && !f.email.design.length && !designed[loc]) { delete f.email.design; }
        if (f.email && !Object.keys(f.email).length) { delete f.email; }
        out[loc] = f;
      });
      return out;
    }
    function whole() {
      return {name: def.name, title: def.title, topic: def.topic || null, default_locale: def.default_locale,
        locales: cleaned(def.locales)};
    }
    function single() {  // the locale being edited, alone: the preview and the test show that one
      var one = {};
      one[locale] = def.locales[locale];
      return {name: def.name || "draft", title: def.title, topic: def.topic || null, default_locale: locale,
        locales: cleaned(one)};
    }

    // -- the template's own fields --
    function bindField(id, get, set) {
      var input = $(id);
      input.value = get() || "";
      input.addEventListener("input", function () { set(input.value); changed(false); });
    }
    bindField("d-name", function () { return def.name; }, function (v) { def.name = v.trim(); });
    bindField("d-title", function () { return def.title; }, function (v) { def.title = v; });
    bindField("d-topic", function () { return def.topic; }, function (v) { def.topic = v || null; });
    $("d-topic").addEventListener("change", function () { def.topic = $("d-topic").value || null; });
    var subject = $("d-subject");
    subject.addEventListener("input", function () {
      var f = fields();
      if (f.email.subject !== undefined) { f.email.subject = subject.value; } else { f.subject = subject.value; }
      changed(false);
    });
    function locales() {
      var select = $("d-locale");
      select.replaceChildren();
      Object.keys(def.locales).forEach(function (loc) {
        var option = el("option", {value: loc}, loc + (loc === def.default_locale ? " (default)" : ""));
        option.selected = loc === locale;
        select.appendChild(option);
      });
    }
    $("d-locale").addEventListener("change", function () { locale = $("d-locale").value; selected = -1; draw(); changed(false); });
    if ($("d-add-locale")) {
      $("d-add-locale").addEventListener("click", function () {
        var tag = $("d-new-locale").value.trim();
        if (!tag || def.locales[tag]) { return; }
        def.locales[tag] = copy(def.locales[locale]);
        designed[tag] = designed[locale];
        locale = tag;
        $("d-new-locale").value = "";
        draw();
        changed(false);
      });
    }

    // -- the palette and the canvas --
    var palette = $("palette"), canvas = $("canvas");
    if (palette) {
      state.order.forEach(function (kind) {
        var item = el("li", {draggable: "true", "data-kind": kind, tabindex: "0", role: "button"}, LABELS[kind] || kind);
        item.addEventListener("click", function () { add(kind, blocks().length); });
        item.addEventListener("keydown", function (e) { if (e.key === "Enter") { add(kind, blocks().length); } });
        item.addEventListener("dragstart", function (e) { e.dataTransfer.setData("text/plain", "new:" + kind); });
        palette.appendChild(item);
      });
    }
    function add(kind, at) {
      blocks().splice(at, 0, copy(state.palette[kind]));
      selected = at;
      changed(true);
    }
    function move(from, to) {
      var list = blocks();
      if (to < 0 || to > list.length || from === to) { return; }
      var block = list.splice(from, 1)[0];
      list.splice(from < to ? to - 1 : to, 0, block);
      selected = from < to ? to - 1 : to;
      changed(true);
    }
    function summary(block) {
      var words = block.text || block.label || block.title || block.src || "";
      if (block.type === "social") { words = block.links.map(function (l) { return l.network; }).join(", "); }
      return words.length > 70 ? words.slice(0, 70) + "…" : words;
    }
    function drawCanvas() {
      canvas.replaceChildren();
      blocks().forEach(function (block, i) {
        var item = el("li", {"data-index": String(i), "data-type": block.type, draggable: canAct ? "true" : "false"});
        if (i === selected) { item.classList.add("selected"); }
        var name = el("strong", {}, LABELS[block.type] || block.type);
        item.appendChild(name);
        item.appendChild(el("span", {"class": "muted small"}, " " + summary(block)));
        if (canAct) {
          var tools = el("span", {"class": "block-tools"});
          [["↑", "up", i - 1], ["↓", "down", i + 2], ["✕", "remove", null]].forEach(function (t) {
            var button = el("button", {type: "button", "aria-label": t[1], "data-action": t[1]}, t[0]);
            button.addEventListener("click", function (e) {
              e.stopPropagation();
              if (t[1] === "remove") { blocks().splice(i, 1); selected = -1; changed(true); } else { move(i, t[2]); }
            });
            tools.appendChild(button);
          });
          item.appendChild(tools);
          item.addEventListener("dragstart", function (e) { e.dataTransfer.setData("text/plain", "move:" + i); });
        }
        item.addEventListener("click", function () { selected = i; drawCanvas(); drawPanel(); });
        canvas.appendChild(item);
      });
      if (!blocks().length) { canvas.appendChild(el("li", {"class": "muted small empty"}, canAct ? "Drop or click blocks to start." : "No blocks.")); }
    }
    if (canAct) {
      canvas.addEventListener("dragover", function (e) { e.preventDefault(); });
      canvas.addEventListener("drop", function (e) {
        e.preventDefault();
        var what = e.dataTransfer.getData("text/plain") || "";
        var target = e.target.closest ? e.target.closest("li[data-index]") : null;
        var at = target ? Number(target.dataset.index) : blocks().length;
        if (target && e.clientY > target.getBoundingClientRect().top + target.offsetHeight / 2) { at += 1; }
        if (what.indexOf("new:") === 0 && state.palette[what.slice(4)]) { add(what.slice(4), at); }
        if (what.indexOf("move:") === 0) { move(Number(what.slice(5)), at); }
      });
    }

    // -- the panel: the selected block's settings --
    function input(kind, value, extra) {
      var node;
      if (kind === "align") {
        node = el("select");
        ["left", "center", "right"].forEach(function (a) {
          var o = el("option", {value: a}, a);
          o.selected = a === value;
          node.appendChild(o);
        });
        return node;
      }
      if (kind === "text" && extra.long) { node = el("textarea", {rows: "4"}); } else { node = el("input"); }
      if (kind === "colour") { node.type = "color"; }
      if (kind === "int") { node.type = "number"; node.min = extra.lo; node.max = extra.hi; }
      node.value = value === undefined || value === null ? "" : value;
      return node;
    }
    function drawPanel() {
      var box = $("panel-fields");
      box.replaceChildren();
      var block = blocks()[selected];
      if (!block) { box.appendChild(el("p", {"class": "muted small"}, "Select a block to edit it.")); return; }
      box.appendChild(el("p", {"class": "small"}, LABELS[block.type] || block.type));
      state.settings[block.type].forEach(function (spec) {
        var key = spec[0], kind = spec[1];
        if (kind === "links") { box.appendChild(linksEditor(block)); return; }
        var label = el("label", {}, key.charAt(0).toUpperCase() + key.slice(1) + " ");
        var field = input(kind, block[key], {long: key === "text", lo: spec[2], hi: spec[3]});
        field.name = key;
        field.dataset.setting = key;
        if (!canAct) { field.disabled = true; }
        field.addEventListener(kind === "align" ? "change" : "input", function () {
          block[key] = kind === "int" ? (field.value === "" ? field.value : Number(field.value)) : field.value;
          changed(true, true);
        });
        label.appendChild(field);
        box.appendChild(label);
      });
    }
    function linksEditor(block) {
      var wrap = el("div", {"class": "stack social-links"});
      wrap.appendChild(el("span", {"class": "small"}, "Links"));
      block.links.forEach(function (link, i) {
        var row = el("div", {"class": "filters"});
        var network = el("select", {"aria-label": "network"});
        state.networks.forEach(function (n) {
          var o = el("option", {value: n}, n);
          o.selected = n === link.network;
          network.appendChild(o);
        });
        var url = el("input", {"aria-label": "link", placeholder: "https://"});
        url.value = link.url;
        var drop = el("button", {type: "button", "aria-label": "remove link"}, "✕");
        network.addEventListener("change", function () { link.network = network.value; changed(true, true); });
        url.addEventListener("input", function () { link.url = url.value; changed(true, true); });
        drop.addEventListener("click", function () { block.links.splice(i, 1); changed(true); });
        [network, url, drop].forEach(function (n) { n.disabled = !canAct; row.appendChild(n); });
        wrap.appendChild(row);
      });
      if (canAct && block.links.length < state.networks.length) {
        var more = el("button", {type: "button"}, "Add a link");
        more.addEventListener("click", function () { block.links.push({network: state.networks[0], url: "https://"}); changed(true); });
        wrap.appendChild(more);
      }
      return wrap;
    }

    // -- drawing, preview --
    function draw() {
      var f = fields();
      locales();
      subject.value = (f.email.subject !== undefined ? f.email.subject : f.subject) || "";
      $("d-handwritten").hidden = !(f.email.html && !designed[locale] && !blocks().length);
      drawCanvas();
      drawPanel();
    }
    var frame = $("preview-frame"), box = $("preview"), errors = $("preview-errors");
    var customer = $("preview-customer");
    function show(code, body) {
      errors.replaceChildren();
      if (code === 200) {
        var email = body.channels.email || {};
        box.dataset.state = email.error ? "error" : "ok";
        $("preview-subject").textContent = email.subject || "";
        $("preview-status").textContent = "Locale " + body.locale + ", " + (body.customer ? "customer " + body.customer : "a sample customer") + ".";
        if (email.error) {
          window.boomerang.listErrors(errors, {errors: [{field: "email", reason: email.error}]}, code, "email");
        } else {
          errors.hidden = true;
          frame.srcdoc = email.html || "";
        }
        return;
      }
      box.dataset.state = "error";
      window.boomerang.listErrors(errors, body, code, "design");
    }
    var ask = window.boomerang.previewer(root.dataset.preview, token, function () {
      return {definition: JSON.stringify(single()), customer: customer.value};
    }, function () { box.dataset.state = "busy"; }, show);
    var later = window.boomerang.debounced(ask);
    function changed(redraw, keepPanel) {
      if (redraw) { if (keepPanel) { drawCanvas(); } else { draw(); } }
      later();
    }
    customer.addEventListener("input", later);
    ["desktop", "mobile"].forEach(function (width) {
      $("view-" + width).addEventListener("click", function () {
        frame.classList.remove("desktop", "mobile");
        frame.classList.add(width);
        $("view-desktop").setAttribute("aria-pressed", String(width === "desktop"));
        $("view-mobile").setAttribute("aria-pressed", String(width === "mobile"));
      });
    });

    // -- a test to an address, and saving --
    var to = $("test-to");
    if (to) {
      try { to.value = window.localStorage.getItem(TEST_TO + root.dataset.user) || ""; } catch (e) { /* storage off: type it */ }
      $("test-button").addEventListener("click", function () {
        var result = $("test-result");
        result.textContent = "Sending…";
        try { window.localStorage.setItem(TEST_TO + root.dataset.user, to.value.trim()); } catch (e) { /* storage off */ }
        fetch(root.dataset.test, {
          method: "POST", credentials: "same-origin",
          headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": token},
          body: JSON.stringify({definition: single(), customer: customer.value, to: to.value})
        }).then(function (response) {
          return response.json().then(function (body) { return [response.status, body]; });
        }).then(function (answer) {
          var body = answer[1];
          result.dataset.status = answer[0] === 200 ? body.status : "error";
          result.textContent = answer[0] === 200
            ? "Test " + body.status + " to " + body.to + (body.reason ? ": " + body.reason : ".")
            : (body.errors || []).map(function (e) { return e.field + ": " + e.reason; }).join("; ");
        }, function () { result.dataset.status = "error"; result.textContent = "The server did not answer."; });
      });
      $("design-form").addEventListener("submit", function () {
        $("design-definition").value = JSON.stringify(whole());
        $("design-customer").value = customer.value;
      });
    }

    draw();
    ask();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("designer");
    if (root) { designer(root); }
  });
})();
