"""Rule trees to Ibis: every leaf is a per-customer value and a test; the tree is set algebra over ids.

A leaf compiles to `Values`: a table of (customer_id, value) for the customers it saw, the value of
everyone else (`default`: 0 events, no date) and a test of a value. Its members are the customers
whose value passes; `all`, `any` and `not` become intersect, union and difference of id sets, so the
whole rule is one expression that DuckDB, Spark or ClickHouse run as one query, written as one would by
hand (event conditions side by side: one scan, an aggregate FILTER each). Counts, firsts and lasts of an event over
all time, as of now, read the customers' totals kept beside the log instead of the log itself. The same `Values`
explain a rule for one customer, condition by condition, with the values seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
from boomerang.segments.operators import compare, passes_default

# the commands that store a kind
HOW_TO_STORE = {"predictions": "clv predict", "loyalty": "loyalty traits", "uplift": "experiments uplift NAME"}
TRAIT_COLUMNS = {"lifecycle_stage": "stage"}  # trait name -> column of its table, where they differ
HASH_SPACE = 16**4  # buckets come from the first four hex digits of md5(salt:customer_id)
LATE_LIMIT = 1000  # customers with events at or after as-of listed in the SQL; beyond, it selects them


@dataclass
class Tables:
    """What rules read: the event log, the profiles and consents, and the stored traits (None: not computed)."""

    events: ibis.Table
    profiles: ibis.Table  # customer_id, the PROFILE_FIELDS, attributes (JSON)
    consents: ibis.Table  # customer_id, channel, granted
    traits: dict[str, ibis.Table | None] = field(default_factory=dict)
    # customer_id, event, events, first_at, last_at over all time (events.rollups.TOTALS): read instead of the log for
    # conditions over all time, as of now; None: every condition reads the log
    totals: ibis.Table | None = None


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
        _late: dict | None = None,
    ) -> None:
        self.t = tables
        self.as_of = as_of
        self.resolve = resolve
        self.only = only
        self.live_traits = live_traits  # computes rfm/lifecycle as of a past moment
        self._resolving: list[str] = []
        self._repeating: set = set()  # the operations of id sets that may repeat an id (see _set)
        self._late_found: dict = {} if _late is None else _late  # `_late`'s answers, shared with the scoped copies

    def scoped(self, only: list[str] | None) -> Compiler:
        """The same compiler over other customers."""
        return Compiler(
            self.t,
            as_of=self.as_of,
            resolve=self.resolve,
            only=only,
            live_traits=self.live_traits,
            _late=self._late_found,
        )

    def _late(self, names: list[str]) -> list[str] | ibis.Column | None:
        """The customers (of `only`) with one of these events at or after as-of (a clock ahead): None when there is
        none, a list when few (read once: the log's last row groups), else a query's column."""
        key = (tuple(names), None if self.only is None else tuple(self.only))
        if key not in self._late_found:
            e = self._scoped(self.t.events)
            e = e.filter(e.customer_id.notnull(), e.event.isin(names), e.timestamp >= self.as_of)
            late = e.select("customer_id").distinct()
            found = sorted(late.limit(LATE_LIMIT + 1).execute()["customer_id"])
            self._late_found[key] = (found or None) if len(found) <= LATE_LIMIT else late.customer_id
        return self._late_found[key]

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
        base = self.base
        if not inside:
            return base.filter(~base.customer_id.isin(ids.customer_id))
        # as one writes it by hand: the members' ids, kept when among the profiles (the smaller side hashed)
        ids = ids.distinct() if ids.op() in self._repeating else ids
        return ids.filter(ids.customer_id.isin(base.customer_id))

    def _set(self, rule: Rule) -> tuple[bool, ibis.Table]:
        """(True, ids): the members are these ids; (False, ids): everyone but these ("everyone but" turns
        `all: [A, not B]` into A anti-join B). Some repeat ids (`_repeats`): joined against, or made distinct."""
        if isinstance(rule, (All, Any_)):
            both = isinstance(rule, All)
            children, folded = self._fold(rule.all if both else rule.any, both=both)
            parts = [self._set(r) for r in children] + folded
            ins, outs = [t for inside, t in parts if inside], [t for inside, t in parts if not inside]
            if not both:  # A or (everyone but B) = everyone but (B minus A)
                return (True, _union(ins)) if not outs else (False, self._narrow(outs, ins))
            if not ins:
                return False, _union(outs)
            return True, self._narrow(ins, outs)
        if isinstance(rule, Not):
            inside, ids = self._set(rule.not_)
            return not inside, ids
        if isinstance(rule, InSegment):
            return self._set(self._inner(rule.segment))
        if isinstance(rule, Event) and _did(rule):  # at least one such event: their rows, no GROUP BY
            return True, self._repeats(_id_set(self._event_rows(rule)[0]))
        if isinstance(rule, Event) and rule.per and rule.measure != "first" and rule.op in ("gt", "gte"):
            if not self._passes_by_default(rule):  # the highest of the groups passes when any group passes
                groups, _ = self._per_groups(rule)
                return True, self._repeats(_id_set(groups.filter(self._event_test(rule)(groups.value))))
        v = self.values(rule)
        return _split(v.table, v.test(v.table.value), passes(v))

    def _repeats(self, ids: ibis.Table) -> ibis.Table:  # marks an id set that may hold an id more than once
        self._repeating.add(ids.op())
        return ids

    def _narrow(self, ins: list[ibis.Table], outs: list[ibis.Table]) -> ibis.Table:
        """The ids in all `ins` and in no `outs` (semi, anti joins); repeating only if the first does (put last)."""
        ins = sorted(ins, key=lambda t: t.op() in self._repeating)
        result = ins[0]
        for t in ins[1:]:
            result = result.semi_join(t, "customer_id")
        for t in outs:
            result = result.anti_join(t, "customer_id")
        return self._repeats(result) if ins[0].op() in self._repeating else result

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
            if leaf.kind == "list":  # those without the key are not in the table: their value is none
                p = p.filter(source.text(p, key, "attributes").notnull())
            read = {"number": source.number, "list": source.texts}.get(leaf.kind, source.text)
            value = read(p, key, "attributes")
        else:
            value = p[leaf.attribute]
        if leaf.kind == "date":
            value = value.cast("timestamp")
        table = p.select("customer_id", value=value)
        return Values(
            table,
            None,
            lambda v: compare(v, leaf.op, leaf.value, leaf.kind, as_of=self.as_of),
            f"{leaf.attribute} {leaf.op}{_show(leaf.value)}",
        )

    def _events(self, more: Callable[[ibis.Table], list[ibis.Value]] = lambda e: []) -> ibis.Table:
        """The customers' events before as-of (and `more(events)`), in one filter."""
        e = self._scoped(self.t.events)
        return e.filter(e.customer_id.notnull(), e.timestamp < self.as_of, *more(e))

    def _window(self, leaf: Event, e: ibis.Table) -> tuple[list[ibis.Value], str]:
        """The leaf's rows among `e` as conditions (name, window, where), and the window in words."""
        found = [e.event == leaf.event]
        window = ""
        if leaf.within_days is not None:
            found.append(e.timestamp >= self.as_of - timedelta(days=leaf.within_days))
            window = f" in the last {leaf.within_days} days"
        elif leaf.between is not None:
            start, end = (datetime.combine(d, datetime.min.time()) for d in leaf.between)
            found += [e.timestamp >= start, e.timestamp < end + timedelta(days=1)]
            window = f" between {leaf.between[0]} and {leaf.between[1]}"
        return found + [self._condition(e, cond) for cond in leaf.where], window

    def _event_rows(self, leaf: Event) -> tuple[ibis.Table, str]:
        """The customers' events the leaf looks at (name, window, where), and the window in words."""
        return self._events(lambda e: self._window(leaf, e)[0]), self._window(leaf, self.t.events)[1]

    @staticmethod
    def _measure(leaf: Event, t: ibis.Table, where: ibis.Value | None = None) -> ibis.Value:
        if leaf.measure == "count":
            return t.count(where=where)
        if leaf.measure in ("first", "last"):
            return t.timestamp.min(where=where) if leaf.measure == "first" else t.timestamp.max(where=where)
        number = source.number(t, leaf.property)
        return getattr(number, {"avg": "mean"}.get(leaf.measure, leaf.measure))(where=where)

    def _event_test(self, leaf: Event) -> Callable[[ibis.Value], ibis.Value]:
        return lambda v: compare(v, leaf.op, leaf.value, MEASURES[leaf.measure], as_of=self.as_of)

    def _per_groups(self, leaf: Event) -> tuple[ibis.Table, str]:
        """customer_id, per_value, value: the measure per value of `per` (a category, say)."""
        e, window = self._event_rows(leaf)
        e = e.select("customer_id", "timestamp", "properties", per_value=source.text(e, leaf.per))
        e = e.filter(e.per_value.notnull())
        return e.group_by(["customer_id", "per_value"]).aggregate(value=self._measure(leaf, e)), window

    def _event(self, leaf: Event) -> Values:
        if leaf.per:  # the measure per value of `per`, then the customer's highest (earliest for first)
            groups, window = self._per_groups(leaf)
            best = groups.value.min() if leaf.measure == "first" else groups.value.max()
            table = groups.group_by("customer_id").aggregate(value=best)
        elif (totalled := self._totalled([leaf])) is not None:
            table, window = totalled.select("customer_id", value=totalled.v0), ""
        else:
            e, window = self._event_rows(leaf)
            table = e.group_by("customer_id").aggregate(value=self._measure(leaf, e))
        return Values(table, _EVENT_DEFAULTS.get(leaf.measure), self._event_test(leaf), _describe(leaf, window))

    def _totalled(self, leaves_: list[Event]) -> ibis.Table | None:
        """customer_id, v0, v1...: the leaves' measures from the customers' totals, when every leaf is a count, first
        or last of one event over all time (else None). The customers with such an event at or after as-of (a clock
        ahead: few) are measured on the log's rows before it."""
        if self.t.totals is None or not all(_over_all_time(leaf) for leaf in leaves_):
            return None
        names = sorted({leaf.event for leaf in leaves_})
        late = self._late(names)
        t = self._scoped(self.t.totals)
        t = t.filter(t.event.isin(names), *([] if late is None else [~t.customer_id.isin(late)]))
        kept = t.group_by("customer_id").aggregate(**{f"v{i}": _total(leaf, t) for i, leaf in enumerate(leaves_)})
        kept = kept.mutate(customer_id=kept.customer_id.cast("string"))  # nullable, as the log's
        if late is None:
            return kept
        e = self._events(lambda e: [e.event.isin(names), e.customer_id.isin(late)])
        logged = e.group_by("customer_id").aggregate(
            **{f"v{i}": self._measure(leaf, e, where=e.event == leaf.event) for i, leaf in enumerate(leaves_)}
        )
        return kept.union(logged)

    def _passes_by_default(self, leaf: Event) -> bool:
        """Whether a customer without the leaf's events passes it."""
        window = f" in the last {leaf.within_days} days" if leaf.within_days is not None else ""
        window = f" between {leaf.between[0]} and {leaf.between[1]}" if leaf.between is not None else window
        kind = {"count": "int64", "first": "timestamp", "last": "timestamp"}.get(leaf.measure, "float64")
        return passes_default(_describe(leaf, window), _EVENT_DEFAULTS.get(leaf.measure), kind, self._event_test(leaf))

    def _coarse(self, leaves_: list[Event], e: ibis.Table) -> list[ibis.Value]:
        """What all the leaves' rows have in common (one of their names, after the earliest start of their
        windows): plain conditions an engine pushes into its scan, before each leaf's own."""
        names = sorted({leaf.event for leaf in leaves_})
        out = [e.event == names[0] if len(names) == 1 else e.event.isin(names)]
        starts = [
            self.as_of - timedelta(days=leaf.within_days)
            if leaf.within_days is not None
            else datetime.combine(leaf.between[0], datetime.min.time())
            if leaf.between is not None
            else None
            for leaf in leaves_
        ]
        return out if None in starts else [*out, e.timestamp >= min(starts)]

    def _fold(self, children: list[Rule], *, both: bool) -> tuple[list[Rule], list[tuple[bool, ibis.Table]]]:
        """Event conditions side by side in an `all` (`both`) or an `any`, or their negations, become one
        aggregate over one scan of the log, a column per condition (an aggregate FILTER each), as one would
        write it by hand: `count(*) FILTER (WHERE event = 'A') > 0 AND count(*) FILTER (WHERE event = 'B') = 0`.
        Returns the children left as they were, and the id set of the folded ones."""
        found = [(c, _plain_event(c)) for c in children]
        mine = [leaf for _, leaf in found if leaf is not None]
        if len(mine) < 2:
            return children, []
        leaves_ = [leaf for leaf, _ in mine]
        table = self._totalled(leaves_)
        if table is None:
            table = self._folded_log(leaves_)
        tests = []
        for i, (leaf, negated) in enumerate(mine):
            value, default = table[f"v{i}"], _EVENT_DEFAULTS.get(leaf.measure)
            test = self._event_test(leaf)(value if default is None else value.coalesce(default))
            test = test if leaf.measure == "count" else test.fill_null(False)  # a count is never null
            tests.append(~test if negated else test)
        defaults = [self._passes_by_default(leaf) != negated for leaf, negated in mine]
        keep = ibis.and_(*tests) if both else ibis.or_(*tests)
        return [c for c, leaf in found if leaf is None], [_split(table, keep, all(defaults) if both else any(defaults))]

    def _folded_log(self, leaves_: list[Event]) -> ibis.Table:
        """customer_id, v0, v1...: the leaves' measures in one scan of the log (an aggregate FILTER each)."""
        ev = self._scoped(self.t.events)
        coarse = self._coarse(leaves_, ev)
        windows = [self._window(leaf, ev)[0] for leaf in leaves_]
        kept = [[j for j, c in enumerate(w) if not any(c.equals(k) for k in coarse)] for w in windows]
        own = [[w[j] for j in js] for w, js in zip(windows, kept)]  # each leaf's conditions beyond those of all
        if all(own) and not all(len(c) == 1 and c[0].equals(ev.event == leaf.event) for c, leaf in zip(own, leaves_)):
            coarse.append(ibis.or_(*[ibis.and_(*c) for c in own]))  # else: the names alone pick the rows
        e = self._events(lambda _: coarse)
        own = [[self._window(leaf, e)[0][j] for j in js] for leaf, js in zip(leaves_, kept)]  # on the rows kept
        return e.group_by("customer_id").aggregate(
            **{
                f"v{i}": self._measure(leaf, e, where=ibis.and_(*c) if c else None)
                for i, (leaf, c) in enumerate(zip(leaves_, own))
            }
        )

    def _condition(self, e: ibis.Table, cond: Condition) -> ibis.Value:
        value = (source.number if cond.kind == "number" else source.text)(e, cond.property)
        return compare(value, cond.op, cond.value, cond.kind, as_of=self.as_of)

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
            rank = source.percent_rank(ranked[column], descending=True)
            table = self._scoped(ranked.select("customer_id", value=rank))
            return Values(table, None, lambda v: v < leaf.value / 100, f"{leaf.trait} in the top {leaf.value}%")
        table = self._scoped(table.select("customer_id", value=value))
        return Values(
            table,
            None,
            lambda v: compare(v, leaf.op, leaf.value, vtype, as_of=self.as_of),
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
        digits = source.md5_hex(p, ibis.literal(f"{leaf.salt}:") + p.customer_id).substr(0, 4)
        low, high = (f"{-(-b * HASH_SPACE // 100):04x}" if b < 100 else "g" for b in leaf.bucket)
        table = p.select("customer_id", value=digits)
        return Values(
            table, None, lambda v: (v >= low) & (v < high), f"bucket {leaf.bucket[0]}-{leaf.bucket[1]} of {leaf.salt}"
        )


_EVENT_DEFAULTS = {"count": 0, "sum": 0.0}  # the measure of a customer without such events (others: none)


def _plain_event(rule: Rule) -> tuple[Event, bool] | None:
    """(the event leaf, whether negated) for an event condition without `per`, or its negation; else None."""
    leaf, negated = (rule.not_, True) if isinstance(rule, Not) else (rule, False)
    return (leaf, negated) if isinstance(leaf, Event) and not leaf.per else None


def _over_all_time(leaf: Event) -> bool:
    """Whether the leaf is a count, first or last of one event over all time (what the customers' totals hold)."""
    plain = leaf.within_days is None and leaf.between is None and not leaf.where and not leaf.per
    return plain and leaf.measure in ("count", "first", "last")


def _total(leaf: Event, t: ibis.Table) -> ibis.Value:
    """The leaf's measure from the customers' totals `t` (count, first or last), as `_measure` reads it from the log."""
    mine = t.event == leaf.event
    if leaf.measure == "count":
        return t.events.sum(where=mine).fill_null(0).cast("int64")
    return t.first_at.min(where=mine) if leaf.measure == "first" else t.last_at.max(where=mine)


def _did(leaf: Event) -> bool:
    """Whether the leaf asks for one such event or more (count >= 1): the customers are those of its rows."""
    if leaf.measure != "count" or leaf.per or isinstance(leaf.value, (list, bool)):
        return False
    return (leaf.op == "gte" and leaf.value == 1) or (leaf.op == "gt" and leaf.value == 0)


def _describe(leaf: Event, window: str) -> str:
    where = "".join(f" with {c.property} {c.op}{_show(c.value)}" for c in leaf.where)
    subject = leaf.measure if leaf.measure in ("count", "first", "last") else f"{leaf.measure} of {leaf.property}"
    subject += f" per {leaf.per} (highest)" if leaf.per else ""
    return f"{subject} of {leaf.event}{where}{window} {leaf.op}{_show(leaf.value)}"


def _split(table: ibis.Table, passed: ibis.Value, by_default: bool) -> tuple[bool, ibis.Table]:
    """The leaf as an id set: the customers whose value passes, or, when those the leaf did not see pass it
    (`by_default`), everyone but the failing (null counts as failing)."""
    if by_default:
        return False, _id_set(table.filter(~passed.fill_null(False)))
    return True, _id_set(table.filter(passed))


def _union(tables: list[ibis.Table]) -> ibis.Table:
    return tables[0] if len(tables) == 1 else ibis.union(*tables, distinct=True)


def _id_set(table: ibis.Table) -> ibis.Table:
    """Just the ids, typed alike (nullable text) so that set operations accept any two of them."""
    return table.select(customer_id=table.customer_id.cast("string"))


def passes(v: Values) -> bool:
    """Whether the value of customers the leaf did not see passes its test (then they are members)."""
    return passes_default(v.describe, v.default, str(v.table.value.type()), v.test)


def _show(value: Any) -> str:
    """A rule's value as text, with its separating space (none when the operator takes no value)."""
    if isinstance(value, list):
        return " [" + ", ".join(map(str, value)) + "]"
    return "" if value is None else f" {value}"
