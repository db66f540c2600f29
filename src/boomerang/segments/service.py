"""Segments on a workspace: save (versioned), list, preview, members, explain."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

import ibis
import pandas as pd
import sqlalchemy as sa

from boomerang.bootstrap import Workspace
from boomerang.core.clock import naive_utc
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.metrics import activity, lifecycle, rfm
from boomerang.metrics.engine import log_backend
from boomerang.segments import profiles
from boomerang.segments.compile import Compiler, Tables, Values, passes
from boomerang.segments.definition import (
    All,
    Any_,
    Definition,
    InSegment,
    Not,
    Rule,
    leaves,
    parse_definition,
    parse_rule,
    to_data,
)
from boomerang.segments.models import Segment, SegmentMember, SegmentSize, SegmentVersion

TRAIT_KINDS = ("rfm", "lifecycle", "predictions")


def as_of_moment(day: date | datetime | str | None, ws: Workspace) -> datetime:
    """The moment rules are evaluated at: the end of the given day, or now."""
    if day is None:
        return naive_utc(ws.clock.now())
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError:
            raise ValidationFailed([{"field": "as_of", "reason": f"{day!r} is not a date (YYYY-MM-DD)"}]) from None
    if isinstance(day, datetime):
        return day
    return datetime.combine(day + timedelta(days=1), datetime.min.time())


# -- definitions -----------------------------------------------------------------------------------


def save(ws: Workspace, raw: dict[str, Any] | Definition) -> dict[str, Any]:
    """Create a segment, or give an existing one a new version when its definition changed."""
    definition = raw if isinstance(raw, Definition) else parse_definition(raw)
    tree = definition.tree
    now = naive_utc(ws.clock.now())
    with ws.uow.session() as session:
        known = set(session.scalars(sa.select(Segment.name)))
        for leaf in leaves(tree):
            if isinstance(leaf, InSegment) and leaf.segment not in known:
                raise ValidationFailed([{"field": "rule", "reason": f"segment {leaf.segment!r} does not exist"}])
        _check_cycles(session, definition.name, tree)
        rule = _data(definition.rule)
        segment = session.scalar(sa.select(Segment).where(Segment.name == definition.name))
        fields = {
            "title": definition.title,
            "description": definition.description,
            "triggers": sorted(definition.triggers()),
            "expires": definition.expires(),
        }
        if segment is None:
            segment = Segment(
                name=definition.name,
                definition=rule,
                version=1,
                created_at=now,
                updated_at=now,
                size=None,
                refreshed_at=None,
                **fields,
            )
            session.add(segment)
            session.flush()
            session.add(SegmentVersion(segment_id=segment.id, version=1, definition=rule, created_at=now))
            changed = True
        else:
            changed = segment.definition != rule
            if changed:
                segment.version += 1
                segment.definition = rule
                session.add(
                    SegmentVersion(segment_id=segment.id, version=segment.version, definition=rule, created_at=now)
                )
            for key, value in fields.items():
                setattr(segment, key, value)
            segment.updated_at = now
        return {**describe(segment), "changed": changed}


def _data(rule: Any) -> Any:
    """The rule as plain data, whether it came as data or as the Python models."""
    return to_data(rule) if not isinstance(rule, (dict, list)) else rule


def _check_cycles(session, name: str, tree: Rule) -> None:
    rules = {s.name: s.definition for s in session.scalars(sa.select(Segment))}
    rules[name] = tree

    def visit(current: str, path: list[str]) -> None:
        rule = rules[current]
        for leaf in leaves(rule if not isinstance(rule, dict) else parse_rule(rule)):
            if isinstance(leaf, InSegment):
                if leaf.segment in path:
                    raise ValidationFailed(
                        [
                            {
                                "field": "rule",
                                "reason": "segments refer to each other in a cycle: "
                                + " -> ".join([*path, leaf.segment]),
                            }
                        ]
                    )
                if leaf.segment in rules:
                    visit(leaf.segment, [*path, leaf.segment])

    visit(name, [name])


def describe(segment: Segment) -> dict[str, Any]:
    return {
        "name": segment.name,
        "title": segment.title,
        "description": segment.description,
        "version": segment.version,
        "rule": segment.definition,
        "triggers": segment.triggers,
        "expires": segment.expires,
        "size": segment.size,
        "refreshed_at": segment.refreshed_at.isoformat() if segment.refreshed_at else None,
        "updated_at": segment.updated_at.isoformat(),
    }


def get(session, name: str) -> Segment:
    segment = session.scalar(sa.select(Segment).where(Segment.name == name))
    if segment is None:
        raise NotFound(f"no segment named {name!r}", field="segment")
    return segment


def list_segments(ws: Workspace) -> list[dict[str, Any]]:
    with ws.uow.session() as session:
        return [describe(s) for s in session.scalars(sa.select(Segment).order_by(Segment.name))]


def delete(ws: Workspace, name: str) -> None:
    with ws.uow.session() as session:
        segment = get(session, name)
        users = [
            s.name
            for s in session.scalars(sa.select(Segment))
            if s.name != name
            and any(isinstance(leaf, InSegment) and leaf.segment == name for leaf in leaves(parse_rule(s.definition)))
        ]
        if users:
            raise ValidationFailed([{"field": "segment", "reason": f"{name} is used by {', '.join(users)}"}])
        for model in (SegmentMember, SegmentVersion, SegmentSize):
            session.execute(sa.delete(model).where(model.segment_id == segment.id))
        session.delete(segment)


def history(ws: Workspace, name: str, limit: int = 500) -> list[dict[str, Any]]:
    """The size after each recompute, oldest first."""
    with ws.uow.session() as session:
        segment = get(session, name)
        rows = session.execute(
            sa.select(SegmentSize.at, SegmentSize.size, SegmentSize.entered, SegmentSize.exited)
            .where(SegmentSize.segment_id == segment.id)
            .order_by(SegmentSize.at.desc())
            .limit(limit)
        ).all()
    return [{"at": r.at.isoformat(), "size": r.size, "entered": r.entered, "exited": r.exited} for r in reversed(rows)]


def resolve_definition(ws: Workspace, name_or_raw: str | dict[str, Any]) -> Definition:
    """A saved segment's definition by name, or a definition given as data (for previews)."""
    if isinstance(name_or_raw, dict):
        return parse_definition(name_or_raw)
    with ws.uow.session() as session:
        segment = get(session, name_or_raw)
        return Definition(
            name=segment.name, title=segment.title, description=segment.description, rule=segment.definition
        )


# -- evaluation ------------------------------------------------------------------------------------


@contextmanager
def compiler(
    ws: Workspace, *, as_of: datetime | None = None, only: list[str] | None = None, sync: bool = True
) -> Iterator[Compiler]:
    """A compiler over the workspace's log, profiles and traits; `as_of` in the past computes RFM and
    lifecycle as they were then (predictions are the stored ones). `sync=False`: the caller has
    just copied the profiles that matter."""
    if sync:
        profiles.sync(ws)
    moment = as_of or naive_utc(ws.clock.now())
    with log_backend(ws) as con:
        names = {r[0] for r in con.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        tables = Tables(
            events=con.table("events"),
            profiles=con.table("profiles"),
            consents=con.table("profile_consents"),
            traits={k: con.table(f"trait_{k}") if f"trait_{k}" in names else None for k in TRAIT_KINDS},
        )

        def live(kind: str) -> ibis.Table | None:
            if kind == "rfm":
                return rfm.scores(tables.events, moment)
            if kind == "lifecycle":
                return lifecycle.current(tables.events, window=activity.inactivity_window(tables.events), end=moment)
            return tables.traits.get(kind)

        def resolve(name: str) -> Rule:
            return resolve_definition(ws, name).tree

        yield Compiler(
            tables, as_of=moment, resolve=resolve, only=only, live_traits=live if as_of is not None else None
        )


def _run(
    ws: Workspace, definition: Definition, *, as_of: datetime | None, only: list[str] | None = None, sync: bool = True
) -> pd.DataFrame:
    with compiler(ws, as_of=as_of, only=only, sync=sync) as c:
        try:
            expr = c.members(definition.tree)
        except ValueError as exc:
            raise ValidationFailed([{"field": "rule", "reason": str(exc)}]) from None
        return expr.order_by("customer_id").execute()


def members(
    ws: Workspace,
    name_or_raw: str | dict[str, Any],
    *,
    as_of: date | datetime | str | None = None,
    only: list[str] | None = None,
    sync: bool = True,
) -> pd.DataFrame:
    """customer_id of every member, or of those of `only`: now, at the end of the given day, or at a moment.
    `sync=False`: the caller has just copied the profiles that matter (see profiles.sync)."""
    definition = resolve_definition(ws, name_or_raw)
    return _run(ws, definition, as_of=as_of_moment(as_of, ws) if as_of else None, only=only, sync=sync)


def preview(
    ws: Workspace, name_or_raw: str | dict[str, Any], *, as_of: date | str | None = None, sample: int = 10
) -> dict[str, Any]:
    """Size and a sample of members, without saving anything."""
    started = time.perf_counter()
    definition = resolve_definition(ws, name_or_raw)
    frame = _run(ws, definition, as_of=as_of_moment(as_of, ws) if as_of else None)
    with ws.engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM customers WHERE merged_into_id IS NULL")).scalar_one()
    ids = frame["customer_id"].head(sample).tolist()
    return {
        "name": definition.name,
        "as_of": as_of_moment(as_of, ws).isoformat(),
        "size": int(len(frame)),
        "customers": int(total),
        "share": round(len(frame) / total, 6) if total else None,
        "sample": ids,
        "seconds": round(time.perf_counter() - started, 3),
    }


def explain(
    ws: Workspace, name_or_raw: str | dict[str, Any], customer_id: str, *, as_of: date | str | None = None
) -> dict[str, Any]:
    """Why the customer is or is not a member: every condition with the value seen and whether it held."""
    definition = resolve_definition(ws, name_or_raw)
    with ws.engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT merged_into_id FROM customers WHERE id = :id"), {"id": customer_id}
        ).first()
    if found is None:
        raise NotFound(f"no customer {customer_id!r}", field="customer")
    if found[0]:
        raise NotFound(f"customer {customer_id} was merged into {found[0]}", field="customer")
    moment = as_of_moment(as_of, ws) if as_of else None
    with compiler(ws, as_of=moment, only=[customer_id]) as c:
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
