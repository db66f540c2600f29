// The segment builder: condition rows (all/any/not groups, nested) over the shop's own vocabulary, and the
// rule's text beside them. Editing the rows rewrites the text (which app.js previews, debounced); editing the
// text and applying it rebuilds the rows. A condition the rows have no controls for stays as JSON in its row.
// Text only, never HTML: every label and value goes in through textContent or value.
(function () {
  "use strict";

  var vocab, rules, form, textarea, rowsBox, note, textStatus, textErrors, applyButton, token, root;
  var writing = false, textDirty = false, uid = 0, datalists = {};
  // -- drawing -------------------------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else if (k === "className") { node.className = attrs[k]; }
      else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }

  function select(field, options, value, onChange, label) {
    var box = el("select", {"data-field": field, "aria-label": label || field});
    var found = false;
    options.forEach(function (o) {
      var pair = Array.isArray(o) ? o : [o, o];
      var option = el("option", {value: pair[0], text: pair[1]});
      if (String(pair[0]) === String(value)) { option.selected = true; found = true; }
      box.appendChild(option);
    });
    if (!found && value !== undefined && value !== null && value !== "") {  // a value the list does not offer
      var kept = el("option", {value: value, text: value + " (not in this shop's data)"});
      kept.selected = true;
      box.appendChild(kept);
    }
    box.addEventListener("change", function () { onChange(box.value); });
    return box;
  }

  function datalist(key, values) {
    if (!values || !values.length) { return null; }
    if (!datalists[key]) {
      var id = "dl-" + (++uid);
      var list = el("datalist", {id: id});
      values.forEach(function (v) { list.appendChild(el("option", {value: v})); });
      document.body.appendChild(list);
      datalists[key] = id;
    }
    return datalists[key];
  }

  function input(field, value, onInput, attrs) {
    var box = el("input", Object.assign({"data-field": field, "aria-label": field}, attrs || {}));
    box.value = value === null || value === undefined ? "" : String(value);
    box.addEventListener("input", function () { onInput(box.value); });
    return box;
  }

  // The value editor of a comparison: nothing, one value, a list, or two ends, typed by kind.
  function valueEditor(prefix, kind, op, value, set, suggestions) {
    var wrap = el("span", {className: "value-editor"});
    if (rules.noValue(op)) { return wrap; }
    var type = rules.DAYS_OPS.indexOf(op) >= 0 || op === "top_percent" || kind === "number" ? "number"
      : kind === "date" ? "date" : "text";
    var list = type === "text" ? datalist(prefix + "|" + (suggestions || []).join("\u0001"), suggestions) : null;
    if (op === "between") {
      var ends = Array.isArray(value) ? value.slice() : ["", ""];
      [0, 1].forEach(function (i) {
        wrap.appendChild(input(prefix + "-value-" + (i ? "high" : "low"), ends[i], function (text) {
          ends[i] = rules.coerce(text, kind, op);
          set(ends.slice());
        }, {type: type, step: "any"}));
        if (!i) { wrap.appendChild(el("span", {text: " and "})); }
      });
      return wrap;
    }
    if (op === "in" || op === "not_in") {
      wrap.appendChild(input(prefix + "-value", rules.shownValue(value), function (text) {
        set(text.split(",").map(function (t) { return t.trim(); }).filter(Boolean).map(function (t) {
          return rules.coerce(t, kind, op);
        }));
      }, {placeholder: "a, b, c", title: "values separated by commas"}));
      return wrap;
    }
    var attrs = {type: type, step: "any"};
    if (list) { attrs.list = list; }
    if (rules.DAYS_OPS.indexOf(op) >= 0) { attrs.min = "0"; attrs.step = "1"; }
    wrap.appendChild(input(prefix + "-value", rules.shownValue(value), function (text) { set(rules.coerce(text, kind, op)); }, attrs));
    if (rules.DAYS_OPS.indexOf(op) >= 0) { wrap.appendChild(el("span", {text: " days"})); }
    if (op === "top_percent") { wrap.appendChild(el("span", {text: " %"})); }
    return wrap;
  }

  function opSelect(prefix, kind, node, extra) {
    var ops = rules.operators(kind, extra);
    if (ops.indexOf(node.op) < 0) { node.op = ops[0]; }
    return select(prefix + "-op", ops.map(function (op) { return [op, rules.OP_LABELS[op] || op]; }), node.op, function (op) {
      var wasList = ["in", "not_in", "between"].indexOf(node.op) >= 0, isList = ["in", "not_in", "between"].indexOf(op) >= 0;
      node.op = op;
      if (rules.noValue(op)) { node.value = null; }
      else if (wasList !== isList || node.value === null) { node.value = op === "between" ? ["", ""] : isList ? [] : ""; }
      changed(true);
    }, "operator");
  }

  function eventFields(node, row) {
    var info = rules.eventInfo(node.event);
    var names = vocab.events.map(function (e) { return e.name; });
    var eventBox = input("event", node.event, function (text) { node.event = text; changed(false); },
      {list: datalist("events", names), placeholder: "event name", required: "required"});
    eventBox.addEventListener("change", function () { changed(true); });  // its properties now
    row.appendChild(eventBox);
    var numeric = info.properties.filter(function (p) { return p.type === "number"; }).map(function (p) { return p.name; });
    row.appendChild(select("measure", Object.keys(rules.MEASURE_LABELS).map(function (m) { return [m, rules.MEASURE_LABELS[m]]; }),
      node.measure, function (m) {
        node.measure = m;
        if (["sum", "avg", "min", "max"].indexOf(m) >= 0 && !node.property) { node.property = numeric[0] || ""; }
        if (m === "first" || m === "last") { node.op = "more_than_days_ago"; node.value = 30; }
        else if (vocab.measures[m] === "number" && rules.DAYS_OPS.concat(["before", "after", "on"]).indexOf(node.op) >= 0) {
          node.op = "gte"; node.value = 1;
        }
        changed(true);
      }, "measure"));
    if (["sum", "avg", "min", "max"].indexOf(node.measure) >= 0) {
      row.appendChild(input("property", node.property, function (t) { node.property = t; changed(false); },
        {list: datalist("num|" + node.event, numeric), placeholder: "property"}));
    }
    var kind = rules.leafKind(node);
    row.appendChild(opSelect("event", kind, node));
    row.appendChild(valueEditor("event", kind, node.op, node.value, function (v) { node.value = v; changed(false); }));
    row.appendChild(select("window", [["any", "ever"], ["days", "in the last"], ["between", "between dates"]], node.window,
      function (w) { node.window = w; changed(true); }, "when"));
    if (node.window === "days") {
      row.appendChild(input("days", node.days, function (t) { node.days = rules.coerce(t, "number", "eq"); changed(false); },
        {type: "number", min: "1", step: "1"}));
      row.appendChild(el("span", {text: "days"}));
    } else if (node.window === "between") {
      [0, 1].forEach(function (i) {
        row.appendChild(input("between-" + (i ? "to" : "from"), node.between[i], function (t) {
          node.between[i] = t; changed(false);
        }, {type: "date"}));
      });
    }
    var wheres = el("div", {className: "where-rows"});
    node.where.forEach(function (w, i) {
      var line = el("div", {className: "where-row", "data-where": String(i)}, [el("span", {className: "muted", text: "where"})]);
      var props = info.properties.map(function (p) { return p.name; });
      var propBox = input("where-property", w.property, function (t) { w.property = t; changed(false); },
        {list: datalist("props|" + node.event, props), placeholder: "property"});
      propBox.addEventListener("change", function () { changed(true); });
      line.appendChild(propBox);
      var kind = rules.conditionKind(node.event, w);
      line.appendChild(opSelect("where", kind, w));
      var p = rules.propertyInfo(info.properties, w.property);
      line.appendChild(valueEditor("where", kind, w.op, w.value, function (v) { w.value = v; changed(false); },
        p ? p.values : []));
      line.appendChild(el("button", {type: "button", className: "link", "data-action": "remove-where", text: "×",
        "aria-label": "remove this property condition"}));
      line.lastChild.addEventListener("click", function () { node.where.splice(i, 1); changed(true); });
      wheres.appendChild(line);
    });
    var addWhere = el("button", {type: "button", className: "link", "data-action": "add-where", text: "+ where property…"});
    addWhere.addEventListener("click", function () {
      var first = info.properties.length ? info.properties[0] : null;
      node.where.push({property: first ? first.name : "", op: "eq", value: first && first.values.length ? first.values[0] : "", type: ""});
      changed(true);
    });
    wheres.appendChild(addWhere);
    if (node.per !== "" || node.perShown) {  // the measure per value of a property (a category, say), highest kept
      var per = el("div", {className: "where-row"}, [el("span", {className: "muted", text: "per value of"})]);
      per.appendChild(input("per", node.per, function (t) { node.per = t; changed(false); },
        {list: datalist("props|" + node.event, info.properties.map(function (p) { return p.name; })), placeholder: "property"}));
      per.appendChild(el("span", {className: "muted small", text: "(the customer's highest is compared)"}));
      wheres.insertBefore(per, addWhere);
    } else {
      var addPer = el("button", {type: "button", className: "link", "data-action": "add-per", text: "+ per property…"});
      addPer.addEventListener("click", function () { node.perShown = true; changed(true); });
      wheres.appendChild(addPer);
    }
    return wheres;
  }

  function leafFields(node, row) {
    switch (node.kind) {
      case "event": return eventFields(node, row);
      case "attribute": {
        var fields = Object.keys(vocab.profile_fields).concat(vocab.attributes.map(function (a) { return "attributes." + a.name; }));
        var box = input("attribute", node.attribute, function (t) { node.attribute = t; changed(false); },
          {list: datalist("fields", fields), placeholder: "city or attributes.key"});
        box.addEventListener("change", function () { changed(true); });
        row.appendChild(box);
        var kind = rules.leafKind(node);
        row.appendChild(opSelect("attribute", kind, node));
        var key = node.attribute.indexOf("attributes.") === 0 ? node.attribute.slice(11) : null;
        var info = key ? rules.propertyInfo(vocab.attributes, key) : null;
        row.appendChild(valueEditor("attribute", kind, node.op, node.value, function (v) { node.value = v; changed(false); },
          info ? info.values : vocab.fields[node.attribute] || []));
        return null;
      }
      case "trait": {
        row.appendChild(select("trait", vocab.traits.map(function (t) {
          return [t.name, t.name.replace(/_/g, " ") + " (" + t.kind + (t.computed ? "" : ", not computed yet") + ")"];
        }), node.trait, function (t) { node.trait = t; changed(true); }, "trait"));
        var tkind = rules.leafKind(node);
        row.appendChild(opSelect("trait", tkind, node, tkind === "number" ? "top_percent" : null));
        var trait = vocab.traits_by_name[node.trait];
        row.appendChild(valueEditor("trait", tkind, node.op, node.value, function (v) { node.value = v; changed(false); },
          trait ? trait.values : []));
        return null;
      }
      case "reachable":
        row.appendChild(select("reachable", vocab.channels, node.reachable, function (c) { node.reachable = c; changed(true); },
          "channel"));
        row.appendChild(el("span", {className: "muted small", text: "consent given and an address to send to"}));
        return null;
      case "segment":
        row.appendChild(select("segment", rules.otherSegments(), node.segment, function (s) { node.segment = s; changed(true); },
          "segment"));
        return null;
      case "anniversary":
        row.appendChild(select("anniversary", [["birthday", "birthday"], ["first_order", "first order's anniversary"]],
          node.anniversary, function (a) { node.anniversary = a; changed(true); }, "anniversary"));
        row.appendChild(el("span", {text: "within the next"}));
        row.appendChild(input("within_next_days", node.within_next_days, function (t) {
          node.within_next_days = rules.coerce(t, "number", "eq"); changed(false);
        }, {type: "number", min: "0", max: "366", step: "1"}));
        row.appendChild(el("span", {text: "days (0: today)"}));
        return null;
      case "bucket":
        [0, 1].forEach(function (i) {
          row.appendChild(el("span", {text: i ? "to" : "from"}));
          row.appendChild(input("bucket-" + (i ? "to" : "from"), node.bucket[i], function (t) {
            node.bucket = node.bucket.slice(); node.bucket[i] = rules.coerce(t, "number", "eq"); changed(false);
          }, {type: "number", min: "0", max: "100", step: "1"}));
        });
        row.appendChild(el("span", {text: "% of customers, salt"}));
        row.appendChild(input("salt", node.salt || "", function (t) { node.salt = t; changed(false); }, {placeholder: "bucket"}));
        return null;
      default: {  // raw: the rows have no controls for it
        var text = el("textarea", {className: "code", rows: "3", "data-field": "raw", "aria-label": "condition as JSON"});
        text.value = JSON.stringify(node.data);
        text.addEventListener("input", function () {
          try { node.data = JSON.parse(text.value); text.removeAttribute("aria-invalid"); changed(false); }
          catch (e) { text.setAttribute("aria-invalid", "true"); }
        });
        row.appendChild(text);
        row.appendChild(el("span", {className: "muted small", text: "no controls for this condition: edit it as JSON"}));
        return null;
      }
    }
  }

  function drawNode(node, parent, index, depth) {
    var negateBox = el("input", {type: "checkbox", "data-field": "not", "aria-label": "not"});
    negateBox.checked = node.negate;
    negateBox.addEventListener("change", function () { node.negate = negateBox.checked; changed(true); });
    var remove = el("button", {type: "button", className: "link remove", "data-action": "remove", text: "×",
      "aria-label": "remove", title: "remove"});
    remove.addEventListener("click", function () { parent.children.splice(index, 1); changed(true); });
    if (node.kind === "group") {
      var box = el("div", {className: "cond-group", "data-mode": node.mode, "data-depth": String(depth)});
      var head = el("div", {className: "group-head"}, [
        el("label", {className: "not"}, [negateBox, el("span", {text: "not"})]),
        select("mode", [["all", "all of these"], ["any", "any of these"]], node.mode, function (m) { node.mode = m; changed(true); },
          "all or any")
      ]);
      if (parent) { head.appendChild(remove); }
      box.appendChild(head);
      var list = el("div", {className: "group-rows"});
      node.children.forEach(function (child, i) { list.appendChild(drawNode(child, node, i, depth + 1)); });
      if (!node.children.length) { list.appendChild(el("p", {className: "muted small", text: "No conditions yet: add one."})); }
      box.appendChild(list);
      var add = el("button", {type: "button", "data-action": "add-condition", text: "+ Condition"});
      add.addEventListener("click", function () { node.children.push(rules.fresh("event")); changed(true); });
      var addGroup = el("button", {type: "button", "data-action": "add-group", text: "+ Group (all/any)"});
      addGroup.addEventListener("click", function () { node.children.push(rules.fresh("group")); changed(true); });
      box.appendChild(el("div", {className: "group-actions"}, depth < 10 ? [add, addGroup] : [add]));
      return box;
    }
    var row = el("div", {className: "cond-row", "data-kind": node.kind});
    var line = el("div", {className: "cond-line"}, [el("label", {className: "not"}, [negateBox, el("span", {text: "not"})])]);
    var kinds = rules.KINDS.slice();
    if (node.kind === "raw") { kinds.push(["raw", "Written as text"]); }
    line.appendChild(select("kind", kinds, node.kind, function (k) {
      parent.children[index] = Object.assign(rules.fresh(k), {negate: node.negate});
      changed(true);
    }, "kind of condition"));
    var below = leafFields(node, line);
    line.appendChild(remove);
    row.appendChild(line);
    if (below) { row.appendChild(below); }
    return row;
  }

  function render() {
    var focused = document.activeElement, path = null;
    if (focused && rowsBox.contains(focused)) { path = locate(focused); }
    rowsBox.replaceChildren(drawNode(root, null, 0, 0));
    rowsBox.dataset.state = "ready";
    if (path) {  // keep the focus on the control that was changed
      var again = rowsBox.querySelectorAll("[data-field], button")[path];
      if (again) { again.focus(); }
    }
    var raw = rowsBox.querySelectorAll(".cond-row[data-kind=raw]").length;
    showNote(raw ? raw + " condition" + (raw > 1 ? "s are" : " is") +
      " shown as JSON: the rows have no controls for " + (raw > 1 ? "them" : "it") + ", edit it in its row or in the text." : "");
  }

  function locate(control) {
    return Array.prototype.indexOf.call(rowsBox.querySelectorAll("[data-field], button"), control);
  }

  function showNote(text) {
    note.textContent = text;
    note.hidden = !text;
  }

  // -- the two views ---------------------------------------------------------------------------------

  function changed(structural) {
    if (structural) { render(); }
    writing = true;
    textarea.value = JSON.stringify(rules.toRule(root), null, 2);
    textarea.dispatchEvent(new Event("input", {bubbles: true}));  // app.js previews it
    writing = false;
    textDirty = false;
    applyButton.hidden = true;
    textStatus.textContent = "The text follows the rows.";
    textErrors.hidden = true;
  }

  function applyText() {
    applyButton.disabled = true;
    textStatus.textContent = "Reading the text…";
    fetch(form.dataset.parse, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": token},
      body: JSON.stringify({rule: textarea.value})
    }).then(function (response) {
      return response.json().then(function (body) { return [response.status, body]; });
    }).then(function (answer) {
      applyButton.disabled = false;
      textErrors.replaceChildren();
      if (answer[0] !== 200) {
        window.boomerang.listErrors(textErrors, answer[1], answer[0], "rule");
        textStatus.textContent = "The rows stay as they were until the text reads as a rule.";
        return;
      }
      textErrors.hidden = true;
      root = rules.fromRoot(answer[1].rule);
      textDirty = false;
      applyButton.hidden = true;
      textStatus.textContent = "The rows show the text.";
      render();
    }, function () {
      applyButton.disabled = false;
      textStatus.textContent = "The server did not answer: try again.";
    });
  }

  // -- explain: why a customer is in or out of the rule as it stands (re-asked as the rule changes) ------------

  function explainNode(n) {
    var item = el("li", {className: "explain-node " + (n.passed ? "pass" : "fail")}, [
      el("span", {className: "mark", text: n.passed ? "✓" : "✗", "aria-label": n.passed ? "passed" : "failed"})
    ]);
    if (n.op === "condition") {
      item.appendChild(el("span", {className: "condition", text: " " + n.condition}));
      item.appendChild(el("span", {className: "seen", text: "value seen: " + n.shown}));
    } else {
      item.appendChild(el("strong", {text: n.op === "segment" ? " in segment " + n.segment
        : n.op === "all" ? " all of" : n.op === "any" ? " any of" : " not"}));
    }
    if (n.children && n.children.length) { item.appendChild(el("ul", {}, n.children.map(explainNode))); }
    return item;
  }

  function explainer() {
    var box = document.getElementById("builder-explain");
    if (!box) { return function () {}; }
    var who = document.getElementById("builder-explain-customer"), errors = document.getElementById("builder-explain-errors");
    var verdict = document.getElementById("builder-explain-verdict"), tree = document.getElementById("builder-explain-tree");
    var asOf = document.getElementById("preview-as-of");
    box.hidden = false;
    function show(code, body) {
      errors.replaceChildren();
      tree.replaceChildren();
      box.dataset.state = code === 200 ? "ok" : "error";
      if (code !== 200) {
        verdict.hidden = true;
        window.boomerang.listErrors(errors, body, code, "customer");
        return;
      }
      errors.hidden = true;
      verdict.hidden = false;
      verdict.className = "verdict " + (body.member ? "pass" : "fail");
      verdict.textContent = body.label + (body.member ? " is a member" : " is not a member") + " as of " +
        body.as_of.slice(0, 16).replace("T", " ") + (body.existed ? "." : " (the profile did not exist yet).");
      tree.appendChild(explainNode(body.rule));
    }
    var ask = window.boomerang.previewer(box.dataset.url, token, function () {
      return {rule: textarea.value, customer: who.value, as_of: asOf ? asOf.value : ""};
    }, function () { box.dataset.state = "busy"; }, show);
    document.getElementById("builder-explain-button").addEventListener("click", ask);
    who.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); ask(); } });
    var later = window.boomerang.debounced(ask);
    return function () { if (who.value.trim() && box.dataset.state) { later(); } };
  }

  function start() {
    form = document.getElementById("segment-form");
    rowsBox = document.getElementById("builder-rows");
    if (!form || !rowsBox) { return; }
    vocab = JSON.parse(document.getElementById("builder-vocabulary").textContent);
    vocab.traits_by_name = {};
    vocab.traits.forEach(function (t) { vocab.traits_by_name[t.name] = t; });
    rules = window.segmentRules(vocab, form.dataset.editing);
    var initial = JSON.parse(document.getElementById("builder-initial").textContent);
    textarea = document.getElementById("rule");
    note = document.getElementById("builder-note");
    textStatus = document.getElementById("text-status");
    textErrors = document.getElementById("text-errors");
    applyButton = document.getElementById("apply-text");
    token = form.querySelector("input[name=csrf_token]").value;
    var reexplain = explainer();
    textarea.addEventListener("input", reexplain);
    textarea.addEventListener("input", function () {
      if (writing) { return; }
      textDirty = true;
      applyButton.hidden = false;
      textStatus.textContent = "The text changed: apply it to rebuild the rows (editing the rows would replace it).";
    });
    applyButton.addEventListener("click", applyText);
    root = initial === null ? {kind: "group", mode: "all", negate: false, children: []} : rules.fromRoot(initial);
    render();
    if (initial === null) {
      textDirty = true;
      applyButton.hidden = false;
      textStatus.textContent = "The text does not read as a rule yet: fix it and apply it to see it as rows.";
    }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
