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

from boomerang.catalog.service import preload as preload_products
from boomerang.core.errors import ValidationFailed
from boomerang.customers import profiles
from boomerang.customers.identity import Resolver
from boomerang.customers.models import Customer
from boomerang.events import ecommerce
from boomerang.events.models import inbox
from boomerang.core.ids import new_id
from boomerang.events import schemas
from boomerang.events.schemas import Event

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
    products = preload_products(session, set().union(*(ecommerce.skus(e) for e in fresh)) if fresh else set())
    with session.no_autoflush:
        for event in fresh:
            customer = _resolve(resolver, event)
            event.customer_id = customer.id
            _seen(customer, event.timestamp)
            if event.user_id:
                resolver.claim("device", _device(event), customer)
            if event.type == "identify":
                _identify(session, resolver, customer, event, now=now, source=source)
            ecommerce.apply(session, event, now=now, source=source, products=products)
    if fresh:
        session.flush()
        session.execute(sa.insert(inbox), [_inbox_row(e, now, source) for e in fresh])
    return IngestResult(accepted=len(fresh), duplicates=len(events) - len(fresh))


def _resolve(resolver: Resolver, event: Event) -> Customer:
    customer = resolver.resolve(event.user_id, event.anonymous_id)
    if event.type == "alias":
        previous = resolver.find("user", event.previous_id) or resolver.find("anonymous", event.previous_id)
        if previous is None:
            resolver.link("anonymous", event.previous_id, customer)
        elif previous.id != customer.id:
            resolver.merge(previous, customer, reason="alias")
    return customer


def _device(event: Event) -> str | None:
    """The device id a mobile SDK sends in context.device.id."""
    device = event.context.get("device")
    value = device.get("id") if isinstance(device, dict) else None
    return str(value)[:320] if value not in (None, "") else None


def _seen(customer: Customer, at: datetime) -> None:
    if customer.first_seen_at is None or at < customer.first_seen_at:
        customer.first_seen_at = at
    if customer.last_seen_at is None or at > customer.last_seen_at:
        customer.last_seen_at = at


def _identify(session: Session, resolver: Resolver, customer: Customer, event: Event, *, now: datetime, source: str) -> None:
    columns, attributes = profiles.profile_changes(event.traits)
    for key in ("timezone", "locale"):
        if key not in columns and isinstance(event.context.get(key), str):
            columns[key] = event.context[key]
    profiles.apply_profile(customer, columns, attributes, now=now)
    for kind, column in CLAIMED_IDENTITIES:
        resolver.claim(kind, columns.get(column), customer)
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
