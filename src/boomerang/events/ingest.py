"""Ingestion: checked messages land in the durable inbox, processed at once (`ingest`, Boomerang's own calls) or
in the background (`accept`: the tracking API's, through events.intake, which on SQLite keeps them in a file of its
own until the pipeline takes them).

All of a batch is checked before anything is written; the caller commits once, so a batch is
stored whole or not at all, and it is durable when the commit returns. A message id seen within the
deduplication window (events.dedup), by any path, is counted as a duplicate and stored no more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy.orm import Session

from boomerang.core.errors import ValidationFailed
from boomerang.core.ids import new_id
from boomerang.core.vocab import VERIFIED
from boomerang.customers import profiles
from boomerang.db import executemany, insert_ignore
from boomerang.events import dedup, ecommerce, effects, schemas
from boomerang.events.models import inbox
from boomerang.events.schemas import Event

# ON CONFLICT DO NOTHING: an id already in the inbox (one of Boomerang's own events, an inbox row older than
# the table of seen ids) is stored once. One statement per dialect, each compiled once.
INBOX_INSERTS = {name: insert_ignore(name, inbox) for name in ("sqlite", "postgresql")}


@dataclass
class IngestResult:
    accepted: int
    duplicates: int


def check(events: list[Event], prefix: str = "") -> None:
    """Every problem of every event's payload, raised at once."""
    errors = [e for index, event in enumerate(events) for e in problems(event, f"{prefix}[{index}]" if prefix else "")]
    if errors:
        raise ValidationFailed(errors)


def problems(event: Event, where: str = "") -> list[dict]:
    """What is wrong with one event's payload (its fields named from `where`), before anything is written."""
    errors = ecommerce.check(event, where)
    if event.type == "identify":
        try:
            profiles.profile_changes(event.traits, prefix=f"{where}.traits".lstrip("."))
            profiles.consent_changes(event.traits, prefix=f"{where}.traits".lstrip("."))
        except ValidationFailed as exc:
            errors += exc.errors
    return errors


def accept(session: Session, events: list[Event], *, now: datetime, source: str) -> IngestResult:
    """Store checked events as they came, to be processed in the background: all the tracking API waits for.
    They come from `source`, or from `verified` where the tracking API checked an event's signed user id."""
    fresh = dedup.fresh(session, events, now=now)
    rows = [accepted_row(e, now, source) | {"processed_at": None} for e in fresh]
    executemany(session, inbox_insert(session), rows)
    return IngestResult(accepted=len(fresh), duplicates=len(events) - len(fresh))


def ingest(session: Session, events: list[Event], *, now: datetime, source: str) -> IngestResult:
    """Apply and store checked events at once, so that their effects are visible when this returns."""
    fresh = dedup.fresh(session, events, now=now)
    for event in fresh:
        event.source = source
    effects.apply(session, fresh, now=now)
    executemany(session, inbox_insert(session), [accepted_row(e, now, source) | {"processed_at": now} for e in fresh])
    return IngestResult(accepted=len(fresh), duplicates=len(events) - len(fresh))


def inbox_insert(session: Session):
    return INBOX_INSERTS[session.get_bind().dialect.name]


def accepted_row(event: Event, now: datetime, source: str) -> dict:
    """An event as the inbox (and the intake) keep it, but its processing time: from `source`, or from `verified`
    where the tracking API checked the event's signed user id."""
    return {
        "message_id": event.message_id,
        "type": event.type,
        "event": event.event,
        "customer_id": event.customer_id,
        "anonymous_id": event.anonymous_id,
        "user_id": event.user_id,
        "timestamp": event.timestamp,
        "received_at": now,
        "source": VERIFIED if event.source == VERIFIED else source,
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
