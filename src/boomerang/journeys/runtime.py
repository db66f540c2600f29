"""Running journeys: customers enter, events reach their instances, due timers fire, commands are carried out.

Every change of an instance happens in one transaction with what its step asked for (messages into
the outbox, conversions, approvals, loyalty entries, profile updates), each keyed by an idempotency
key: a worker killed at any moment leaves either the old state or the new one with all of its effects.
Due instances are claimed with FOR UPDATE SKIP LOCKED on PostgreSQL, so several workers share them.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from boomerang.bootstrap import Workspace
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.core.ids import new_id
from boomerang.customers.models import Customer
from boomerang.db import insert_ignore
from boomerang.journeys import models as m
from boomerang.journeys.definition import Journey
from boomerang.journeys.engine import (
    AskApproval, CallWebhook, Command, Converted, Decided, Evaluate, Evaluated, Happened, Input, LoyaltyAction,
    SendMessage, SetAttribute, Start, State, Wake, bucket, step,
)
from boomerang.journeys.service import definition_of

log = logging.getLogger("boomerang.journeys")


def enter(session, row: m.Journey, customer_id: str, now: datetime, *, key: str | None = None) -> str | None:
    """Start an instance of the journey's current version for the customer, unless re-entry rules,
    the concurrency limit or a running instance for the same key say no; returns its id."""
    journey = definition_of(session, row.id, row.version)
    mine = sa.select(m.Instance).where((m.Instance.journey_id == row.id) & (m.Instance.customer_id == customer_id))
    running = [i for i in session.scalars(mine.where(m.Instance.status != "done"))]
    if key is not None and any(i.key == key for i in running):
        return None
    if len(running) >= journey.max_concurrent:
        return None
    rule = journey.reentry
    if rule.mode != "always":
        last = session.scalar(sa.select(sa.func.max(m.Instance.entered_at)).where(
            (m.Instance.journey_id == row.id) & (m.Instance.customer_id == customer_id)))
        if last is not None and (rule.mode == "never" or now - last < timedelta(days=rule.days or 0)):
            return None
    timezone = session.scalar(sa.select(Customer.timezone).where(Customer.id == customer_id))
    control = bucket(f"{journey.name}:control:{customer_id}") < journey.control_share
    instance_id = new_id("jin")
    state, commands = step(journey, None, Start(instance_id, customer_id, key=key, control=control, timezone=timezone), now)
    instance = m.Instance(id=instance_id, journey_id=row.id, version=row.version, customer_id=customer_id, key=key,
                          control=control, entered_at=now, updated_at=now, status=state.status, node=state.node,
                          state={})
    session.add(instance)
    _store(instance, state, now)
    _carry_out(session, row, instance, commands, now)
    return instance_id


def advance(session, instance: m.Instance, event: Input, now: datetime) -> State:
    """Feed one input to a stored instance, store the new state and carry out its commands."""
    row = session.get(m.Journey, instance.journey_id)
    journey = definition_of(session, instance.journey_id, instance.version)
    state, commands = step(journey, State.from_data(instance.state), event, now)
    _store(instance, state, now)
    _carry_out(session, row, instance, commands, now)
    return state


def run_due(ws: Workspace, now: datetime, *, limit: int = 500) -> int:
    """Wake the instances whose timer is due (a batch, one transaction); returns how many."""
    with ws.uow.session() as session:
        query = (sa.select(m.Instance).where((m.Instance.status == "waiting") & (m.Instance.wake_at <= now))
                 .order_by(m.Instance.wake_at).limit(limit))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        due = list(session.scalars(query))
        for instance in due:
            advance(session, instance, Wake(), now)
        return len(due)


def on_events(ws: Workspace, events: list[dict[str, Any]], now: datetime) -> dict[str, int]:
    """Events that reached the log (customer_id, event, properties, timestamp): they start journeys
    whose trigger they match, and reach the running instances of their customers (goals, waits)."""
    from boomerang.journeys.triggers import matching

    counts = {"entered": 0, "advanced": 0}
    events = [e for e in events if e.get("customer_id")]
    if not events:
        return counts
    with ws.uow.session() as session:
        active = list(session.scalars(sa.select(m.Journey).where(m.Journey.status == "active")))
        definitions = {row.id: definition_of(session, row.id, row.version) for row in active}
        customers = sorted({e["customer_id"] for e in events})
        running = list(session.scalars(sa.select(m.Instance).where(
            m.Instance.customer_id.in_(customers) & (m.Instance.status != "done"))))
        for event in sorted(events, key=lambda e: e["timestamp"]):
            for instance in [i for i in running if i.customer_id == event["customer_id"] and i.status != "done"]:
                journey = definition_of(session, instance.journey_id, instance.version)
                happened = _happened(journey, event)
                if happened is not None:
                    advance(session, instance, happened, now)
                    counts["advanced"] += 1
            for row in active:
                found, key = matching(definitions[row.id], event)
                if found and enter(session, row, event["customer_id"], now, key=key):
                    counts["entered"] += 1
                    running = list(session.scalars(sa.select(m.Instance).where(
                        m.Instance.customer_id.in_(customers) & (m.Instance.status != "done"))))
    return counts


def _happened(journey: Journey, event: dict[str, Any]) -> Happened | None:
    """The event as an input of the instance, if its goal or a wait could care about it."""
    waits = {n.event for n in journey.nodes.values() if getattr(n, "type", "") == "wait_event"}
    goal = journey.goal.event if journey.goal else None
    if event["event"] not in waits and event["event"] != goal:
        return None
    props = event.get("properties") or {}
    key_name = getattr(journey.trigger, "key", None)
    key = props.get(key_name) if key_name else None
    revenue = props.get("revenue", props.get("total", 0)) or 0
    try:
        revenue = float(revenue)
    except (TypeError, ValueError):
        revenue = 0.0
    return Happened(event["event"], key=None if key is None else str(key), revenue=revenue)


def decide(ws: Workspace, approval_key: str, *, approved: bool, by: str, template: str | None = None,
           now: datetime) -> dict[str, Any]:
    """A person's answer to an approval request; the instance goes on at once."""

    with ws.uow.session() as session:
        request = session.get(m.ApprovalRequest, approval_key)
        if request is None:
            raise NotFound(f"no approval request {approval_key!r}", field="approval")
        if request.status != "pending":
            raise ValidationFailed([{"field": "approval", "reason": f"already {request.status} by {request.decided_by}"}])
        request.status = "approved" if approved else "rejected"
        request.decided_by, request.decided_at, request.template = by, now, template
        instance = session.get(m.Instance, request.instance_id)
        state = advance(session, instance, Decided(approved, template=template, by=by), now)
        return {"approval": approval_key, "status": request.status, "instance": instance.id, "node": state.node,
                "instance_status": state.status}


def _store(instance: m.Instance, state: State, now: datetime) -> None:
    instance.state = state.to_data()
    instance.status, instance.node, instance.wake_at = state.status, state.node, state.wake_at
    instance.waiting_for, instance.outcome, instance.updated_at = state.waiting_for, state.outcome, now
    if state.status == "done" and instance.ended_at is None:
        instance.ended_at = now


def _carry_out(session, row: m.Journey, instance: m.Instance, commands: list[Command], now: datetime) -> None:
    """Write what the step asked for. A branch leaves the instance `evaluating`: resolve_branches answers
    it outside this transaction (it reads the event log), so no store lock is held during the query."""
    for command in commands:
        if not isinstance(command, Evaluate):
            _write(session, row, instance, command, now)


def _write(session, row: m.Journey, instance: m.Instance, command: Command, now: datetime) -> None:
    source = f"journey:{row.name}"
    if isinstance(command, SendMessage):
        session.execute(insert_ignore(session, m.Message.__table__).values(
            key=command.key, source=source, instance_id=instance.id, node=command.node,
            customer_id=instance.customer_id, channels=list(command.channels), channel=None,
            template=command.template, category=command.category, when_capped=command.when_capped,
            status="held_out" if command.held_out else "queued",
            reason="journey control group" if command.held_out else None,
            send_after=now, attempts=0, created_at=now, sent_at=None))
    elif isinstance(command, Converted):
        session.execute(insert_ignore(session, m.Conversion.__table__).values(
            instance_id=instance.id, journey_id=row.id, customer_id=instance.customer_id, node=command.node,
            message_key=command.last_message, control=instance.control, revenue=command.revenue, at=now))
    elif isinstance(command, AskApproval):
        session.execute(insert_ignore(session, m.ApprovalRequest.__table__).values(
            key=command.key, instance_id=instance.id, journey_id=row.id, node=command.node,
            customer_id=instance.customer_id, note=command.note, status="pending", created_at=now))
    elif isinstance(command, LoyaltyAction) and not command.held_out:
        promo = command.action == "promo_code"
        session.execute(insert_ignore(session, m.LoyaltyEntry.__table__).values(
            key=command.key, customer_id=instance.customer_id, kind="promo_code" if promo else "points",
            points=command.points, code=f"BMR-{secrets.token_hex(4).upper()}" if promo else None,
            discount_percent=command.discount_percent, source=source, at=now,
            expires_at=now + timedelta(days=command.valid_days) if promo else None))
    elif isinstance(command, SetAttribute):
        customer = session.get(Customer, instance.customer_id)
        if customer is not None:
            customer.attributes = {**(customer.attributes or {}), command.attribute: command.value}
            customer.updated_at = now
    elif isinstance(command, CallWebhook):
        session.execute(insert_ignore(session, m.Message.__table__).values(
            key=command.key, source=source, instance_id=instance.id, node=command.node,
            customer_id=instance.customer_id, channels=["webhook"], channel=None, template=command.url,
            category="transactional", when_capped="defer", status="held_out" if command.held_out else "queued",
            reason="journey control group" if command.held_out else None, send_after=now, attempts=0,
            created_at=now, sent_at=None))


def resolve_branches(ws: Workspace, now: datetime, *, limit: int = 500) -> int:
    """Answer the branches instances wait at: one segment query per journey version and node, for all
    the customers there, then each instance goes on (if nothing else moved it meanwhile)."""
    from boomerang.segments import profiles
    from boomerang.segments import service as segments

    with ws.uow.session() as session:
        pending = session.execute(sa.select(m.Instance.id, m.Instance.customer_id, m.Instance.journey_id,
                                            m.Instance.version, m.Instance.node)
                                  .where(m.Instance.status == "evaluating").limit(limit)).all()
        groups: dict[tuple[int, int, str], list[tuple[str, str]]] = {}
        for instance_id, customer_id, journey_id, version, node in pending:
            groups.setdefault((journey_id, version, node), []).append((instance_id, customer_id))
        rules = {g: definition_of(session, g[0], g[1]).nodes[g[2]].rule for g in groups}
    if not pending:
        return 0
    profiles.sync(ws, sorted({c for _, c, *_ in pending}))
    answers: dict[str, bool] = {}
    for group, members in groups.items():
        customers = sorted({c for _, c in members})
        found = set(segments.members(ws, {"name": "branch", "rule": rules[group]}, only=customers, sync=False)["customer_id"])
        answers.update({i: c in found for i, c in members})
    with ws.uow.session() as session:
        lock = session.get_bind().dialect.name == "postgresql"  # another worker may answer the same branch
        for (_, _, node), members in groups.items():
            for instance_id, _ in members:
                instance = session.get(m.Instance, instance_id, with_for_update=lock)
                if instance.status == "evaluating" and instance.node == node:
                    advance(session, instance, Evaluated(answers[instance_id]), now)
    return len(pending)
