"""Segment definitions in the store: save (versioned), list, get, delete, size history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.customers.privacy import hooks as privacy
from boomerang.segments.definition import Definition, InSegment, Rule, leaves, parse_definition, parse_rule, to_data
from boomerang.segments.models import Segment, SegmentMember, SegmentSize, SegmentVersion

# -- definitions -----------------------------------------------------------------------------------


def save(session: Session, raw: dict[str, Any] | Definition, *, now: datetime) -> dict[str, Any]:
    """Create a segment, or give an existing one a new version when its definition changed; flushes."""
    definition = raw if isinstance(raw, Definition) else parse_definition(raw)
    tree = definition.tree
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
            session.add(SegmentVersion(segment_id=segment.id, version=segment.version, definition=rule, created_at=now))
        for key, value in fields.items():
            setattr(segment, key, value)
        segment.updated_at = now
    session.flush()
    return {**describe(segment), "changed": changed}


def _data(rule: Any) -> Any:
    """The rule as plain data, whether it came as data or as the Python models."""
    return to_data(rule) if not isinstance(rule, (dict, list)) else rule


def _check_cycles(session: Session, name: str, tree: Rule) -> None:
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


def find(session: Session, name: str) -> Segment | None:
    return session.scalar(sa.select(Segment).where(Segment.name == name))


def get(session: Session, name: str) -> Segment:
    segment = session.scalar(sa.select(Segment).where(Segment.name == name))
    if segment is None:
        raise NotFound(f"no segment named {name!r}", field="segment")
    return segment


def list_segments(session: Session) -> list[dict[str, Any]]:
    return [describe(s) for s in session.scalars(sa.select(Segment).order_by(Segment.name))]


def delete(session: Session, name: str) -> None:
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
    session.flush()


def history(session: Session, name: str, limit: int = 500) -> list[dict[str, Any]]:
    """The size after each recompute, oldest first."""
    segment = get(session, name)
    rows = session.execute(
        sa.select(SegmentSize.at, SegmentSize.size, SegmentSize.entered, SegmentSize.exited)
        .where(SegmentSize.segment_id == segment.id)
        .order_by(SegmentSize.at.desc())
        .limit(limit)
    ).all()
    return [{"at": r.at.isoformat(), "size": r.size, "entered": r.entered, "exited": r.exited} for r in reversed(rows)]


def resolve_definition(session: Session, name_or_raw: str | dict[str, Any]) -> Definition:
    """A saved segment's definition by name, or a definition given as data (for previews)."""
    if isinstance(name_or_raw, dict):
        return parse_definition(name_or_raw)
    segment = get(session, name_or_raw)
    return Definition(name=segment.name, title=segment.title, description=segment.description, rule=segment.definition)


def follow_merge(session: Session, from_id: str, into_id: str, now: datetime) -> None:
    """The merged profile's memberships are the surviving profile's (once each) until the next evaluation."""
    both = sa.select(SegmentMember.segment_id).where(SegmentMember.customer_id == into_id)
    twice = list(
        session.scalars(
            sa.select(SegmentMember.segment_id).where(
                SegmentMember.customer_id == from_id, SegmentMember.segment_id.in_(both)
            )
        )
    )
    if twice:
        session.execute(
            sa.delete(SegmentMember).where(SegmentMember.customer_id == from_id, SegmentMember.segment_id.in_(twice))
        )
        session.execute(
            sa.update(Segment).where(Segment.id.in_(twice), Segment.size.is_not(None)).values(size=Segment.size - 1)
        )
    session.execute(sa.update(SegmentMember).where(SegmentMember.customer_id == from_id).values(customer_id=into_id))


def memberships(session: Session, customer_id: str) -> list[tuple[str, str, datetime | None, datetime | None]]:
    """Every segment (name, title, refreshed_at) with when the customer entered it (None: not a member),
    the customer's segments first."""
    member = (SegmentMember.segment_id == Segment.id) & (SegmentMember.customer_id == customer_id)
    return list(
        session.execute(
            sa.select(Segment.name, Segment.title, Segment.refreshed_at, SegmentMember.entered_at)
            .outerjoin(SegmentMember, member)
            .order_by(SegmentMember.entered_at.is_(None), Segment.name)
        ).all()
    )


def export_customer(session: Session, customer_ids: list[str]) -> dict[str, Any]:
    """The segments the customers are members of, since when (a privacy export's section)."""
    rows = session.execute(
        sa.select(SegmentMember.customer_id, Segment.name, Segment.title, SegmentMember.entered_at)
        .join(Segment, Segment.id == SegmentMember.segment_id)
        .where(SegmentMember.customer_id.in_(customer_ids))
        .order_by(Segment.name)
    ).all()
    return {"segment_memberships": [privacy.plain(dict(row._mapping)) for row in rows]}


def erase_customer(session: Session, customer_id: str, pseudonym: str, now: datetime) -> privacy.Tally:
    """An erased customer's memberships are the pseudonym's until the next evaluation (sizes do not jump)."""
    moved = privacy.move_to(session, SegmentMember.customer_id, customer_id, pseudonym)
    return {"pseudonymised": {"segment_memberships": moved}}
