"""What starts a journey and what reaches a running one: events as they reach the log, and, on a schedule,
dates and silences. Pure: the runtime and the simulator both ask here.

Event triggers match by name and properties. Entering or leaving a segment and lifecycle transitions
arrive as events too ("Segment Entered", "Lifecycle Stage Changed"). Dates (7 days before a birthday),
inactivity (no order for N days) and the predicted next purchase are segment rules evaluated for
the day: the customers they find enter, and re-entry rules keep them from entering twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
from ibis import _

from boomerang.events.schemas import Logged
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
from boomerang.journeys.engine import Happened
from boomerang.metrics import source
from boomerang.metrics.lifecycle import EVENT as LIFECYCLE_EVENT
from boomerang.segments.definition import ENTERED, EXITED


def matching(journey: Journey, event: Logged) -> tuple[bool, str | None]:
    """Whether the event starts the journey, and the instance's key (cart id, order id) if it has one."""
    trigger, props = journey.trigger, event.properties
    if isinstance(trigger, EventTrigger):
        if event.event != trigger.event or any(props.get(k) != v for k, v in trigger.where.items()):
            return False, None
        key = props.get(trigger.key) if trigger.key else None
        if trigger.key and key is None:
            return False, None  # keyed by a property the event does not carry
        return True, None if key is None else str(key)
    if isinstance(trigger, SegmentTrigger):
        wanted = ENTERED if trigger.on == "entered" else EXITED
        return event.event == wanted and props.get("segment") == trigger.segment, None
    if isinstance(trigger, LifecycleTrigger):
        return event.event == LIFECYCLE_EVENT and props.get("to") == trigger.lifecycle, None
    return False, None


def started_by(journey: Journey, event: Logged) -> dict[str, Any]:
    """What an instance keeps of the event that started it: its messages' templates read it (`event`), and
    the key's name says what the instance is about (a cart, an order, a product)."""
    return {"event": event.event, "key": getattr(journey.trigger, "key", None), "properties": event.properties}


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


def happened(journey: Journey, event: Logged, *, key: str | None = None) -> Happened | None:
    """The event as an input of an instance, if its goal or one of its waits could care about it; `key`:
    the instance's own (for the events of a message it sent)."""
    waits = {n.event for n in journey.nodes.values() if getattr(n, "type", "") == "wait_event"}
    goal = journey.goal.event if journey.goal else None
    if event.event not in waits and event.event != goal:
        return None
    props = event.properties
    key_name = getattr(journey.trigger, "key", None)
    key = key if key is not None else props.get(key_name) if key_name else None
    try:
        revenue = float(props.get("revenue", props.get("total", 0)) or 0)
    except (TypeError, ValueError):
        revenue = 0.0
    return Happened(event.event, key=None if key is None else str(key), revenue=revenue)
