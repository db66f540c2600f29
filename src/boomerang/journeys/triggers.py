"""What starts a journey: events as they reach the log, and, on a schedule, dates and silences.

Event triggers match by name and properties. Entering or leaving a segment and lifecycle transitions
arrive as events too ("Segment Entered", "Lifecycle Stage Changed"). Dates (7 days before a birthday),
inactivity (no order for N days) and the predicted next purchase are segment rules evaluated for
the day: the customers they find enter, and re-entry rules keep them from entering twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import sqlalchemy as sa
from ibis import _

from boomerang.bootstrap import Workspace
from boomerang.journeys import models as m
from boomerang.journeys.definition import (
    DateTrigger,
    EventTrigger,
    InactivityTrigger,
    Journey,
    LifecycleTrigger,
    NextPurchaseTrigger,
    ReplenishmentTrigger,
    SegmentTrigger,
)
from boomerang.journeys.runtime import enter_many
from boomerang.journeys.service import definition_of
from boomerang.metrics import source
from boomerang.metrics.engine import events_table
from boomerang.metrics.lifecycle import EVENT as LIFECYCLE_EVENT
from boomerang.segments.membership import ENTERED, EXITED


def matching(journey: Journey, event: dict[str, Any]) -> tuple[bool, str | None]:
    """Whether the event starts the journey, and the instance's key (cart id, order id) if it has one."""
    trigger, props = journey.trigger, event.get("properties") or {}
    if isinstance(trigger, EventTrigger):
        if event["event"] != trigger.event or any(props.get(k) != v for k, v in trigger.where.items()):
            return False, None
        key = props.get(trigger.key) if trigger.key else None
        if trigger.key and key is None:
            return False, None  # keyed by a property the event does not carry
        return True, None if key is None else str(key)
    if isinstance(trigger, SegmentTrigger):
        wanted = ENTERED if trigger.on == "entered" else EXITED
        return event["event"] == wanted and props.get("segment") == trigger.segment, None
    if isinstance(trigger, LifecycleTrigger):
        return event["event"] == LIFECYCLE_EVENT and props.get("to") == trigger.lifecycle, None
    return False, None


def scheduled_rule(trigger, today: datetime) -> tuple[dict[str, Any], datetime] | None:
    """The segment rule (and the moment to evaluate it at) that finds who a scheduled trigger starts today."""
    if isinstance(trigger, DateTrigger):  # the date's anniversary is `-offset` days from today
        return {"anniversary": trigger.date, "within_next_days": 0}, today - timedelta(days=trigger.offset_days)
    if isinstance(trigger, InactivityTrigger):  # the last order was on the day N days ago (as of today's end)
        n = trigger.inactive_days
        return {
            "all": [
                {"event": "Order Completed", "measure": "last", "op": "more_than_days_ago", "value": n},
                {"not": {"event": "Order Completed", "measure": "last", "op": "more_than_days_ago", "value": n + 1}},
            ]
        }, today + timedelta(days=1)
    if isinstance(trigger, NextPurchaseTrigger):
        day = (today - timedelta(days=trigger.next_purchase_offset_days)).date().isoformat()
        return {"trait": "expected_next_purchase", "op": "between", "value": [day, day]}, today
    return None


def replenishment_due(events: ibis.Table, trigger: ReplenishmentTrigger, today: datetime) -> ibis.Table:
    """customer_id, sku: who reaches their moment for a product today (see ReplenishmentTrigger)."""
    lines = source.order_lines(events, today)
    days = lines.filter(lines.sku.notnull()).select("customer_id", "sku", day=lines.ts.truncate("D")).distinct()
    order = ibis.window(group_by=["customer_id", "sku"], order_by="day")
    gaps = days.mutate(gap=(days.day.epoch_seconds() - days.day.lag().over(order).epoch_seconds()) / 86400)
    cycles = (
        gaps.filter(gaps.gap.notnull() & (gaps.gap > 0))
        .group_by("sku")
        .aggregate(cycle=_.gap.median(), repeats=_.count())
        .filter(_.repeats >= trigger.min_repeats)
    )
    last = days.group_by(["customer_id", "sku"]).aggregate(last=_.day.max()).join(cycles, "sku")
    due = last.last.epoch_seconds() + (last.cycle.round() + trigger.replenish_offset_days) * 86400
    start = int(today.replace(tzinfo=UTC).timestamp())
    return last.filter((due >= start) & (due < start + 86400)).select("customer_id", "sku")


def scheduled_entries(ws: Workspace, trigger, today: datetime) -> list[tuple[str, str | None]] | None:
    """(customer, key) of everyone a scheduled trigger starts today; None for a trigger that is not scheduled."""
    from boomerang.segments import service as segments

    if isinstance(trigger, ReplenishmentTrigger):
        with events_table(ws) as events:
            found = replenishment_due(events, trigger, today).execute()
        return list(zip(found["customer_id"], found["sku"]))
    plan = scheduled_rule(trigger, today)
    if plan is None:
        return None
    rule, moment = plan
    found = segments.members(ws, {"name": "trigger", "rule": rule}, as_of=moment)
    return [(cid, None) for cid in found["customer_id"]]


def run_scheduled(ws: Workspace, now: datetime) -> dict[str, int]:
    """Start today's instances of every active journey with a scheduled trigger; returns entries per journey."""
    today = datetime.combine(now.date(), datetime.min.time())
    out: dict[str, int] = {}
    with ws.uow.session() as session:
        rows = list(session.scalars(sa.select(m.Journey).where(m.Journey.status == "active")))
        triggers = [(row.id, row.name, definition_of(session, row.id, row.version).trigger) for row in rows]
    for journey_id, name, trigger in triggers:
        entries = scheduled_entries(ws, trigger, today)
        if entries is None:
            continue
        with ws.uow.session() as session:
            entered = enter_many(session, session.get(m.Journey, journey_id), entries, now)
        out[name] = sum(1 for i in entered if i)
    return out
