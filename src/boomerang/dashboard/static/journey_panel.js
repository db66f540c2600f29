// The journey canvas's side panel (templates/journey_editor.html): the fields of the selected node, of the
// trigger or of the journey, with pickers filled from the shop's data; static/journey_editor.js draws the canvas
// and hands this panel what it needs (`c`): the definition, the selection, the verdicts and its edit functions.
(function () {
  "use strict";
  window.JourneyPanel = function (c) {
    var P = c.P, D = c.D, edit = c.edit, TRIGGER = c.TRIGGER, NAMES = c.NAMES, panel = c.panel;
    var outs = c.outs, target = c.target, connect = c.connect, changed = c.changed, remove = c.remove, rename = c.rename;
    var TRIGGER_NAMES = {
      event: "an event", segment: "entering or leaving a segment", date: "a date (birthday, first order)",
      inactive_days: "no order for some days", lifecycle: "a lifecycle stage", next_purchase_offset_days:
      "the predicted next purchase", replenish_offset_days: "running out of a product", manual: "manual or API entry"
    };

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
      var def = c.def();
      var others = [["", "— not connected —"]].concat(Object.keys(def.nodes).filter(function (k) { return k !== id; }).map(function (k) { return [k, k]; }));
      return outs(id).map(function (s) {
        return field((s[1] || "next") + " →", select(target(id, s[0]) || "", others, {"data-way": s[0]}), function (v) { connect(id, s[0], v || null); });
      });
    }
    function nodeFields(id) {
      var def = c.def();
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
        f.push(field("roll out the winner", input("", {type: "checkbox", name: "roll_out", checked: n.roll_out ? "checked" : null}),
          function (v) { setOrDrop(n, "roll_out", v || undefined); }, "once the intervals name a winner, everyone after gets it"));
        f.push(field("winner", select(n.winner || "", [["", "— none yet: split by weight —"]].concat((n.variants || []).map(function (v) { return [v.name, v.name]; })), {name: "winner"}),
          function (v) { setOrDrop(n, "winner", v || undefined); }, "every customer after goes to this variant"));
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
      var def = c.def();
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
      var def = c.def();
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
      var def = c.def();
      var title, fields, extra = [];
      if (c.selected() === TRIGGER) {
        title = "Trigger";
        fields = triggerFields();
      } else if (c.selected() && c.selected().edge) {
        title = "Connection";
        fields = [h("p", {text: c.selected().edge[0] + " → " + target(c.selected().edge[0], c.selected().edge[1])})];
        if (edit) { extra.push(button("Disconnect", function () { connect(c.selected().edge[0], c.selected().edge[1], null); c.select(null); changed(); showPanel(); }, "danger")); }
      } else if (c.selected() && def.nodes[c.selected()]) {
        var id = c.selected();
        title = NAMES[def.nodes[id].type] || def.nodes[id].type;
        var nameInput = input(id, {name: "node_name", "data-node-name": id});
        if (!edit) { nameInput.disabled = true; }
        nameInput.addEventListener("change", function () {
          if (rename(id, nameInput.value.trim())) { changed(); showPanel(); } else { nameInput.value = id; }
        });
        fields = [h("label", {"class": "jc-field"}, [document.createTextNode("node name"), nameInput])].concat(nodeFields(id), wayFields(id));
        if (edit) { extra.push(button("Delete node", function () { remove(id); }, "danger")); }
      } else {
        c.select(null);
        title = "Journey";
        fields = journeyFields();
      }
      panel.replaceChildren(h("h2", {text: title}), h("div", {"class": "jc-problems", id: "jc-problems", role: "alert"}));
      fields.concat(extra).forEach(function (f) { panel.appendChild(f); });
      panel.dataset.selected = c.selected() && c.selected().edge ? "edge" : (c.selected() || "journey");
      showProblems();
    }
    function showProblems() {
      var box = document.getElementById("jc-problems");
      if (!box) { return; }
      var key = c.selected() && !c.selected().edge ? c.selected() : "journey";
      var list = (c.problems()[key] || []).map(function (m) { return h("div", {"class": "error", text: m}); })
        .concat((c.warnings()[key] || []).map(function (m) { return h("div", {"class": "warn", text: "⚠ " + m}); }));
      box.replaceChildren.apply(box, list);
    }

    return {show: showPanel, problems: showProblems, button: button};
  };
})();
