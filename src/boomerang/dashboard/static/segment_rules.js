// Segment rules as the builder's rows see them: rule data (what the text holds) <-> row nodes, and the types,
// operators and values each kind of condition takes, over the shop's vocabulary. No DOM here: segment_builder.js
// draws the rows. `window.segmentRules(vocab, editing)` gives the functions for one builder.
(function () {
  "use strict";

  var KINDS = [
    ["event", "Did an event"],
    ["attribute", "Profile field"],
    ["trait", "Trait (RFM, lifecycle, predictions, loyalty)"],
    ["reachable", "Can be reached on"],
    ["segment", "Is in segment"],
    ["anniversary", "Anniversary"],
    ["bucket", "Random share"]
  ];
  var OP_LABELS = {
    eq: "is", ne: "is not", "in": "is one of", not_in: "is none of", contains: "contains",
    not_contains: "does not contain", starts_with: "starts with", ends_with: "ends with", exists: "is set",
    not_exists: "is not set", is_empty: "is empty", gt: "more than", gte: "at least", lt: "less than",
    lte: "at most", between: "between", before: "before", after: "after", on: "on",
    within_last_days: "in the last N days", more_than_days_ago: "more than N days ago",
    within_next_days: "in the next N days", top_percent: "in the top N %"
  };
  var OP_ORDER = ["gte", "gt", "eq", "ne", "lte", "lt", "between", "in", "not_in", "contains", "not_contains",
    "starts_with", "ends_with", "before", "after", "on", "within_last_days", "more_than_days_ago", "within_next_days",
    "top_percent", "exists", "not_exists", "is_empty"];
  var MEASURE_LABELS = {count: "number of times", sum: "sum of", avg: "average of", min: "smallest", max: "largest",
    first: "first time", last: "last time"};
  var DAYS_OPS = ["within_last_days", "more_than_days_ago", "within_next_days"];
  var EVENT_KEYS = ["event", "where", "within_days", "between", "measure", "property", "per", "op", "value"];
  var LEAF_KEYS = {
    attribute: ["attribute", "op", "value", "type"], trait: ["trait", "op", "value"], reachable: ["reachable"],
    segment: ["segment"], anniversary: ["anniversary", "within_next_days"], bucket: ["bucket", "salt"]
  };


  window.segmentRules = function (vocab, editing) {
    // -- the model: rule data <-> nodes ----------------------------------------------------------------

    function only(obj, keys) { return Object.keys(obj).every(function (k) { return keys.indexOf(k) >= 0; }); }
    function isObject(x) { return x !== null && typeof x === "object" && !Array.isArray(x); }

    function fromRule(rule) {
      if (isObject(rule) && Object.keys(rule).length === 1 && (Array.isArray(rule.all) || Array.isArray(rule.any))) {
        var mode = rule.all ? "all" : "any";
        return {kind: "group", mode: mode, negate: false, children: rule[mode].map(fromRule)};
      }
      if (isObject(rule) && Object.keys(rule).length === 1 && "not" in rule) {
        var inner = fromRule(rule.not);
        if (inner.kind === "raw") { return {kind: "raw", negate: false, data: rule}; }
        inner.negate = !inner.negate;
        return inner;
      }
      if (isObject(rule) && typeof rule.event === "string" && only(rule, EVENT_KEYS) &&
          (rule.where || []).every(function (w) { return isObject(w) && only(w, ["property", "op", "value", "type"]); })) {
        return {kind: "event", negate: false, event: rule.event, measure: rule.measure || "count",
          property: rule.property || "", per: rule.per || "", op: rule.op || "gte",
          value: "value" in rule ? rule.value : 1,
          window: rule.within_days ? "days" : rule.between ? "between" : "any",
          days: rule.within_days || 7, between: rule.between || ["", ""],
          where: (rule.where || []).map(function (w) {
            return {property: w.property, op: w.op || "eq", value: "value" in w ? w.value : null, type: w.type || ""};
          })};
      }
      for (var kind in LEAF_KEYS) {
        if (isObject(rule) && kind in rule && only(rule, LEAF_KEYS[kind])) {
          var node = {kind: kind, negate: false};
          LEAF_KEYS[kind].forEach(function (k) { node[k] = rule[k]; });
          if (kind === "bucket" && !(Array.isArray(rule.bucket) && rule.bucket.length === 2)) { break; }
          return node;
        }
      }
      return {kind: "raw", negate: false, data: rule};
    }

    function fromRoot(rule) {
      var node = fromRule(rule);
      return node.kind === "group" && !node.negate ? node : {kind: "group", mode: "all", negate: false, children: [node]};
    }

    function fresh(kind) {
      var firstEvent = vocab.events.length ? vocab.events[0].name : "";
      switch (kind) {
        case "group": return {kind: "group", mode: "any", negate: false, children: [fresh("event")]};
        case "event": return {kind: "event", negate: false, event: firstEvent, measure: "count", property: "", per: "",
          op: "gte", value: 1, window: "days", days: 30, between: ["", ""], where: []};
        case "attribute": return {kind: "attribute", negate: false, attribute: "city", op: "eq",
          value: (vocab.fields.city || [""])[0] || ""};
        case "trait": return {kind: "trait", negate: false, trait: "rfm_group", op: "eq", value: ""};
        case "reachable": return {kind: "reachable", negate: false, reachable: vocab.channels[0]};
        case "segment": return {kind: "segment", negate: false, segment: vocab.segments.length ? otherSegments()[0] || "" : ""};
        case "anniversary": return {kind: "anniversary", negate: false, anniversary: "birthday", within_next_days: 7};
        default: return {kind: "bucket", negate: false, bucket: [0, 50], salt: "bucket"};
      }
    }

    function otherSegments() {
      return vocab.segments.map(function (s) { return s.name; }).filter(function (n) { return n !== editing; });
    }

    function negated(node, rule) { return node.negate ? {not: rule} : rule; }

    function toRule(node) {
      var rule;
      if (node.kind === "group") {
        rule = {};
        rule[node.mode] = node.children.map(toRule);
        return negated(node, rule);
      }
      if (node.kind === "raw") { return negated(node, node.data); }
      if (node.kind === "event") {
        rule = {event: node.event};
        var where = node.where.filter(function (w) { return w.property; }).map(function (w) {
          var kind = conditionKind(node.event, w);
          var c = {property: w.property, op: w.op};
          if (!noValue(w.op)) { c.value = w.value; }
          if (w.type) { c.type = w.type; } else if (kind === "number" && typeof w.value === "string") { c.type = "number"; }
          return c;
        });
        if (where.length) { rule.where = where; }
        if (node.window === "days") { rule.within_days = node.days; }
        if (node.window === "between") { rule.between = node.between; }
        if (node.measure !== "count") { rule.measure = node.measure; }
        if (["sum", "avg", "min", "max"].indexOf(node.measure) >= 0) { rule.property = node.property; }
        if (node.per) { rule.per = node.per; }
        if (!(node.measure === "count" && node.op === "gte" && node.value === 1)) {
          rule.op = node.op;
          if (!noValue(node.op)) { rule.value = node.value; }
        }
        return negated(node, rule);
      }
      rule = {};
      LEAF_KEYS[node.kind].forEach(function (k) {
        if (node[k] !== undefined && node[k] !== null && node[k] !== "" && !(k === "value" && noValue(node.op))) {
          rule[k] = node[k];
        }
      });
      if (node.kind === "attribute") {
        var type = attributeType(node.attribute);
        if (node.attribute.indexOf("attributes.") === 0 && type !== "string" && !rule.type) { rule.type = type; }
      }
      return negated(node, rule);
    }

    // -- types and operators ---------------------------------------------------------------------------

    function noValue(op) { return vocab.no_value.indexOf(op) >= 0; }

    function eventInfo(name) {
      for (var i = 0; i < vocab.events.length; i++) { if (vocab.events[i].name === name) { return vocab.events[i]; } }
      return {name: name, properties: []};
    }

    function propertyInfo(list, name) {
      for (var i = 0; i < list.length; i++) { if (list[i].name === name) { return list[i]; } }
      return null;
    }

    function conditionKind(event, w) {
      if (w.type) { return w.type; }
      var info = propertyInfo(eventInfo(event).properties, w.property);
      if (info && info.type === "number") { return "number"; }
      var sample = Array.isArray(w.value) ? w.value[0] : w.value;
      return typeof sample === "number" ? "number" : "string";
    }

    function attributeType(field) {
      if (field in vocab.profile_fields) { return vocab.profile_fields[field]; }
      if (field.indexOf("attributes.") === 0) {
        var info = propertyInfo(vocab.attributes, field.slice(11));
        if (info) { return info.type; }
      }
      return "string";
    }

    function leafKind(node) {
      if (node.kind === "attribute") { return node.type || attributeType(node.attribute); }
      if (node.kind === "trait") { return vocab.traits_by_name[node.trait] ? vocab.traits_by_name[node.trait].type : "number"; }
      if (node.kind === "event") { return vocab.measures[node.measure] || "number"; }
      return "string";
    }

    function operators(kind, extra) {
      var ops = (vocab.operators[kind] || vocab.operators.string).slice();
      if (extra) { ops.push(extra); }
      return OP_ORDER.filter(function (op) { return ops.indexOf(op) >= 0; });
    }

    function coerce(text, kind, op) {
      if (DAYS_OPS.indexOf(op) >= 0 || kind === "number" || op === "top_percent") {
        var n = Number(text);
        return text !== "" && !isNaN(n) ? n : text;
      }
      return text;
    }

    function shownValue(value) {
      if (value === null || value === undefined) { return ""; }
      return Array.isArray(value) ? value.join(", ") : String(value);
    }


    return {
      KINDS: KINDS, OP_LABELS: OP_LABELS, MEASURE_LABELS: MEASURE_LABELS, DAYS_OPS: DAYS_OPS,
      fromRoot: fromRoot, toRule: toRule, fresh: fresh, otherSegments: otherSegments, noValue: noValue,
      eventInfo: eventInfo, propertyInfo: propertyInfo, conditionKind: conditionKind, attributeType: attributeType,
      leafKind: leafKind, operators: operators, coerce: coerce, shownValue: shownValue
    };
  };
})();
