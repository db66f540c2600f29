"""Rule trees to Ibis: every leaf is a per-customer value and a test; the tree is set algebra over ids.

A leaf compiles to `Values`: a table of (customer_id, value) for the customers it saw, the value of
everyone else (`default`: 0 events, no date) and a test of a value. Its members are the customers
whose value passes; `all`, `any` and `not` become intersect, union and difference of id sets, so the
whole rule is one expression that DuckDB, Spark or ClickHouse run as one query. The same `Values`
explain a rule for one customer, condition by condition, with the values seen.
"""

from __future__ import annotations

import functools
import json
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import ibis
from ibis import _

from boomerang.core.vocab import ADDRESS_FIELDS
from boomerang.metrics import source
from boomerang.segments.definition import (
    MEASURES,
    TRAITS,
    All,
    Anniversary,
    Any_,
    Attribute,
    Bucket,
    Condition,
    Event,
    InSegment,
    Not,
    Reachable,
    Rule,
    Trait,
)

# the commands that store a kind
HOW_TO_STORE = {"predictions": "clv predict", "loyalty": "loyalty traits", "uplift": "experiments uplift NAME"}
TRAIT_COLUMNS = {"lifecycle_stage": "stage"}  # trait name -> column of its table, where they differ
HASH_SPACE = 16**4  # buckets come from the first four hex digits of md5(salt:customer_id)


@dataclass
class Tables:
    """What rules read: the event log, the profiles and consents, and the stored traits (None: not computed)."""

    events: ibis.Table
    profiles: ibis.Table  # customer_id, the PROFILE_FIELDS, attributes (JSON)
    consents: ibis.Table  # customer_id, channel, granted
    traits: dict[str, ibis.Table | None] = field(default_factory=dict)


@dataclass
class Values:
    table: ibis.Table  # customer_id, value
    default: Any  # the value of customers missing from the table
    test: Callable[[ibis.Value], ibis.Value]  # value -> boolean (null counts as false)
    describe: str


class Compiler:
    """Compiles rules against `tables` as of a moment; `only` restricts every scan to some customers."""

    def __init__(
        self,
        tables: Tables,
        *,
        as_of: datetime,
        resolve: Callable[[str], Rule],
        only: list[str] | None = None,
        live_traits: Callable[[str], ibis.Table] | None = None,
    ) -> None:
        self.t = tables
        self.as_of = as_of
        self.resolve = resolve
        self.only = only
        self.live_traits = live_traits  # computes rfm/lifecycle as of a past moment
        self._resolving: list[str] = []

    def scoped(self, only: list[str] | None) -> Compiler:
        """The same compiler over other customers."""
        return Compiler(self.t, as_of=self.as_of, resolve=self.resolve, only=only, live_traits=self.live_traits)

    # -- the tree ----------------------------------------------------------------------------------

    @property
    def base(self) -> ibis.Table:
        """The customers that existed at as-of (merged-away profiles are not in the table)."""
        p = self.t.profiles
        seen = p.first_seen_at.coalesce(p.created_at)
        p = p.filter(seen.isnull() | (seen < self.as_of))
        if self.only is not None:
            p = p.filter(p.customer_id.isin(self.only))
        return _id_set(p)

    def members(self, rule: Rule) -> ibis.Table:
        """customer_id of every member, one row each."""
        inside, ids = self._set(rule)
        return self.base.semi_join(ids, "customer_id") if inside else self.base.anti_join(ids, "customer_id")

    def _set(self, rule: Rule) -> tuple[bool, ibis.Table]:
        """(True, ids): the members are these ids; (False, ids): everyone but these. Keeping negations
        as "everyone but" turns `all: [A, not B]` into A anti-join B, never into a set of nearly everyone."""
        if isinstance(rule, (All, Any_)):
            children, folded = self._fold(rule.all) if isinstance(rule, All) else (rule.any, [])
            parts = [self._set(r) for r in children] + [(True, t) for t in folded]
            ins, outs = [t for inside, t in parts if inside], [t for inside, t in parts if not inside]
            if isinstance(rule, Any_):  # A or (everyone but B) = everyone but (B minus A)
                return (True, _union(ins)) if not outs else (False, _narrow(outs, ins))
            if not ins:
                return False, _union(outs)
            return True, _narrow(ins, outs)
        if isinstance(rule, Not):
            inside, ids = self._set(rule.not_)
            return not inside, ids
        if isinstance(rule, InSegment):
            return self._set(self._inner(rule.segment))
        v = self.values(rule)
        passed = v.test(v.table.value).fill_null(False)
        if passes(v):  # customers the leaf did not see pass it: keep it as "everyone but the failing"
            return False, _id_set(v.table.filter(~passed))
        return True, _id_set(v.table.filter(passed))

    def _inner(self, name: str) -> Rule:
        if name in self._resolving:
            raise ValueError(f"segment {name!r} refers to itself through {' -> '.join(self._resolving)}")
        self._resolving.append(name)
        try:
            return self.resolve(name)
        finally:
            self._resolving.pop()

    # -- leaves ------------------------------------------------------------------------------------

    def values(self, leaf: Rule) -> Values:
        return {
            Attribute: self._attribute,
            Event: self._event,
            Anniversary: self._anniversary,
            Trait: self._trait,
            Reachable: self._reachable,
            Bucket: self._bucket,
        }[type(leaf)](leaf)

    def _scoped(self, table: ibis.Table) -> ibis.Table:
        return table if self.only is None else table.filter(table.customer_id.isin(self.only))

    def _attribute(self, leaf: Attribute) -> Values:
        p = self._scoped(self.t.profiles)
        if leaf.attribute.startswith("attributes."):
            key = leaf.attribute.split(".", 1)[1]
            value = {"number": source.number, "date": source.text}.get(leaf.kind, source.text)(p, key, "attributes")
            if leaf.kind == "list":
                value = p.attributes[key].array.map(lambda item: item.str) if p.attributes.type().is_json() else value
        else:
            value = p[leaf.attribute]
        if leaf.kind == "date":
            value = value.cast("timestamp")
        table = p.select("customer_id", value=value)
        return Values(
            table,
            None,
            lambda v: self._compare(v, leaf.op, leaf.value, leaf.kind),
            f"{leaf.attribute} {leaf.op}{_show(leaf.value)}",
        )

    def _event_rows(self, leaf: Event) -> tuple[ibis.Table, str]:
        """The customers' events the leaf looks at (name, window, where), and the window in words."""
        e = self._scoped(self.t.events)
        e = e.filter((e.event == leaf.event) & e.customer_id.notnull() & (e.timestamp < self.as_of))
        if leaf.within_days is not None:
            e = e.filter(e.timestamp >= self.as_of - timedelta(days=leaf.within_days))
            window = f" in the last {leaf.within_days} days"
        elif leaf.between is not None:
            start, end = (datetime.combine(d, datetime.min.time()) for d in leaf.between)
            e = e.filter((e.timestamp >= start) & (e.timestamp < end + timedelta(days=1)))
            window = f" between {leaf.between[0]} and {leaf.between[1]}"
        else:
            window = ""
        for cond in leaf.where:
            e = e.filter(self._condition(e, cond).fill_null(False))
        return e, window

    @staticmethod
    def _measure(leaf: Event, t: ibis.Table) -> ibis.Value:
        if leaf.measure == "count":
            return t.count()
        if leaf.measure in ("first", "last"):
            return t.timestamp.min() if leaf.measure == "first" else t.timestamp.max()
        number = source.number(t, leaf.property)
        return {"sum": number.sum(), "avg": number.mean(), "min": number.min(), "max": number.max()}[leaf.measure]

    def _event_test(self, leaf: Event) -> Callable[[ibis.Value], ibis.Value]:
        return lambda v: self._compare(v, leaf.op, leaf.value, MEASURES[leaf.measure])

    def _event(self, leaf: Event) -> Values:
        e, window = self._event_rows(leaf)
        if leaf.per:  # the measure per value of `per` (a category, say), then the customer's highest
            e = e.mutate(per_value=source.text(e, leaf.per)).filter(_.per_value.notnull())
            groups = e.group_by(["customer_id", "per_value"]).aggregate(value=self._measure(leaf, e))
            best = groups.value.min() if leaf.measure == "first" else groups.value.max()
            table = groups.group_by("customer_id").aggregate(value=best)
        else:
            table = e.group_by("customer_id").aggregate(value=self._measure(leaf, e))
        where = "".join(f" with {c.property} {c.op}{_show(c.value)}" for c in leaf.where)
        subject = leaf.measure if leaf.measure in ("count", "first", "last") else f"{leaf.measure} of {leaf.property}"
        subject += f" per {leaf.per} (highest)" if leaf.per else ""
        return Values(
            table,
            {"count": 0, "sum": 0.0}.get(leaf.measure),
            self._event_test(leaf),
            f"{subject} of {leaf.event}{where}{window} {leaf.op}{_show(leaf.value)}",
        )

    def _fold(self, children: list[Rule]) -> tuple[list[Rule], list[ibis.Table]]:
        """Inside an `all`, event conditions on the same events (name, window, where), or their negations,
        become one aggregate with a column per condition, when one of them already needs the customer to
        have such events: one scan and one GROUP BY instead of one per condition. Returns the children
        left as they were, and the id sets of the folded groups."""
        groups: dict[str, list[tuple[Event, bool]]] = defaultdict(list)
        rest: list[Rule] = []
        for child in children:
            leaf, negated = (child.not_, True) if isinstance(child, Not) else (child, False)
            if isinstance(leaf, Event) and not leaf.per:
                signature = json.dumps(
                    [leaf.event, leaf.within_days, str(leaf.between), [c.model_dump(mode="json") for c in leaf.where]]
                )
                groups[signature].append((leaf, negated))
            else:
                rest.append(child)
        folded = []
        for members in groups.values():
            anchored = any(not negated and not passes(self._event(leaf)) for leaf, negated in members)
            if len(members) < 2 or not anchored:
                rest += [Not(not_=leaf) if negated else leaf for leaf, negated in members]
                continue
            e, _ = self._event_rows(members[0][0])
            table = e.group_by("customer_id").aggregate(
                **{f"v{i}": self._measure(leaf, e) for i, (leaf, _) in enumerate(members)}
            )
            tests = [self._event_test(leaf)(table[f"v{i}"]).fill_null(False) for i, (leaf, _) in enumerate(members)]
            keep = ibis.and_(*[~t if negated else t for t, (_, negated) in zip(tests, members)])
            folded.append(_id_set(table.filter(keep)))
        return rest, folded

    def _condition(self, e: ibis.Table, cond: Condition) -> ibis.Value:
        value = (source.number if cond.kind == "number" else source.text)(e, cond.property)
        return self._compare(value, cond.op, cond.value, cond.kind)

    def _anniversary(self, leaf: Anniversary) -> Values:
        if leaf.anniversary == "birthday":
            p = self._scoped(self.t.profiles)
            table = p.filter(p.birthday.notnull()).select("customer_id", value=p.birthday.cast("date"))
        else:
            bought = self._scoped(source.purchases(self.t.events)).filter(_.ts < self.as_of)
            table = bought.group_by("customer_id").aggregate(value=_.ts.min().cast("date"))
        days = [self.as_of.date() + timedelta(days=i) for i in range(leaf.within_next_days + 1)]

        def test(v: ibis.Value) -> ibis.Value:
            # month and day of the next N days (29 February counts on 28 February in other years)
            pairs = {(d.month, d.day) for d in days} | {(2, 29) for d in days if (d.month, d.day) == (2, 28)}
            return ibis.or_(*[(v.month() == m) & (v.day() == d) for m, d in sorted(pairs)])

        return Values(
            table, None, test, f"{leaf.anniversary.replace('_', ' ')} within the next {leaf.within_next_days} days"
        )

    def _trait(self, leaf: Trait) -> Values:
        kind, vtype = TRAITS[leaf.trait]
        table = self.live_traits(kind) if self.live_traits else self.t.traits.get(kind)
        if table is None:
            raise ValueError(
                f"trait {leaf.trait!r} needs the {kind} traits: compute them first "
                f"(boomerang {HOW_TO_STORE.get(kind, f'report {kind}')})"
            )
        column = TRAIT_COLUMNS.get(leaf.trait, leaf.trait)
        if column not in table.columns:
            raise ValueError(f"trait {leaf.trait!r} is not in the stored {kind} traits")
        value = table[column].cast("timestamp") if vtype == "date" else table[column]
        if leaf.op == "top_percent":  # the value is the share of customers ranked above (0: the best)
            ranked = table.filter(value.notnull())
            rank = ibis.percent_rank().over(order_by=ranked[column].desc())
            table = self._scoped(ranked.select("customer_id", value=rank))
            return Values(table, None, lambda v: v < leaf.value / 100, f"{leaf.trait} in the top {leaf.value}%")
        table = self._scoped(table.select("customer_id", value=value))
        return Values(
            table,
            None,
            lambda v: self._compare(v, leaf.op, leaf.value, vtype),
            f"{leaf.trait} {leaf.op}{_show(leaf.value)}",
        )

    def _reachable(self, leaf: Reachable) -> Values:
        c = self.t.consents
        granted = c.filter((c.channel == leaf.reachable) & c.granted).select("customer_id")
        p = self._scoped(self.t.profiles)
        address = (
            p[ADDRESS_FIELDS[leaf.reachable]].notnull() if leaf.reachable in ADDRESS_FIELDS else ibis.literal(True)
        )
        table = p.left_join(granted.mutate(ok=ibis.literal(True)), "customer_id").select(
            customer_id=p.customer_id, value=address & _.ok.fill_null(False)
        )
        how = f"consent and {ADDRESS_FIELDS[leaf.reachable]}" if leaf.reachable in ADDRESS_FIELDS else "consent"
        return Values(table, False, lambda v: v, f"reachable by {leaf.reachable} ({how})")

    def _bucket(self, leaf: Bucket) -> Values:
        p = self._scoped(self.t.profiles)
        digits = (ibis.literal(f"{leaf.salt}:") + p.customer_id).hexdigest("md5").lower().substr(0, 4)
        low, high = (f"{-(-b * HASH_SPACE // 100):04x}" if b < 100 else "g" for b in leaf.bucket)
        table = p.select("customer_id", value=digits)
        return Values(
            table, None, lambda v: (v >= low) & (v < high), f"bucket {leaf.bucket[0]}-{leaf.bucket[1]} of {leaf.salt}"
        )

    # -- comparisons -------------------------------------------------------------------------------

    def _compare(self, v: ibis.Value, op: str, value: Any, kind: str) -> ibis.Value:
        if op == "exists":
            return v.notnull()
        if op == "not_exists":
            return v.isnull()
        if kind == "date":
            return self._date(v, op, value)
        if kind == "list":
            if op == "is_empty":
                return v.length() == 0
            return v.contains(str(value)) if op == "contains" else ~v.contains(str(value))
        if kind == "number":
            value = [float(x) for x in value] if isinstance(value, list) else float(value)
        simple = {"eq": v.__eq__, "ne": v.__ne__, "gt": v.__gt__, "gte": v.__ge__, "lt": v.__lt__, "lte": v.__le__}
        if op in simple:
            return simple[op](value)
        if op == "in":
            return v.isin(value)
        if op == "not_in":
            return ~v.isin(value)
        if op == "between":
            return v.between(*value)
        if op == "contains":
            return v.contains(str(value))
        if op == "starts_with":
            return v.startswith(str(value))
        if op == "ends_with":
            return v.endswith(str(value))
        raise ValueError(f"operator {op!r} is not known")

    def _date(self, v: ibis.Value, op: str, value: Any) -> ibis.Value:
        day = lambda x: datetime.combine(date.fromisoformat(str(x)[:10]), datetime.min.time())  # noqa: E731
        one = timedelta(days=1)
        if op == "before":
            return v < day(value)
        if op == "after":
            return v >= day(value) + one
        if op == "on":
            return (v >= day(value)) & (v < day(value) + one)
        if op == "between":
            return (v >= day(value[0])) & (v < day(value[1]) + one)
        if op == "within_last_days":
            return (v >= self.as_of - timedelta(days=value)) & (v < self.as_of)
        if op == "more_than_days_ago":
            return v < self.as_of - timedelta(days=value)
        if op == "within_next_days":
            return (v >= self.as_of) & (v < self.as_of + timedelta(days=value))
        raise ValueError(f"operator {op!r} does not fit a date")


def _narrow(ins: list[ibis.Table], outs: list[ibis.Table]) -> ibis.Table:
    """The ids in every one of `ins` and in none of `outs` (semi and anti joins: no DISTINCT needed)."""
    result = ins[0]
    for t in ins[1:]:
        result = result.semi_join(t, "customer_id")
    for t in outs:
        result = result.anti_join(t, "customer_id")
    return result


def _union(tables: list[ibis.Table]) -> ibis.Table:
    return tables[0] if len(tables) == 1 else ibis.union(*tables, distinct=True)


def _id_set(table: ibis.Table) -> ibis.Table:
    """Just the ids, typed alike (nullable text) so that set operations accept any two of them."""
    return table.select(customer_id=table.customer_id.cast("string"))


_SCALARS = threading.Lock()


@functools.cache
def _scalars() -> ibis.BaseBackend:
    return ibis.duckdb.connect()  # evaluates tests on constants


_PASSES: dict[tuple[str, str, str], bool] = {}  # (condition, default, value type) -> answer


def passes(v: Values) -> bool:
    """Whether the value of customers the leaf did not see passes its test (then they are members);
    a leaf's description names its operator and value, so the answer is kept by it."""
    kind = v.table.value.type().copy(nullable=True)
    key = (v.describe, repr(v.default), str(kind))
    if key not in _PASSES:
        one = ibis.memtable({"value": [v.default]}, schema={"value": kind})
        with _SCALARS:
            _PASSES[key] = bool(_scalars().execute(one.select(ok=v.test(one.value).fill_null(False)))["ok"].iloc[0])
    return _PASSES[key]


def _show(value: Any) -> str:
    """A rule's value as text, with its separating space (none when the operator takes no value)."""
    if isinstance(value, list):
        return " [" + ", ".join(map(str, value)) + "]"
    return "" if value is None else f" {value}"
