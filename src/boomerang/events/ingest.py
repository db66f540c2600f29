"""Ingestion: accepted messages resolve to profiles, update products and orders, and land in the inbox.

All of a batch is checked before anything is written; the caller commits once, so a batch is
stored whole or not at all, and it is durable when the commit returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.catalog.service import ProductLearner
from boomerang.core.errors import ValidationFailed
from boomerang.db import executemany
from boomerang.customers import bulk as customers_bulk, profiles
from boomerang.customers.identity import Resolver
from boomerang.customers.models import Customer
from boomerang.events import ecommerce
from boomerang.events.models import inbox
from boomerang.core.ids import new_id
from boomerang.events import schemas
from boomerang.events.schemas import Event

INBOX_INSERT = inbox.insert()
CLAIMED_IDENTITIES = (("email", "email"), ("phone", "phone"), ("telegram", "telegram_chat_id"))


@dataclass
class IngestResult:
    accepted: int
    duplicates: int


def check(events: list[Event], prefix: str = "") -> None:
    """Every problem of every event's payload, raised at once."""
    errors = []
    for index, event in enumerate(events):
        where = f"{prefix}[{index}]" if prefix else ""
        errors += ecommerce.check(event, where)
        if event.type == "identify":
            try:
                profiles.profile_changes(event.traits, prefix=f"{where}.traits".lstrip("."))
                profiles.consent_changes(event.traits, prefix=f"{where}.traits".lstrip("."))
            except ValidationFailed as exc:
                errors += exc.errors
    if errors:
        raise ValidationFailed(errors)


def ingest(session: Session, events: list[Event], *, now: datetime, source: str) -> IngestResult:
    """Apply and store checked events; a message id already waiting in the inbox is skipped."""
    ids = [e.message_id for e in events]
    seen: set[str] = set()
    for start in range(0, len(ids), 5000):
        seen.update(session.scalars(sa.select(inbox.c.message_id).where(inbox.c.message_id.in_(ids[start : start + 5000]))))
    fresh = []
    for event in events:
        if event.message_id not in seen:
            seen.add(event.message_id)
            fresh.append(event)
    resolver = Resolver(session, now=now)
    resolver.preload(
        {("user", e.user_id) for e in fresh if e.user_id}
        | {("anonymous", e.anonymous_id) for e in fresh if e.anonymous_id}
        | {("user", e.previous_id) for e in fresh if e.previous_id}
        | {("anonymous", e.previous_id) for e in fresh if e.previous_id}
        | {("device", _device(e)) for e in fresh if e.user_id and _device(e)}
    )
    products = ProductLearner(session, set().union(*(ecommerce.skus(e) for e in fresh)) if fresh else set(), now=now)
    seen: dict[str, tuple[datetime, datetime]] = {}
    with session.no_autoflush:
        for event in fresh:
            cid = event.customer_id = _resolve(resolver, event)
            first, last = seen.get(cid, (event.timestamp, event.timestamp))
            seen[cid] = (min(first, event.timestamp), max(last, event.timestamp))
            if event.user_id:
                resolver.claim("device", _device(event), cid)
            if event.type == "identify":
                _identify(session, resolver, resolver.customer(cid), event, now=now, source=source)
            ecommerce.apply(session, event, now=now, source=source, products=products)
    if fresh:
        session.flush()
        products.write()
        customers_bulk.touch_seen(session, _follow(seen, resolver.merged))
        executemany(session, INBOX_INSERT, [_inbox_row(e, now, source) for e in fresh])
    return IngestResult(accepted=len(fresh), duplicates=len(events) - len(fresh))


def _resolve(resolver: Resolver, event: Event) -> str:
    cid = resolver.resolve(event.user_id, event.anonymous_id)
    if event.type == "alias":
        previous = resolver.find_id("user", event.previous_id) or resolver.find_id("anonymous", event.previous_id)
        if previous is None:
            resolver.link("anonymous", event.previous_id, cid)
        elif previous != cid:
            resolver.merge(resolver.customer(previous), resolver.customer(cid), reason="alias")
    return cid


def _follow(seen: dict[str, tuple[datetime, datetime]], merged: dict[str, str]) -> dict[str, tuple[datetime, datetime]]:
    """The time ranges of profiles merged away during the batch, moved to where they went."""
    out: dict[str, tuple[datetime, datetime]] = {}
    for cid, (first, last) in seen.items():
        cid = merged.get(cid, cid)
        before = out.get(cid, (first, last))
        out[cid] = (min(before[0], first), max(before[1], last))
    return out


def _device(event: Event) -> str | None:
    """The device id a mobile SDK sends in context.device.id."""
    device = event.context.get("device")
    value = device.get("id") if isinstance(device, dict) else None
    return str(value)[:320] if value not in (None, "") else None


def _identify(session: Session, resolver: Resolver, customer: Customer, event: Event, *, now: datetime, source: str) -> None:
    columns, attributes = profiles.profile_changes(event.traits)
    for key in ("timezone", "locale"):
        if key not in columns and isinstance(event.context.get(key), str):
            columns[key] = event.context[key]
    profiles.apply_profile(customer, columns, attributes, now=now)
    for kind, column in CLAIMED_IDENTITIES:
        resolver.claim(kind, columns.get(column), customer.id)
    for channel, granted in profiles.consent_changes(event.traits).items():
        profiles.set_consent(session, customer, channel, granted, source=source, at=event.timestamp)


def _inbox_row(event: Event, now: datetime, source: str) -> dict:
    return {
        "message_id": event.message_id, "type": event.type, "event": event.event,
        "customer_id": event.customer_id, "anonymous_id": event.anonymous_id, "user_id": event.user_id,
        "timestamp": event.timestamp, "received_at": now, "source": source,
        "properties": orjson.dumps(event.properties, default=str).decode(),
        "context": orjson.dumps(event.context, default=str).decode(),
    }


def record(session: Session, messages: list[dict], *, now: datetime, limits, source: str) -> list[Event]:
    """Validate and ingest Segment-shaped dicts made by Boomerang itself (REST calls, importers)."""
    parsed = [schemas.parse_one(m.get("type", "track"), m) for m in messages]
    events = schemas.normalise(parsed, received_at=now, limits=limits, new_id=lambda: new_id("msg"))
    check(events)
    ingest(session, events, now=now, source=source)
    return events
