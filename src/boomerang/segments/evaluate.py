"""Evaluating segment rules over the event log: members, preview, explain.

An `Evaluator` reads the saved definitions from the operational store, copies the profiles beside the
log (profiles.sync) and runs the compiled rule as one Ibis expression through the log's door.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import ibis
import pandas as pd
import sqlalchemy as sa

from boomerang.core.clock import Clock, naive_utc
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.customers.merge import live_ids
from boomerang.customers.models import Customer
from boomerang.db import UnitOfWork
from boomerang.events.log import EventLog
from boomerang.metrics import activity, lifecycle, rfm
from boomerang.segments import profiles
from boomerang.segments.compile import Compiler, Tables, Values, passes
from boomerang.segments.definition import TRAIT_KINDS, All, Any_, Definition, InSegment, Not, Rule
from boomerang.segments.models import Segment
from boomerang.segments.service import resolve_definition

Wanted = str | dict[str, Any]  # a saved segment's name, or a definition given as data


def as_of_moment(day: date | datetime | str | None, now: datetime) -> datetime:
    """The moment rules are evaluated at: the end of the given day, the moment given, or now."""
    if day is None:
        return now
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError:
            raise ValidationFailed([{"field": "as_of", "reason": f"{day!r} is not a date (YYYY-MM-DD)"}]) from None
    if isinstance(day, datetime):
        return day
    return datetime.combine(day + timedelta(days=1), datetime.min.time())


@dataclass(frozen=True)
class Evaluator:
    uow: UnitOfWork
    log: EventLog
    clock: Clock

    def now(self) -> datetime:
        return naive_utc(self.clock.now())

    def sync(self, customer_ids: list[str] | None = None) -> int:
        """Copy the profiles that changed (or these customers') beside the log."""
        return profiles.sync(self.uow, self.log, now=self.now(), customer_ids=customer_ids)

    def definition(self, wanted: Wanted) -> Definition:
        with self.uow.session() as session:
            return resolve_definition(session, wanted)

    @contextmanager
    def compiler(
        self, *, as_of: datetime | None = None, only: list[str] | None = None, sync: bool = True
    ) -> Iterator[Compiler]:
        """A compiler over the log, the profiles and the traits; `as_of` in the past computes RFM and lifecycle
        as they were then (predictions are the stored ones). `sync=False`: the caller has just copied the
        profiles that matter."""
        if sync:
            self.sync()
        moment = as_of or self.now()
        with self.uow.session() as session:  # every saved rule, read once: a rule may use other segments
            rules = dict(session.execute(sa.select(Segment.name, Segment.definition)).all())
        with self.log.reader() as r:
            tables = Tables(
                events=r.events,
                profiles=r.profiles,
                consents=r.consents,
                traits={kind: r.trait(kind) for kind in TRAIT_KINDS},
                totals=r.totals if as_of is None else None,  # as of a past moment, most customers have later events
            )

            def live(kind: str) -> ibis.Table | None:
                if kind == "rfm":
                    return rfm.scores(tables.events, moment)
                if kind == "lifecycle":
                    window = activity.inactivity_window(tables.events)
                    return lifecycle.current(tables.events, window=window, end=moment)
                return tables.traits.get(kind)

            def resolve(name: str) -> Rule:
                if name not in rules:
                    raise NotFound(f"no segment named {name!r}", field="segment")
                return Definition(name=name, rule=rules[name]).tree

            yield Compiler(
                tables, as_of=moment, resolve=resolve, only=only, live_traits=live if as_of is not None else None
            )

    def _run(self, definition: Definition, *, as_of: datetime | None, only: list[str] | None, sync: bool):
        with self.compiler(as_of=as_of, only=only, sync=sync) as c:
            try:
                expr = c.members(definition.tree)
            except ValueError as exc:
                raise ValidationFailed([{"field": "rule", "reason": str(exc)}]) from None
            return expr.order_by("customer_id").execute()

    def members(
        self,
        wanted: Wanted,
        *,
        as_of: date | datetime | str | None = None,
        only: list[str] | None = None,
        sync: bool = True,
    ) -> pd.DataFrame:
        """customer_id of every member, or of those of `only`: now, at the end of the given day, or at a moment.
        `sync=False`: the caller has just copied the profiles that matter (see `sync`)."""
        moment = as_of_moment(as_of, self.now()) if as_of else None
        return self._run(self.definition(wanted), as_of=moment, only=only, sync=sync)

    def preview(self, wanted: Wanted, *, as_of: date | str | None = None, sample: int = 10) -> dict[str, Any]:
        """Size and a sample of members, without saving anything."""
        started = time.perf_counter()
        definition = self.definition(wanted)
        frame = self._run(definition, as_of=as_of_moment(as_of, self.now()) if as_of else None, only=None, sync=True)
        with self.uow.session() as session:
            total = session.scalar(sa.select(sa.func.count()).where(Customer.merged_into_id.is_(None)))
        return {
            "name": definition.name,
            "as_of": as_of_moment(as_of, self.now()).isoformat(),
            "size": int(len(frame)),
            "customers": int(total),
            "share": round(len(frame) / total, 6) if total else None,
            "sample": frame["customer_id"].head(sample).tolist(),
            "seconds": round(time.perf_counter() - started, 3),
        }

    def explain(self, wanted: Wanted, customer_id: str, *, as_of: date | str | None = None) -> dict[str, Any]:
        """Why the customer is or is not a member: every condition with the value seen and whether it held."""
        definition = self.definition(wanted)
        with self.uow.session() as session:
            live = live_ids(session, [customer_id]).get(customer_id)
        if live is None:
            raise NotFound(f"no customer {customer_id!r}", field="customer")
        if live != customer_id:
            raise NotFound(f"customer {customer_id} was merged into {live}", field="customer")
        moment = as_of_moment(as_of, self.now()) if as_of else None
        with self.compiler(as_of=moment, only=[customer_id]) as c:
            try:
                tree = _explain(c, definition.tree)
            except ValueError as exc:
                raise ValidationFailed([{"field": "rule", "reason": str(exc)}]) from None
            existed = bool(len(c.base.execute()))
        return {
            "segment": definition.name,
            "customer_id": customer_id,
            "as_of": c.as_of.isoformat(),
            "member": tree["passed"] and existed,
            "existed": existed,
            "rule": tree,
        }


def _explain(c: Compiler, rule: Rule) -> dict[str, Any]:
    if isinstance(rule, (All, Any_)):
        children = [_explain(c, r) for r in (rule.all if isinstance(rule, All) else rule.any)]
        passed = all(ch["passed"] for ch in children) if isinstance(rule, All) else any(ch["passed"] for ch in children)
        return {"op": "all" if isinstance(rule, All) else "any", "passed": passed, "children": children}
    if isinstance(rule, Not):
        child = _explain(c, rule.not_)
        return {"op": "not", "passed": not child["passed"], "children": [child]}
    if isinstance(rule, InSegment):
        child = _explain(c, c._inner(rule.segment))
        return {"op": "segment", "segment": rule.segment, "passed": child["passed"], "children": [child]}
    v: Values = c.values(rule)
    row = v.table.mutate(passed=v.test(v.table.value).fill_null(False)).execute()
    if len(row):
        value, passed = row["value"].iloc[0], bool(row["passed"].iloc[0])
    else:
        value, passed = v.default, passes(v)
    return {"op": "condition", "condition": v.describe, "value": _json(value), "passed": passed}


def _json(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return None if pd.isna(value) else pd.Timestamp(value).isoformat()
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
