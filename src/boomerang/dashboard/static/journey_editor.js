// The journey canvas (templates/journey_editor.html): one definition drawn as boxes on an SVG and written as
// JSON in the text view. Every change redraws both, asks the engine's parser (/journeys/validate) and shows
// each error on its node; Save posts the definition with the positions of the boxes (its `layout`).
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
  var TRIGGER_NAMES = {
    event: "an event", segment: "entering or leaving a segment", date: "a date (birthday, first order)",
    inactive_days: "no order for some days", lifecycle: "a lifecycle stage", next_purchase_offset_days:
    "the predicted next purchase", replenish_offset_days: "running out of a product", manual: "manual or API entry"
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
    words(g, 14, 17, cut(b.id === TRIGGER ? "Trigger" : b.id, 20), "name");
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
    var body = new URLSearchParams(new FormData(form));
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

  // -- the side panel ------------------------------------------------------------------------------

  function h(tag, attrs, kids) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else if (attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== false) { node.setAttribute(k, attrs[k]); }
    });
    (kids || []).forEach(function (kid) { if (kid) { node.appendChild(kid); } });
    return node;
  }
  function datalist(id, values) {
    var list = document.getElementById(id) || h("datalist", {id: id});
    list.replaceChildren.apply(list, values.map(function (v) { return h("option", {value: v}); }));
    if (!list.parentNode) { panel.appendChild(list); }
    return id;
  }
  // one field: label, control, and what to do with its value
  function field(label, control, set, hint) {
    if (!edit) { control.disabled = true; }
    control.addEventListener(control.tagName === "SELECT" || control.type === "checkbox" ? "change" : "input", function () {
      set(control.type === "checkbox" ? control.checked : control.value);
      changed();
    });
    return h("label", {"class": "jc-field"}, [document.createTextNode(label), control, hint ? h("span", {"class": "hint", text: hint}) : null]);
  }
  function input(value, attrs) { return h("input", Object.assign({value: value === undefined || value === null ? "" : value}, attrs || {})); }
  function select(value, options, attrs) {
    var s = h("select", attrs || {});
    var known = options.map(function (o) { return Array.isArray(o) ? o[0] : o; });
    if (value && known.indexOf(value) < 0) { options = options.concat([[value, value + " (not saved yet)"]]); }
    options.forEach(function (o) {
      var v = Array.isArray(o) ? o[0] : o, t = Array.isArray(o) ? o[1] : o;
      s.appendChild(h("option", {value: v, text: t}));
    });
    s.value = value === undefined || value === null ? "" : value;
    return s;
  }
  function num(v) { return v === "" ? undefined : Number(v); }
  function setOrDrop(obj, key, value) { if (value === undefined || value === "" || (typeof value === "number" && isNaN(value))) { delete obj[key]; } else { obj[key] = value; } }

  function wayFields(id) {
    var others = [["", "— not connected —"]].concat(Object.keys(def.nodes).filter(function (k) { return k !== id; }).map(function (k) { return [k, k]; }));
    return outs(id).map(function (s) {
      return field((s[1] || "next") + " →", select(target(id, s[0]) || "", others, {"data-way": s[0]}), function (v) { connect(id, s[0], v || null); });
    });
  }
  function nodeFields(id) {
    var n = def.nodes[id];
    var f = [];
    var events = datalist("jc-events", P.events);
    switch (n.type) {
    case "wait":
      ["days", "hours", "minutes"].forEach(function (u) {
        f.push(field(u, input(n[u], {type: "number", min: "0", step: "any", name: u}), function (v) { setOrDrop(n, u, num(v)); }));
      });
      break;
    case "wait_until":
      f.push(field("time (customer's local)", input(n.time, {type: "time", name: "time"}), function (v) { n.time = v; }));
      break;
    case "wait_event":
      f.push(field("event", input(n.event, {list: events, name: "event"}), function (v) { n.event = v; }));
      f.push(field("timeout (hours)", input(n.timeout_hours, {type: "number", min: "0", step: "any", name: "timeout_hours"}), function (v) { setOrDrop(n, "timeout_hours", num(v)); }));
      f.push(field("same key as the trigger", h("input", {type: "checkbox", name: "same_key", checked: n.same_key ? "checked" : null}), function (v) { setOrDrop(n, "same_key", v || undefined); }));
      break;
    case "send":
      f.push(field("channel", select(n.channel, P.channels, {name: "channel"}), function (v) { n.channel = v; }));
      f.push(field("template", input(n.template, {list: datalist("jc-templates", P.templates.map(function (t) { return t.name; })), name: "template"}),
        function (v) { n.template = v; }, templateHint(n.template)));
      f.push(field("fallback channels", input((n.fallback || []).join(", "), {name: "fallback", placeholder: "e.g. telegram, sms"}),
        function (v) { setOrDrop(n, "fallback", v.trim() ? v.split(",").map(function (s) { return s.trim(); }).filter(Boolean) : undefined); }, "tried in order when the customer cannot get the channel"));
      f.push(field("over a frequency cap", select(n.when_capped || "defer", [["defer", "send later"], ["drop", "drop it"]], {name: "when_capped"}), function (v) { n.when_capped = v; }));
      break;
    case "branch":
      f.push(field("rule (a segment rule, JSON)", h("textarea", {rows: "4", name: "rule", "class": "mono", text: JSON.stringify(n.rule || {})}), function (v) {
        try { n.rule = JSON.parse(v); } catch (err) { n.rule = v; }
      }, "yes when the customer matches it at that moment"));
      f.push(field("or: a member of the segment", select("", [["", "—"]].concat(P.segments.map(function (s) { return [s.name, s.name + " (" + (s.size === null ? "?" : s.size) + ")"]; })), {name: "rule_segment"}),
        function (v) { if (v) { n.rule = {segment: v}; showPanel(); } }));
      f.push(field("or: did an event in the last 7 days", input("", {list: events, name: "rule_event"}),
        function (v) { if (v) { n.rule = {event: v, within_days: 7}; } }));
      break;
    case "split":
      (n.variants || []).forEach(function (v, i) {
        f.push(field("variant " + (i + 1) + " name", input(v.name, {name: "variant_name_" + i}), function (x) { v.name = x; }));
        f.push(field("variant " + (i + 1) + " weight", input(v.weight, {type: "number", min: "0", step: "any", name: "variant_weight_" + i}), function (x) { v.weight = num(x); }));
      });
      if (edit) {
        f.push(h("p", {}, [button("+ variant", function () { n.variants.push({name: "v" + (n.variants.length + 1), weight: 50}); changed(); showPanel(); }),
          n.variants.length > 2 ? button("− last variant", function () { n.variants.pop(); changed(); showPanel(); }) : null]));
      }
      break;
    case "loyalty":
      f.push(field("action", select(n.action, [["award_points", "award points"], ["promo_code", "a promo code"]], {name: "action"}), function (v) {
        n.action = v;
        if (v === "promo_code") { delete n.points; n.discount_percent = n.discount_percent || 10; } else { delete n.discount_percent; n.points = n.points || 100; }
        showPanel();
      }));
      if (n.action === "promo_code") {
        f.push(field("discount %", input(n.discount_percent, {type: "number", min: "0", max: "100", step: "any", name: "discount_percent"}), function (v) { setOrDrop(n, "discount_percent", num(v)); }));
        f.push(field("valid for days", input(n.valid_days || 14, {type: "number", min: "1", max: "365", name: "valid_days"}), function (v) { setOrDrop(n, "valid_days", num(v)); }));
      } else {
        f.push(field("points", input(n.points, {type: "number", min: "1", name: "points"}), function (v) { setOrDrop(n, "points", num(v)); }));
      }
      break;
    case "approval":
      f.push(field("note for the approver", input(n.note, {name: "note"}), function (v) { n.note = v; }));
      break;
    case "update_profile":
      f.push(field("attribute", input(n.attribute, {name: "attribute"}), function (v) { n.attribute = v; }));
      f.push(field("value", input(typeof n.value === "string" ? n.value : JSON.stringify(n.value), {name: "value"}), function (v) {
        try { n.value = JSON.parse(v); } catch (err) { n.value = v; }
      }, "text, or JSON (a number, true, a list)"));
      break;
    case "webhook":
      f.push(field("URL", input(n.url, {type: "url", name: "url"}), function (v) { n.url = v; }));
      break;
    }
    return f;
  }
  function templateHint(name) {
    var t = P.templates.filter(function (x) { return x.name === name; })[0];
    return t ? "written for " + (t.channels.join(", ") || "no channel yet") : "no template of this name yet";
  }
  function button(label, act, cls) {
    var b = h("button", {type: "button", "class": cls || null, text: label});
    b.addEventListener("click", act);
    return b;
  }

  function triggerFields() {
    var t = def.trigger = def.trigger || {manual: true};
    var kind = P.triggers.filter(function (k) { return k in t; })[0] || "manual";
    var f = [field("starts on", select(kind, P.triggers.map(function (k) { return [k, TRIGGER_NAMES[k] || k]; }), {name: "trigger_kind"}), function (v) {
      var fresh = {event: {event: P.events[0] || ""}, segment: {segment: P.segments.length ? P.segments[0].name : ""}, date: {date: "birthday"},
        inactive_days: {inactive_days: 90}, lifecycle: {lifecycle: "sleeping"}, next_purchase_offset_days: {next_purchase_offset_days: -3},
        replenish_offset_days: {replenish_offset_days: -3}, manual: {manual: true}};
      def.trigger = fresh[v];
      showPanel();
    })];
    var events = datalist("jc-events", P.events);
    if (kind === "event") {
      var props = datalist("jc-props", []);
      var fill = function (name) {
        if (!name) { return; }
        fetch(D.urls.properties + "?event=" + encodeURIComponent(name), {credentials: "same-origin", headers: {"Accept": "application/json"}})
          .then(function (r) { return r.ok ? r.json() : {properties: []}; })
          .then(function (b) { datalist("jc-props", b.properties || []); }, function () {});
      };
      fill(t.event);
      f.push(field("event", input(t.event, {list: events, name: "trigger_event"}), function (v) { t.event = v; fill(v); }));
      f.push(field("one instance per (property)", input(t.key, {list: props, name: "trigger_key"}), function (v) { setOrDrop(t, "key", v.trim() || undefined); }, "e.g. cart_id: one per cart"));
      f.push(field("only where (JSON: property → value)", input(t.where ? JSON.stringify(t.where) : "", {name: "trigger_where", list: props, placeholder: "{\"category\": \"Coffee\"}"}), function (v) {
        if (!v.trim()) { delete t.where; return; }
        try { t.where = JSON.parse(v); } catch (err) { t.where = v; }
      }));
    } else if (kind === "segment") {
      f.push(field("segment", select(t.segment, P.segments.map(function (s) { return [s.name, s.name + " (" + (s.size === null ? "?" : s.size) + " now)"]; }), {name: "trigger_segment"}), function (v) { t.segment = v; }));
      f.push(field("when the customer", select(t.on || "entered", [["entered", "enters it"], ["exited", "leaves it"]], {name: "trigger_on"}), function (v) { t.on = v; }));
    } else if (kind === "date") {
      f.push(field("date", select(t.date, [["birthday", "birthday"], ["first_order", "first order's anniversary"]], {name: "trigger_date"}), function (v) { t.date = v; }));
      f.push(field("offset (days; −7: a week before)", input(t.offset_days || 0, {type: "number", name: "trigger_offset"}), function (v) { setOrDrop(t, "offset_days", num(v)); }));
    } else if (kind === "lifecycle") {
      f.push(field("stage", select(t.lifecycle, ["new", "active", "sleeping", "churned", "reactivated"], {name: "trigger_lifecycle"}), function (v) { t.lifecycle = v; }));
    } else if (kind !== "manual") {
      f.push(field(kind.replace(/_/g, " "), input(t[kind], {type: "number", name: "trigger_" + kind}), function (v) { setOrDrop(t, kind, num(v)); }));
      if (kind === "replenish_offset_days") {
        f.push(field("repeats before a cycle is trusted", input(t.min_repeats || 3, {type: "number", min: "1", name: "trigger_min_repeats"}), function (v) { setOrDrop(t, "min_repeats", num(v)); }));
      }
    }
    return f.concat(wayFields(TRIGGER));
  }

  function journeyFields() {
    var f = [];
    var locked = D.mode === "edit";
    var name = input(def.name, {name: "name", pattern: "[a-z][a-z0-9_]*", placeholder: "lower_case_name", readonly: locked ? "readonly" : null});
    f.push(field("name", name, function (v) { def.name = v; }, locked ? "a saved journey keeps its name: duplicate it to rename" : "lower-case letters, digits and _"));
    f.push(field("title", input(def.title, {name: "title"}), function (v) { def.title = v; }));
    f.push(field("description", h("textarea", {rows: "2", name: "description", text: def.description || ""}), function (v) { setOrDrop(def, "description", v || undefined); }));
    f.push(field("category", select(def.category || "triggered", [["triggered", "triggered"], ["promotional", "promotional"], ["transactional", "transactional (exempt from caps)"]], {name: "category"}), function (v) { def.category = v; }));
    var goal = def.goal === undefined ? {event: "Order Completed", within_days: 7} : def.goal;
    f.push(field("goal event (empty: none)", input(goal ? goal.event : "", {list: datalist("jc-events", P.events), name: "goal_event"}), function (v) {
      def.goal = v.trim() ? Object.assign({}, def.goal || {within_days: 7}, {event: v}) : null;
    }));
    f.push(field("goal within days", input(goal ? goal.within_days : "", {type: "number", min: "0", step: "any", name: "goal_days"}), function (v) {
      if (def.goal || def.goal === undefined) { def.goal = Object.assign({event: "Order Completed"}, def.goal || {}, {within_days: num(v)}); }
    }));
    f.push(field("control group share (0–0.99)", input(def.control_share === undefined ? 0.1 : def.control_share, {type: "number", min: "0", max: "0.99", step: "0.01", name: "control_share"}), function (v) { setOrDrop(def, "control_share", num(v)); }));
    var re = def.reentry || {};
    f.push(field("re-entry", select(re.mode || "after", [["after", "after some days"], ["never", "never"], ["always", "always"]], {name: "reentry_mode"}), function (v) { def.reentry = Object.assign({}, def.reentry || {}, {mode: v}); }));
    f.push(field("re-entry after days", input(re.days === undefined ? 30 : re.days, {type: "number", min: "0", name: "reentry_days"}), function (v) { def.reentry = Object.assign({}, def.reentry || {}, {days: num(v)}); }));
    f.push(field("at most at once per customer", input(def.max_concurrent || 1, {type: "number", min: "1", max: "100", name: "max_concurrent"}), function (v) { setOrDrop(def, "max_concurrent", num(v)); }));
    return f;
  }

  function showPanel() {
    var title, fields, extra = [];
    if (selected === TRIGGER) {
      title = "Trigger";
      fields = triggerFields();
    } else if (selected && selected.edge) {
      title = "Connection";
      fields = [h("p", {text: selected.edge[0] + " → " + target(selected.edge[0], selected.edge[1])})];
      if (edit) { extra.push(button("Disconnect", function () { connect(selected.edge[0], selected.edge[1], null); selected = null; changed(); showPanel(); }, "danger")); }
    } else if (selected && def.nodes[selected]) {
      var id = selected;
      title = NAMES[def.nodes[id].type] || def.nodes[id].type;
      var nameInput = input(id, {name: "node_name", "data-node-name": id});
      if (!edit) { nameInput.disabled = true; }
      nameInput.addEventListener("change", function () {
        if (rename(id, nameInput.value.trim())) { changed(); showPanel(); } else { nameInput.value = id; }
      });
      fields = [h("label", {"class": "jc-field"}, [document.createTextNode("node name"), nameInput])].concat(nodeFields(id), wayFields(id));
      if (edit) { extra.push(button("Delete node", function () { remove(id); }, "danger")); }
    } else {
      selected = null;
      title = "Journey";
      fields = journeyFields();
    }
    panel.replaceChildren(h("h2", {text: title}), h("div", {"class": "jc-problems", id: "jc-problems", role: "alert"}));
    fields.concat(extra).forEach(function (f) { panel.appendChild(f); });
    panel.dataset.selected = selected && selected.edge ? "edge" : (selected || "journey");
    showProblems();
  }
  function showProblems() {
    var box = document.getElementById("jc-problems");
    if (!box) { return; }
    var key = selected && !selected.edge ? selected : "journey";
    var list = (problems[key] || []).map(function (m) { return h("div", {"class": "error", text: m}); })
      .concat((warnings[key] || []).map(function (m) { return h("div", {"class": "warn", text: "⚠ " + m}); }));
    box.replaceChildren.apply(box, list);
  }

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
