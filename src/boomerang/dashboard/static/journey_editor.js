// The journey canvas (templates/journey_editor.html): one definition drawn as boxes on an SVG and written as
// JSON in the text view. Every change redraws both, asks the engine's parser (/journeys/validate) and shows
// each error on its node; Save posts the definition with the positions of the boxes (its `layout`). The side
// panel's fields are static/journey_panel.js.
(function () {
  "use strict";
  var source = document.getElementById("jc-data");
  if (!source) { return; }
  var D = JSON.parse(source.textContent);
  var NS = "http://www.w3.org/2000/svg";
  var TRIGGER = "@trigger";
  var BOX_W = 212, HEAD = 26, LINE = 16, PAD = 8;
  var form = document.getElementById("jc-form");
  var svg = document.getElementById("jc-canvas");
  var panel = document.getElementById("jc-panel");
  var text = document.getElementById("jc-text");
  var banner = document.getElementById("jc-errors");
  var stateEl = document.getElementById("jc-state");
  var P = D.pickers;
  var edit = D.can_edit;

  var def = JSON.parse(JSON.stringify(D.definition || {}));
  def.nodes = def.nodes || {};
  var layout = JSON.parse(JSON.stringify(D.layout || {}));
  var selected = null;  // a node's id, TRIGGER, {edge: [node, slot]} or null (the journey's settings)
  var problems = {};  // node id or TRIGGER -> [reason]; "journey" -> [field: reason]
  var warnings = {};
  var dirty = false;
  var checkTimer = null, asked = 0;

  var DEFAULTS = {
    wait: function () { return {type: "wait", hours: 1}; },
    wait_until: function () { return {type: "wait_until", time: "10:00"}; },
    wait_event: function () { return {type: "wait_event", event: "Order Completed", timeout_hours: 24}; },
    send: function () {
      return {type: "send", channel: "email", template: P.templates.length ? P.templates[0].name : ""};
    },
    branch: function () { return {type: "branch", rule: {event: "Order Completed", within_days: 7}}; },
    split: function () { return {type: "split", variants: [{name: "a", weight: 50}, {name: "b", weight: 50}]}; },
    loyalty: function () { return {type: "loyalty", action: "award_points", points: 100}; },
    approval: function () { return {type: "approval", note: ""}; },
    update_profile: function () { return {type: "update_profile", attribute: "", value: ""}; },
    webhook: function () { return {type: "webhook", url: "https://"}; },
    exit: function () { return {type: "exit"}; }
  };
  var NAMES = {
    wait: "Wait", wait_until: "Wait until a time", wait_event: "Wait for an event", send: "Send a message",
    branch: "Branch (yes / no)", split: "A/B split", loyalty: "Points or promo code", approval: "Approval",
    update_profile: "Update profile", webhook: "Webhook", exit: "Exit"
  };

  // -- the ways out of a node ----------------------------------------------------------------------

  function slots(node) {
    switch (node.type) {
    case "exit": return [];
    case "branch": return [["yes", "yes"], ["no", "no"]];
    case "wait_event": return [["next", "timeout"], ["on_event", "on event"]];
    case "approval": return [["next", "approved"], ["on_reject", "rejected"]];
    case "split": return (node.variants || []).map(function (v, i) { return ["v" + i, v.name || "variant " + (i + 1)]; });
    default: return [["next", ""]];
    }
  }
  function target(id, slot) {
    if (id === TRIGGER) { return def.start || null; }
    var node = def.nodes[id];
    if (slot.charAt(0) === "v" && node.type === "split") { return (node.variants[+slot.slice(1)] || {}).next || null; }
    return node[slot] || null;
  }
  function connect(id, slot, to) {
    if (id === TRIGGER) { if (to) { def.start = to; } else { delete def.start; } return; }
    var node = def.nodes[id];
    if (slot.charAt(0) === "v" && node.type === "split") {
      var v = node.variants[+slot.slice(1)];
      if (to) { v.next = to; } else { delete v.next; }
    } else if (to) { node[slot] = to; } else { delete node[slot]; }
  }
  function outs(id) { return id === TRIGGER ? [["start", "start"]] : slots(def.nodes[id]); }

  // -- what a box says -----------------------------------------------------------------------------

  function hours(n) { return n === 1 ? "1 hour" : n + " hours"; }
  function summary(node) {
    switch (node.type) {
    case "wait":
      return ["wait " + [["days", "d"], ["hours", "h"], ["minutes", "min"]].filter(function (u) { return node[u[0]]; })
        .map(function (u) { return node[u[0]] + " " + u[1]; }).join(" ") || "wait (no duration)"];
    case "wait_until": return ["until " + (node.time || "?") + " local time"];
    case "wait_event": return ["for " + (node.event || "?"), "timeout " + hours(node.timeout_hours || 0) + (node.same_key ? " · same key" : "")];
    case "send": return [[node.channel].concat(node.fallback || []).join(" → "), "template " + (node.template || "?")];
    case "branch": return ["if " + JSON.stringify(node.rule || {})];
    case "split": return [(node.variants || []).map(function (v) { return v.name + " " + v.weight; }).join(" · ")];
    case "loyalty": return [node.action === "promo_code" ? "promo code −" + node.discount_percent + "%" : "award " + node.points + " points"];
    case "approval": return [node.note || "a person decides"];
    case "update_profile": return ["set " + (node.attribute || "?") + " = " + JSON.stringify(node.value)];
    case "webhook": return ["call " + (node.url || "?")];
    default: return ["end of the journey"];
    }
  }
  function triggerSummary(t) {
    t = t || {};
    if ("event" in t) { return ["event " + (t.event || "?") + (t.key ? ", per " + t.key : "")]; }
    if ("segment" in t) { return [(t.on === "exited" ? "leaves " : "enters ") + "segment " + (t.segment || "?")]; }
    if ("date" in t) { return [t.date + (t.offset_days ? " " + (t.offset_days > 0 ? "+" : "") + t.offset_days + " days" : "")]; }
    if ("inactive_days" in t) { return ["no order for " + t.inactive_days + " days"]; }
    if ("lifecycle" in t) { return ["lifecycle becomes " + t.lifecycle]; }
    if ("next_purchase_offset_days" in t) { return ["next purchase " + t.next_purchase_offset_days + " days"]; }
    if ("replenish_offset_days" in t) { return ["replenish " + t.replenish_offset_days + " days"]; }
    return ["manual or API entry"];
  }
  function counted(id) {
    var c = (D.counts || {})[id];
    if (!c) { return D.journey ? ["nobody yet"] : []; }
    var lines = [], here = c.here || {}, msgs = c.messages || {};
    if (c.passed) { lines.push("passed: " + c.passed); }
    var h = Object.keys(here).sort().map(function (k) { return here[k] + " " + k; });
    if (h.length) { lines.push("here: " + h.join(" · ")); }
    var m = Object.keys(msgs).sort().map(function (k) { return msgs[k] + " " + k.replace("_", " "); });
    if (m.length) { lines.push("messages: " + m.join(" · ")); }
    return lines.length ? lines : ["nobody yet"];
  }
  function cut(s, n) { s = String(s); return s.length > n ? s.slice(0, n - 1) + "…" : s; }

  // -- drawing -------------------------------------------------------------------------------------

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(node); }
    return node;
  }
  function words(parent, x, y, value, cls) {
    var t = el("text", {x: x, y: y, "class": cls || ""}, parent);
    t.textContent = value;
    return t;
  }
  function boxOf(id) {
    var node = id === TRIGGER ? null : def.nodes[id];
    var lines = id === TRIGGER ? triggerSummary(def.trigger) : summary(node);
    var counts = id === TRIGGER ? [] : counted(id);
    var errs = (problems[id] || []).map(function (m) { return [m, "problem"]; })
      .concat((warnings[id] || []).map(function (w) { return ["⚠ " + w, "warning"]; }));
    var n = outs(id).length;
    var pos = layout[id] || {x: 20, y: 20};
    return {id: id, node: node, lines: lines, counts: counts, errs: errs, x: pos.x, y: pos.y, w: BOX_W,
      h: HEAD + PAD + LINE * (lines.length + counts.length + Math.min(errs.length, 2)) + (n > 1 ? 14 : 4), ports: n};
  }
  function portAt(b, k) { return {x: b.x + b.w * (k + 1) / (b.ports + 1), y: b.y + b.h}; }

  function place(id, near) {
    if (layout[id]) { return; }
    var lowest = 0;
    Object.keys(layout).forEach(function (k) { if (k === TRIGGER || def.nodes[k]) { lowest = Math.max(lowest, layout[k].y); } });
    if (near && layout[near]) {
      var b = boxOf(near), taken = true, x = b.x, y = b.y + b.h + 60;
      while (taken) {
        taken = Object.keys(layout).some(function (k) { return Math.abs(layout[k].x - x) < BOX_W && Math.abs(layout[k].y - y) < 60; });
        if (taken) { x += BOX_W + 30; }
      }
      layout[id] = {x: x, y: y};
    } else {
      layout[id] = {x: 40, y: Object.keys(layout).length ? lowest + 130 : 20};
    }
  }
  function placeAll() {
    place(TRIGGER);
    var order = [], seen = {};
    (function walk(id) {
      if (!id || seen[id] || !def.nodes[id]) { return; }
      seen[id] = true;
      order.push(id);
      slots(def.nodes[id]).forEach(function (s) { walk(target(id, s[0])); });
    })(def.start);
    Object.keys(def.nodes).forEach(function (id) { if (!seen[id]) { order.push(id); } });
    order.forEach(function (id) {
      var parent = id === def.start ? TRIGGER : Object.keys(def.nodes).filter(function (p) {
        return slots(def.nodes[p]).some(function (s) { return target(p, s[0]) === id; }) && layout[p];
      })[0];
      place(id, parent);
    });
  }

  function draw() {
    placeAll();
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var defs = el("defs", {}, svg);
    var marker = el("marker", {id: "jc-arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto"}, defs);
    el("path", {d: "M0,0 L10,5 L0,10 z", "class": "arrow-head"}, marker);
    var ids = [TRIGGER].concat(Object.keys(def.nodes));
    var boxes = {};
    ids.forEach(function (id) { boxes[id] = boxOf(id); });
    var edges = el("g", {"class": "jc-edges"}, svg);
    var width = 600, height = 400;
    ids.forEach(function (id) {
      var b = boxes[id];
      width = Math.max(width, b.x + b.w + 120);
      height = Math.max(height, b.y + b.h + 120);
      outs(id).forEach(function (s, k) {
        var to = target(id, s[0]);
        if (!to || !boxes[to] || to === TRIGGER) { return; }
        var p = portAt(b, k), t = boxes[to], q = {x: t.x + t.w / 2, y: t.y - 5};
        var bend = Math.max(40, Math.abs(q.y - p.y) / 2);
        var d = "M" + p.x + "," + p.y + " C" + p.x + "," + (p.y + bend) + " " + q.x + "," + (q.y - bend) + " " + q.x + "," + q.y;
        var on = selected && selected.edge && selected.edge[0] === id && selected.edge[1] === s[0];
        var g = el("g", {"class": "jc-edge" + (on ? " selected" : ""), "data-from": id, "data-slot": s[0], "data-to": to}, edges);
        el("path", {d: d, "class": "edge", "marker-end": "url(#jc-arrow)"}, g);
        el("path", {d: d, "class": "hit"}, g);
        if (on && edit) {
          var mid = {x: (p.x + q.x) / 2, y: (p.y + q.y) / 2};
          var x = el("g", {"class": "jc-unlink", transform: "translate(" + mid.x + "," + mid.y + ")"}, g);
          el("circle", {r: 9}, x);
          words(x, 0, 4, "×", "").setAttribute("text-anchor", "middle");
        }
      });
    });
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    ids.forEach(function (id) { drawBox(boxes[id]); });
  }

  function drawBox(b) {
    var type = b.id === TRIGGER ? "trigger" : b.node.type;
    var cls = "jc-node type-" + type + (problems[b.id] ? " invalid" : "") + (selected === b.id ? " selected" : "");
    var g = el("g", {"class": cls, "data-node": b.id, transform: "translate(" + b.x + "," + b.y + ")", tabindex: "0"}, svg);
    el("rect", {"class": "box", width: b.w, height: b.h, rx: 8}, g);
    el("rect", {"class": "band", width: 5, height: b.h, rx: 2}, g);
    words(g, 14, 17, cut(b.id === TRIGGER ? "Trigger" : b.id, 29 - type.length), "name");  // beside its kind
    words(g, b.w - 10, 17, type.replace("_", " "), "kind").setAttribute("text-anchor", "end");
    var y = HEAD + 12;
    b.lines.forEach(function (line) { words(g, 14, y, cut(line, 30), "setting"); y += LINE; });
    b.counts.forEach(function (line) { words(g, 14, y, cut(line, 30), "count"); y += LINE; });
    b.errs.slice(0, 2).forEach(function (line) { words(g, 14, y, cut(line[0], 30), line[1]); y += LINE; });
    if (b.id !== TRIGGER) { el("circle", {"class": "port in", cx: b.w / 2, cy: 0, r: 5}, g); }
    outs(b.id).forEach(function (s, k) {
      var p = portAt(b, k);
      var port = el("circle", {"class": "port out" + (target(b.id, s[0]) ? " used" : ""), cx: p.x - b.x, cy: b.h, r: 6, "data-slot": s[0]}, g);
      el("title", {}, port).textContent = (s[1] || "next") + ": drag onto a box to connect";
      if (b.ports > 1) { words(g, p.x - b.x, b.h - 5, s[1], "slot").setAttribute("text-anchor", "middle"); }
    });
    var tip = el("title", {}, g);
    tip.textContent = [b.id === TRIGGER ? "trigger" : b.id + " (" + type + ")"].concat(b.lines, b.counts, b.errs.map(function (e) { return e[0]; })).join("\n");
  }

  // -- the mouse: select, move, connect, disconnect ------------------------------------------------

  function point(e) {
    var r = svg.getBoundingClientRect();
    return {x: e.clientX - r.left, y: e.clientY - r.top};
  }
  svg.addEventListener("pointerdown", function (e) {
    var port = e.target.closest(".port.out");
    var box = e.target.closest(".jc-node");
    var line = e.target.closest(".jc-edge");
    if (line && e.target.closest(".jc-unlink")) {  // the × on a selected connection
      connect(line.dataset.from, line.dataset.slot, null);
      selected = null;
      changed();
      showPanel();
      return;
    }
    if (line && !box) {
      selected = {edge: [line.dataset.from, line.dataset.slot]};
      draw();
      showPanel();
      return;
    }
    if (!box) { selected = null; draw(); showPanel(); return; }
    var id = box.dataset.node;
    e.preventDefault();
    if (port && edit) { return linking(e, id, port.dataset.slot); }
    var start = point(e), from = {x: layout[id].x, y: layout[id].y}, moved = false;
    function move(ev) {
      var p = point(ev);
      if (!edit || (!moved && Math.abs(p.x - start.x) + Math.abs(p.y - start.y) < 4)) { return; }
      moved = true;
      layout[id] = {x: Math.max(0, Math.round(from.x + p.x - start.x)), y: Math.max(0, Math.round(from.y + p.y - start.y))};
      draw();
    }
    function up() {
      document.removeEventListener("pointermove", move);
      document.removeEventListener("pointerup", up);
      if (moved) { dirty = true; writeText(); } else { selected = id; draw(); showPanel(); }
    }
    document.addEventListener("pointermove", move);
    document.addEventListener("pointerup", up);
  });
  function linking(e, id, slot) {
    var b = boxOf(id), k = outs(id).map(function (s) { return s[0]; }).indexOf(slot), p = portAt(b, k);
    var line = el("path", {"class": "jc-linking"}, svg);
    function move(ev) { var q = point(ev); line.setAttribute("d", "M" + p.x + "," + p.y + " L" + q.x + "," + q.y); }
    function up(ev) {
      document.removeEventListener("pointermove", move);
      document.removeEventListener("pointerup", up);
      line.remove();
      var under = document.elementFromPoint(ev.clientX, ev.clientY);
      var box = under && under.closest ? under.closest(".jc-node") : null;
      if (box && box.dataset.node !== TRIGGER && box.dataset.node !== id) {
        connect(id, slot, box.dataset.node);
        selected = id;
        changed();
      }
    }
    move(e);
    document.addEventListener("pointermove", move);
    document.addEventListener("pointerup", up);
  }
  svg.addEventListener("keydown", function (e) {  // a focused box (Tab) is selected with Enter
    var box = e.target.closest && e.target.closest(".jc-node");
    if (box && (e.key === "Enter" || e.key === " ")) {
      selected = box.dataset.node;
      draw();
      showPanel();
      e.preventDefault();
    }
  });
  document.addEventListener("keydown", function (e) {
    if (!edit || (e.key !== "Delete" && e.key !== "Backspace")) { return; }
    var tag = (document.activeElement || {}).tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") { return; }
    if (selected && selected.edge) { connect(selected.edge[0], selected.edge[1], null); selected = null; changed(); e.preventDefault(); }
    else if (selected && selected !== TRIGGER) { remove(selected); e.preventDefault(); }
  });

  // -- changing the definition ---------------------------------------------------------------------

  function freeName(type) {
    var base = type === "wait_event" ? "wait_for" : type, n = 1;
    while (def.nodes[base + "_" + n]) { n += 1; }
    return base + "_" + n;
  }
  function add(type) {
    var id = freeName(type);
    def.nodes[id] = DEFAULTS[type]();
    var after = selected && !selected.edge ? selected : null;
    if (after && (after === TRIGGER || def.nodes[after])) {
      var free = outs(after).filter(function (s) { return !target(after, s[0]); })[0];
      if (free) { connect(after, free[0], id); }
    } else if (!def.start) {
      def.start = id;
      after = TRIGGER;
    }
    place(id, after);
    selected = id;
    changed();
    showPanel();
  }
  function remove(id) {
    delete def.nodes[id];
    delete layout[id];
    if (def.start === id) { delete def.start; }
    Object.keys(def.nodes).forEach(function (other) {
      slots(def.nodes[other]).forEach(function (s) { if (target(other, s[0]) === id) { connect(other, s[0], null); } });
    });
    selected = null;
    changed();
    showPanel();
  }
  function rename(id, to) {
    if (!to || to === id || def.nodes[to] || to === TRIGGER) { return false; }
    var nodes = {};
    Object.keys(def.nodes).forEach(function (k) { nodes[k === id ? to : k] = def.nodes[k]; });
    def.nodes = nodes;
    Object.keys(def.nodes).forEach(function (other) {
      slots(def.nodes[other]).forEach(function (s) { if (target(other, s[0]) === id) { connect(other, s[0], to); } });
    });
    if (def.start === id) { def.start = to; }
    layout[to] = layout[id];
    delete layout[id];
    selected = to;
    return true;
  }
  function changed() {
    dirty = true;
    draw();
    writeText();
    check();
  }

  // -- the text view -------------------------------------------------------------------------------

  var ORDER = ["name", "title", "description", "category", "purpose", "trigger", "goal", "control_share", "reentry",
    "max_concurrent", "start", "nodes"];
  function plain() {
    var out = {};
    ORDER.concat(Object.keys(def)).forEach(function (k) { if (k !== "layout" && k in def && !(k in out)) { out[k] = def[k]; } });
    return out;
  }
  function withLayout() {
    var out = plain(), kept = {};
    Object.keys(layout).forEach(function (k) { if (k === TRIGGER || def.nodes[k]) { kept[k] = layout[k]; } });
    out.layout = kept;
    return out;
  }
  function writeText() { text.value = JSON.stringify(plain(), null, 2); }
  var apply = document.getElementById("jc-apply");
  if (apply) {
    apply.addEventListener("click", function () {
      post(D.urls.validate, text.value).then(function (answer) {
        var body = answer[1];
        if (body.definition && typeof body.definition === "object" && !Array.isArray(body.definition)) {
          def = body.definition;
          def.nodes = def.nodes && typeof def.nodes === "object" ? def.nodes : {};
          if (def.layout) { Object.keys(def.layout).forEach(function (k) { layout[k] = def.layout[k]; }); delete def.layout; }
          dirty = true;
          selected = null;
          draw();
          showPanel();
        }
        shown(body);
      });
    });
  }

  // -- the engine's verdict ------------------------------------------------------------------------

  function post(url, definition) {
    var body = new URLSearchParams();  // the token and the version edited, not the panel's fields
    ["csrf_token", "version"].forEach(function (k) { body.set(k, form.elements[k].value); });
    body.set("definition", definition);
    return fetch(url, {method: "POST", credentials: "same-origin", headers: {"Accept": "application/json"}, body: body})
      .then(function (r) {
        return r.json().then(function (b) { return [r.status, b]; }, function () {
          return [r.status, {errors: [{field: "journey", reason: "no answer (status " + r.status + "): reload the page"}]}];
        });
      }, function () { return [0, {errors: [{field: "journey", reason: "the server did not answer"}]}]; });
  }
  function check() {
    clearTimeout(checkTimer);
    checkTimer = setTimeout(function () {
      var mine = ++asked;
      status("checking…", "busy");
      post(D.urls.validate, JSON.stringify(withLayout())).then(function (answer) {
        if (mine === asked) { shown(answer[1]); }
      });
    }, 350);
  }
  function owner(field, reason) {
    var parts = String(field || "").split(".");
    if (parts[0] === "nodes" && parts.length > 1 && def.nodes[parts[1]]) { return [parts[1]]; }
    if (parts[0] === "trigger" || parts[0] === "start") { return [TRIGGER]; }
    if (field === "nodes") {
      var named = reason.replace(/^[^:]*:/, "").split(/,| -> /).map(function (s) { return s.trim(); })
        .filter(function (s) { return def.nodes[s]; });
      if (named.length) { return named; }
    }
    return ["journey"];
  }
  function shown(body) {
    problems = {};
    warnings = {};
    (body.errors || []).forEach(function (e) {
      owner(e.field, e.reason).forEach(function (k) {
        (problems[k] = problems[k] || []).push(k === "journey" ? e.field + ": " + e.reason : shortField(e.field) + e.reason);
      });
    });
    (body.warnings || []).forEach(function (w) {
      owner(w.field, w.reason).forEach(function (k) { (warnings[k] = warnings[k] || []).push(w.reason); });
    });
    var n = (body.errors || []).length;
    status(n ? n + (n === 1 ? " problem" : " problems") : "valid", n ? "bad" : "ok");
    var general = problems.journey || [];
    banner.hidden = !general.length;
    banner.replaceChildren.apply(banner, general.map(function (m) { var d = document.createElement("div"); d.textContent = m; return d; }));
    draw();
    showProblems();
  }
  function shortField(field) {
    var parts = String(field || "").split(".");
    var rest = parts[0] === "nodes" ? parts.slice(2) : parts.slice(1);
    return rest.length ? rest.join(".") + ": " : "";
  }
  function status(message, kind) {
    if (!stateEl) { return; }
    stateEl.textContent = message;
    stateEl.dataset.state = kind;
  }

  // -- saving --------------------------------------------------------------------------------------

  form.addEventListener("submit", function (e) { e.preventDefault(); });  // Enter in a field saves nothing
  var save = document.getElementById("jc-save");
  if (save) {
    save.addEventListener("click", function () {
      save.disabled = true;
      status("saving…", "busy");
      post(D.urls.save, JSON.stringify(withLayout())).then(function (answer) {
        save.disabled = false;
        if (answer[0] === 200 && answer[1].saved) {
          dirty = false;
          var s = answer[1].saved;
          window.location.assign("/journeys/" + encodeURIComponent(s.name) + "/edit?saved=" + s.version);
          return;
        }
        shown({errors: answer[1].errors || [{field: "journey", reason: "not saved (status " + answer[0] + ")"}]});
        status("not saved: " + (answer[1].errors || []).length + " problem(s)", "bad");
      });
    });
  }
  window.addEventListener("beforeunload", function (e) { if (dirty && edit) { e.preventDefault(); e.returnValue = ""; } });
  var params = new URLSearchParams(window.location.search);
  if (params.get("saved")) { status("saved as version " + params.get("saved"), "ok"); }

  // -- the side panel (static/journey_panel.js) ----------------------------------------------------

  var side = window.JourneyPanel({
    P: P, D: D, edit: edit, TRIGGER: TRIGGER, NAMES: NAMES, panel: panel,
    def: function () { return def; },
    selected: function () { return selected; },
    select: function (id) { selected = id; },
    problems: function () { return problems; },
    warnings: function () { return warnings; },
    outs: outs, target: target, connect: connect, changed: changed, remove: remove, rename: rename
  });
  function showPanel() { side.show(); }
  function showProblems() { side.problems(); }
  var button = side.button;

  // -- the palette ---------------------------------------------------------------------------------

  var palette = document.getElementById("jc-palette");
  if (palette) {
    ["wait", "wait_until", "wait_event", "send", "branch", "split", "loyalty", "approval", "update_profile", "webhook", "exit"]
      .filter(function (t) { return P.node_types.indexOf(t) >= 0; })
      .forEach(function (type) {
        var b = button(NAMES[type], function () { add(type); }, "jc-add type-" + type);
        b.dataset.type = type;
        palette.appendChild(b);
      });
  }

  draw();
  writeText();
  showPanel();
  if (edit) { check(); }
  dirty = false;
})();
