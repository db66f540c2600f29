"""Ingestion: checked messages land in the durable inbox, processed at once (`ingest`, Boomerang's own calls) or
in the background (the tracking API's, through events.intake, which on SQLite keeps them in a file of its own until
the pipeline takes them).

All of a batch is checked before anything is written; the caller commits once, so a batch is
stored whole or not at all, and it is durable when the commit returns. A message id seen within the
deduplication window (events.dedup), by any path, is counted as a duplicate and stored no more.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from boomerang.core.errors import ValidationFailed
from boomerang.core.ids import new_id
from boomerang.customers import profiles
from boomerang.db import executemany
from boomerang.events import dedup, ecommerce, effects, schemas
from boomerang.events.intake import IngestResult, accepted_row, inbox_insert
from boomerang.events.schemas import Event


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


def ingest(session: Session, events: list[Event], *, now: datetime, source: str) -> IngestResult:
    """Apply and store checked events at once, so that their effects are visible when this returns."""
    fresh = dedup.fresh(session, events, now=now)
    for event in fresh:
        event.source = source
    effects.apply(session, fresh, now=now)
    executemany(session, inbox_insert(session), [accepted_row(e, now, source) | {"processed_at": now} for e in fresh])
    return IngestResult(accepted=len(fresh), duplicates=len(events) - len(fresh))


def record(session: Session, messages: list[dict], *, now: datetime, limits, source: str) -> list[Event]:
    """Validate and ingest Segment-shaped dicts made by Boomerang itself (REST calls, importers)."""
    parsed = [schemas.parse_one(m.get("type", "track"), m) for m in messages]
    events = schemas.normalise(parsed, received_at=now, limits=limits, new_id=lambda: new_id("msg"))
    check(events)
    ingest(session, events, now=now, source=source)
    return events
