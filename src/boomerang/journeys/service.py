"""Journeys on a workspace: save (versioned), list, activate, pause, stats."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from boomerang.bootstrap import Workspace
from boomerang.core.clock import naive_utc
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.customers.models import Customer
from boomerang.journeys import models as m
from boomerang.journeys.definition import (
    InactivityTrigger,
    Journey,
    LifecycleTrigger,
    SegmentTrigger,
    Send,
    parse_journey,
)
from boomerang.messaging.models import Message
from boomerang.segments.matrix import Usage
from boomerang.segments.models import Segment


def save(ws: Workspace, raw: dict[str, Any]) -> dict[str, Any]:
    """Create a journey (as a draft), or a new version of it when its definition changed: running
    instances finish on the version they started on."""
    journey = parse_journey(raw)
    now = naive_utc(ws.clock.now())
    with ws.uow.session() as session:
        if isinstance(journey.trigger, SegmentTrigger):
            if session.scalar(sa.select(Segment.id).where(Segment.name == journey.trigger.segment)) is None:
                raise ValidationFailed(
                    [{"field": "trigger.segment", "reason": f"segment {journey.trigger.segment!r} does not exist"}]
                )
        data = journey.model_dump(mode="json")  # every field, so that goal: null stays null
        row = session.scalar(sa.select(m.Journey).where(m.Journey.name == journey.name))
        changed = True
        if row is None:
            row = m.Journey(
                name=journey.name,
                title=journey.title,
                status="draft",
                version=1,
                definition=data,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
        elif row.definition != data:
            row.version += 1
            row.definition, row.title, row.updated_at = data, journey.title, now
        else:
            changed = False
        if changed:
            session.add(m.JourneyVersion(journey_id=row.id, version=row.version, definition=data, created_at=now))
        return {**describe(row), "changed": changed}


def describe(row: m.Journey) -> dict[str, Any]:
    return {
        "name": row.name,
        "title": row.title,
        "status": row.status,
        "version": row.version,
        "trigger": row.definition["trigger"],
        "category": row.definition["category"],
        "updated_at": row.updated_at.isoformat(),
    }


def get(session, name: str) -> m.Journey:
    row = session.scalar(sa.select(m.Journey).where(m.Journey.name == name))
    if row is None:
        raise NotFound(f"no journey named {name!r}", field="journey")
    return row


def set_status(ws: Workspace, name: str, status: str) -> dict[str, Any]:
    """active: triggers start instances; paused: no new instances, running ones go on (timers too)."""
    with ws.uow.session() as session:
        row = get(session, name)
        row.status, row.updated_at = status, naive_utc(ws.clock.now())
        return describe(row)


def list_journeys(ws: Workspace) -> list[dict[str, Any]]:
    with ws.uow.session() as session:
        rows = list(session.scalars(sa.select(m.Journey).order_by(m.Journey.name)))
        counts = dict(
            session.execute(
                sa.select(m.Instance.journey_id, sa.func.count())
                .where(m.Instance.status != "done")
                .group_by(m.Instance.journey_id)
            ).all()
        )
        return [{**describe(r), "running": int(counts.get(r.id, 0))} for r in rows]


_VERSIONS: dict[tuple[str, int, int], Journey] = {}  # versions never change: parsed once per store


def definition_of(session, journey_id: int, version: int) -> Journey:
    """The parsed definition of one version of a journey."""
    key = (str(session.get_bind().url), journey_id, version)
    if key not in _VERSIONS:
        data = session.scalar(
            sa.select(m.JourneyVersion.definition).where(
                (m.JourneyVersion.journey_id == journey_id) & (m.JourneyVersion.version == version)
            )
        )
        _VERSIONS[key] = parse_journey(data)
    return _VERSIONS[key]


def stats(ws: Workspace, name: str) -> dict[str, Any]:
    """Instances per status and node, messages per status, conversions and revenue by group: the
    journey's incremental conversion is the treated group's rate minus its control group's."""
    with ws.uow.session() as session:
        row = get(session, name)
        instances = session.execute(
            sa.select(m.Instance.control, m.Instance.status, m.Instance.node, sa.func.count())
            .where(m.Instance.journey_id == row.id)
            .group_by(m.Instance.control, m.Instance.status, m.Instance.node)
        ).all()
        messages = session.execute(
            sa.select(Message.node, Message.status, sa.func.count())
            .where(Message.source == f"journey:{name}")
            .group_by(Message.node, Message.status)
        ).all()
        conversions = session.execute(
            sa.select(m.Conversion.control, sa.func.count(), sa.func.sum(m.Conversion.revenue))
            .where(m.Conversion.journey_id == row.id)
            .group_by(m.Conversion.control)
        ).all()
        by_node = session.execute(
            sa.select(m.Conversion.node, sa.func.count(), sa.func.sum(m.Conversion.revenue))
            .where(m.Conversion.journey_id == row.id, m.Conversion.control.is_(False))
            .group_by(m.Conversion.node)
        ).all()
    groups = {}
    for control in (False, True):
        entered = sum(n for c, _, _, n in instances if c == control)
        converted, revenue = next(((n, r or 0.0) for c, n, r in conversions if c == control), (0, 0.0))
        groups["control" if control else "treated"] = {
            "entered": entered,
            "converted": converted,
            "revenue": round(revenue, 2),
            "conversion_rate": round(converted / entered, 6) if entered else None,
            "revenue_per_customer": round(revenue / entered, 4) if entered else None,
        }
    t, c = groups["treated"], groups["control"]
    lift = (
        (t["conversion_rate"] - c["conversion_rate"])
        if t["conversion_rate"] is not None and c["conversion_rate"] is not None
        else None
    )
    incremental = (t["revenue_per_customer"] - c["revenue_per_customer"]) * t["entered"] if lift is not None else None
    nodes: dict[str, dict[str, Any]] = {}

    def node_of(name: str | None) -> dict[str, Any]:
        return nodes.setdefault(name or "-", {"here": {}, "messages": {}, "conversions": 0, "revenue": 0.0})

    for _, status, node, n in instances:  # where instances are now (done ones: where they ended)
        here = node_of(node)["here"]
        here[status] = here.get(status, 0) + n
    for node, status, n in messages:
        node_of(node)["messages"][status] = n
    for node, n, revenue in by_node:
        node_of(node).update(conversions=n, revenue=round(revenue or 0.0, 2))
    return {
        "journey": name,
        "version": row.version,
        "status": row.status,
        "groups": groups,
        "incremental": {
            "conversion_rate": None if lift is None else round(lift, 6),
            "revenue": None if incremental is None else round(incremental, 2),
        },
        "nodes": nodes,
    }


def enter_manually(ws: Workspace, name: str, customer_id: str, *, key: str | None = None) -> dict[str, Any]:
    """A manual or API trigger: the customer enters the active journey now, if its rules let them."""
    from boomerang.journeys.runtime import enter  # the runtime builds on this module

    now = naive_utc(ws.clock.now())
    with ws.uow.session() as session:
        row = get(session, name)
        if row.status != "active":
            raise ValidationFailed([{"field": "journey", "reason": f"{name} is {row.status}: activate it first"}])
        merged = session.scalar(sa.select(Customer.merged_into_id).where(Customer.id == customer_id))
        if session.get(Customer, customer_id) is None:
            raise NotFound(f"no customer {customer_id!r}", field="customer")
        instance = enter(session, row, merged or customer_id, now, key=key)
    return {
        "journey": name,
        "customer_id": merged or customer_id,
        "instance": instance,
        "reason": None if instance else "already inside, or re-entry rules keep them out",
    }


def pending_approvals(ws: Workspace, limit: int = 500) -> list[dict[str, Any]]:
    with ws.uow.session() as session:
        rows = session.execute(
            sa.select(m.ApprovalRequest, m.Journey.name)
            .join(m.Journey)
            .where(m.ApprovalRequest.status == "pending")
            .order_by(m.ApprovalRequest.created_at)
            .limit(limit)
        ).all()
        return [
            {
                "key": r.key,
                "journey": name,
                "node": r.node,
                "customer_id": r.customer_id,
                "note": r.note,
                "instance_id": r.instance_id,
                "created_at": r.created_at.isoformat(),
            }
            for r, name in rows
        ]


def matrix_usages(ws: Workspace) -> list:
    """What the active and paused journeys aim at, for the segment x goal x channel matrix: a journey
    started by a segment speaks to it, for its goal, on the channels of its send nodes."""
    with ws.uow.session() as session:
        rows = list(session.scalars(sa.select(m.Journey).where(m.Journey.status != "draft")))
        journeys = [definition_of(session, row.id, row.version) for row in rows]
    out = []
    for journey in journeys:
        if not isinstance(journey.trigger, SegmentTrigger) or journey.trigger.on != "entered":
            continue
        channels = tuple(
            sorted({ch for n in journey.nodes.values() if isinstance(n, Send) for ch in (n.channel, *n.fallback)})
        )
        out.append(Usage(journey.trigger.segment, "journey", journey.name, _purpose(journey), channels))
    return out


def _purpose(journey: Journey) -> str:
    """The matrix's goal of a journey: as its definition says, or read from its goal and trigger."""
    goal = journey.goal.event if journey.goal else None
    if journey.purpose:
        return journey.purpose
    if goal in ("NPS Survey Answered", "Product Reviewed"):
        return "feedback"
    if isinstance(journey.trigger, InactivityTrigger) or (
        isinstance(journey.trigger, LifecycleTrigger) and journey.trigger.lifecycle in ("sleeping", "churned")
    ):
        return "reactivation"
    return "repeat_purchase" if goal == "Order Completed" else "loyalty"
