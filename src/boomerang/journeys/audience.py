"""Who a journey would reach, for the dashboard's activation check, and the properties events carry, for its
pickers: estimates read from the segment sizes and the event log (through its Reader), never exact."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from boomerang.events.log import EventLog
from boomerang.journeys.definition import (
    EventTrigger,
    InactivityTrigger,
    Journey,
    LifecycleTrigger,
    ManualTrigger,
    SegmentTrigger,
)
from boomerang.segments import service as segments

RECENT = timedelta(days=7)  # an event trigger's estimate: customers who did the event this long back
SAMPLE = 500  # latest events of a name read for their property names


def entry_estimate(session: Session, log: EventLog, journey: Journey, *, now: datetime) -> dict[str, Any]:
    """{count, text}: about how many customers would enter soon after activation (count None: not
    estimated for this trigger) and how the number was found."""
    trigger = journey.trigger
    if isinstance(trigger, ManualTrigger):
        return {"count": 0, "text": "nobody by itself: customers enter when entered by hand or through the API"}
    if isinstance(trigger, SegmentTrigger):
        found = segments.find(session, trigger.segment)
        size = found.size if found is not None else None
        if trigger.on == "exited":
            return {
                "count": None,
                "text": f"customers as they leave the segment {trigger.segment} (now {size or 0:,} in it)",
            }
        return {
            "count": size,
            "text": f"the segment {trigger.segment} has {size or 0:,} members now; each enters as they join it",
        }
    if isinstance(trigger, EventTrigger):
        count = recent_customers(log, trigger.event, since=now - RECENT)
        where = " (its property conditions not counted)" if trigger.where else ""
        return {"count": count, "text": f"{count:,} customers did {trigger.event} in the last 7 days{where}"}
    if isinstance(trigger, InactivityTrigger):
        return {"count": None, "text": f"customers as they reach {trigger.inactive_days} days without an order"}
    if isinstance(trigger, LifecycleTrigger):
        return {"count": None, "text": f"customers as their lifecycle stage becomes {trigger.lifecycle}"}
    return {"count": None, "text": "customers as their date comes (not estimated)"}


def recent_customers(log: EventLog, event: str, *, since: datetime) -> int:
    """How many customers did `event` since then."""
    with log.reader() as r:
        e = r.events
        done = e.filter((e.event == event) & (e.timestamp >= since) & e.customer_id.notnull())
        return int(done.customer_id.nunique().execute())


def event_properties(log: EventLog, event: str, *, limit: int = 50) -> list[str]:
    """The property names the latest events of this name carry, the most common first."""
    with log.reader() as r:
        e = r.events
        latest = (
            e.filter(e.event == event)
            .order_by(e.timestamp.desc())
            .limit(SAMPLE)
            .select(properties=e.properties.cast(str))
            .execute()
        )
    seen: Counter[str] = Counter()
    for text in latest["properties"]:
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            continue
        if isinstance(data, dict):
            seen.update(k for k in data if isinstance(k, str))
    return [name for name, _ in seen.most_common(limit)]
