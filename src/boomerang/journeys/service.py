"""Journeys on a workspace: save (versioned), list, activate, pause, stats."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.customers.merge import move_rows
from boomerang.customers.models import Customer
from boomerang.db import in_chunks
from boomerang.journeys import models as m
from boomerang.journeys.definition import (
    TRIGGER_BOX,
    InactivityTrigger,
    Journey,
    LifecycleTrigger,
    SegmentTrigger,
    parse_journey,
)
from boomerang.messaging.models import Message
from boomerang.segments.models import Segment


def save(session: Session, raw: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """Create a journey (as a draft), or a new version of it when its definition changed: running
    instances finish on the version they started on. The canvas's `layout` is no part of a version: moving
    boxes rewrites the current version's positions in place, and a definition saved without one keeps the
    stored positions of the nodes it still has."""
    journey = parse_journey(raw)
    if isinstance(journey.trigger, SegmentTrigger):
        if session.scalar(sa.select(Segment.id).where(Segment.name == journey.trigger.segment)) is None:
            raise ValidationFailed(
                [{"field": "trigger.segment", "reason": f"segment {journey.trigger.segment!r} does not exist"}]
            )
    data = journey.model_dump(mode="json", exclude={"layout"})  # every field, so that goal: null stays null
    row = session.scalar(sa.select(m.Journey).where(m.Journey.name == journey.name))
    layout = journey.model_dump(mode="json", include={"layout"})["layout"]
    if not layout and row is not None:  # saved without positions: those of the boxes still there stay
        stored = row.definition.get("layout") or {}
        layout = {k: v for k, v in stored.items() if k in journey.nodes or k == TRIGGER_BOX}
    if layout:
        data["layout"] = layout
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
    elif _engine_part(row.definition) != _engine_part(data):
        row.version += 1
        row.definition, row.title, row.updated_at = data, journey.title, now
    else:
        changed = False
        if row.definition.get("layout") != data.get("layout"):
            _move_boxes(session, row, data.get("layout"))
    if changed:
        session.add(m.JourneyVersion(journey_id=row.id, version=row.version, definition=data, created_at=now))
    session.flush()
    return {**describe(row), "changed": changed}


def _engine_part(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "layout"}


def _move_boxes(session: Session, row: m.Journey, layout: dict[str, Any] | None) -> None:
    """New positions for the current version's boxes: the same version, drawn elsewhere."""
    current = session.get(m.JourneyVersion, (row.id, row.version))
    for holder in (row, current):
        if holder is not None:
            holder.definition = {**_engine_part(holder.definition), **({"layout": layout} if layout else {})}


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


def test_run(session: Session, name: str, instance_id: str) -> dict[str, Any] | None:
    """A test run of the journey `name` (for the page that started it): its instance, customer and speed."""
    row = session.get(m.Instance, instance_id)
    if row is None or not row.test or row.journey_id != get(session, name).id:
        return None
    return {"instance": row.id, "customer_id": row.customer_id, "speed": (row.state or {}).get("speed")}


def set_status(session: Session, name: str, status: str, *, now: datetime) -> dict[str, Any]:
    """active: triggers start instances; paused: no new instances, running ones go on (timers too)."""
    row = get(session, name)
    row.status, row.updated_at = status, now
    session.flush()
    return describe(row)


def list_journeys(session: Session) -> list[dict[str, Any]]:
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


def stats(session: Session, name: str) -> dict[str, Any]:
    """Instances per status and node, messages per status, conversions and revenue by group (counts: the
    intervals are `results`')."""
    row = get(session, name)
    instances = session.execute(
        sa.select(m.Instance.control, m.Instance.status, m.Instance.node, sa.func.count())
        .where(m.Instance.journey_id == row.id, m.Instance.test.is_(False))
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
    return {"journey": name, "version": row.version, "status": row.status, "groups": groups, "nodes": nodes}


def results(
    session: Session,
    name: str,
    *,
    global_control_share: float,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """The journey's tests with intervals (journeys.results): against its control group and the global one, per
    send node and per split node; over every version, read with the current one's graph; of the instances that
    entered in [since, until) where given."""
    from boomerang.journeys.results import measure  # pandas and the statistics: only when asked

    row = get(session, name)
    journey = definition_of(session, row.id, row.version)
    return {
        "journey": name,
        "version": row.version,
        **measure(session, row, journey, global_control_share=global_control_share, since=since, until=until),
    }


PASSED_SAMPLE = 5000  # the latest instances read for the canvas's "passed" counts


def passed(session: Session, name: str, *, limit: int = PASSED_SAMPLE) -> tuple[dict[str, int], int]:
    """How many of the journey's latest `limit` instances (test runs aside) went through each node (an instance
    counts once per node, however often it looped there), and how many instances were read."""
    row = get(session, name)
    states = session.scalars(
        sa.select(m.Instance.state)
        .where(m.Instance.journey_id == row.id, m.Instance.test.is_(False))
        .order_by(m.Instance.entered_at.desc())
        .limit(limit)
    )
    counts: Counter[str] = Counter()
    read = 0
    for state in states:
        read += 1
        counts.update(set((state or {}).get("path") or []))
    return dict(counts), read


def pending_approvals(session: Session, limit: int = 500) -> list[dict[str, Any]]:
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


def purpose(journey: Journey) -> str:
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


def follow_merge(session: Session, from_id: str, into_id: str, now: datetime) -> None:
    """The merged profile's journeys go on as the surviving profile's (and count for its re-entry rules)."""
    for column in (m.Instance.customer_id, m.Conversion.customer_id, m.ApprovalRequest.customer_id):
        move_rows(session, column, from_id, into_id)


def versions(session: Session, journey_id: int) -> list[tuple[int, datetime]]:
    """(version, created_at) of every version of a journey, newest first."""
    return list(
        session.execute(
            sa.select(m.JourneyVersion.version, m.JourneyVersion.created_at)
            .where(m.JourneyVersion.journey_id == journey_id)
            .order_by(m.JourneyVersion.version.desc())
        ).all()
    )


def version_definition(session: Session, journey_id: int, version: int) -> dict[str, Any] | None:
    """One version's definition as stored; None for a version that does not exist."""
    return session.scalar(
        sa.select(m.JourneyVersion.definition).where(
            m.JourneyVersion.journey_id == journey_id, m.JourneyVersion.version == version
        )
    )


def pending_count(session: Session) -> int:
    return int(session.scalar(sa.select(sa.func.count()).where(m.ApprovalRequest.status == "pending")))


def approvals(session: Session, *, recent: int = 20) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pending requests, each with who it is about (`customer_label`), the version asking and its parsed
    `definition` (None when it no longer validates), and the `recent` latest decisions."""
    queue = pending_approvals(session)
    labels = dict(
        session.execute(
            sa.select(Customer.id, sa.func.coalesce(Customer.email, Customer.external_id, Customer.id)).where(
                Customer.id.in_({i["customer_id"] for i in queue})
            )
        ).all()
    )
    asking = {
        i: (j, v)
        for i, j, v in session.execute(
            sa.select(m.Instance.id, m.Instance.journey_id, m.Instance.version).where(
                m.Instance.id.in_({i["instance_id"] for i in queue})
            )
        )
    }
    for item in queue:
        item["customer_label"] = labels.get(item["customer_id"], item["customer_id"])
        journey_id, version = asking.get(item["instance_id"], (None, None))
        try:
            item["definition"] = definition_of(session, journey_id, version) if journey_id is not None else None
        except ValidationFailed:
            item["definition"] = None
        item["version"] = version
    decided = session.execute(
        sa.select(m.ApprovalRequest, m.Journey.name)
        .join(m.Journey)
        .where(m.ApprovalRequest.status != "pending")
        .order_by(m.ApprovalRequest.decided_at.desc(), m.ApprovalRequest.key)
        .limit(recent)
    ).all()
    return queue, [
        {
            "key": r.key,
            "journey": name,
            "node": r.node,
            "customer_id": r.customer_id,
            "status": r.status,
            "template": r.template,
            "by": r.decided_by,
            "at": r.decided_at,
        }
        for r, name in decided
    ]


def instances_of(session: Session, customer_id: str, *, limit: int) -> list[dict[str, Any]]:
    """A customer's journey instances, newest first, with the path each took."""
    rows = session.execute(
        sa.select(m.Instance, m.Journey.name, m.Journey.title)
        .join(m.Journey, m.Journey.id == m.Instance.journey_id)
        .where(m.Instance.customer_id == customer_id)
        .order_by(m.Instance.entered_at.desc(), m.Instance.id)
        .limit(limit)
    )
    return [
        {
            "id": i.id,
            "journey": name,
            "title": title or name,
            "version": i.version,
            "key": i.key,
            "status": i.status,
            "node": i.node,
            "outcome": i.outcome,
            "control": i.control,
            "entered_at": i.entered_at,
            "ended_at": i.ended_at,
            "wake_at": i.wake_at,
            "waiting_for": i.waiting_for,
            "variants": (i.state or {}).get("variants") or {},
            "path": list((i.state or {}).get("path") or []),
        }
        for i, name, title in rows
    ]


def reasons_gone(session: Session, messages: list[Message]) -> dict[int, str]:
    """Why journey messages about to leave have lost their reason: their instance met its goal (the cart
    was bought, the order placed) after they were queued or deferred."""
    instances = {msg.instance_id for msg in messages if msg.instance_id}
    converted = {
        row.id
        for row in in_chunks(
            session,
            lambda ids: sa.select(m.Instance.id).where(m.Instance.id.in_(ids), m.Instance.outcome == "converted"),
            instances,
        )
    }
    return {msg.id: "the journey's goal was met" for msg in messages if msg.instance_id in converted}
