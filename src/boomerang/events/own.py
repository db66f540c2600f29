"""Events Boomerang makes itself (a message delivered, a segment entered, a loyalty tier changed): rows for the
inbox, stored as processed, so that the next flush moves them into the log where segments and journeys see them.
Below both ingestion and the effects of events, so either may write them."""

from __future__ import annotations

from datetime import datetime

import orjson
from sqlalchemy.orm import Session

from boomerang.db import executemany, insert_ignore
from boomerang.events.models import inbox


def internal(message_id: str, event: str, customer_id: str, *, at: datetime, source: str, properties: dict) -> dict:
    """An event Boomerang makes itself (a message delivered, a segment entered), as `log_later` takes it."""
    return {
        "message_id": message_id,
        "type": "track",
        "event": event,
        "customer_id": customer_id,
        "anonymous_id": None,
        "user_id": None,
        "timestamp": at,
        "received_at": at,
        "source": source,
        "properties": orjson.dumps(properties, default=str).decode(),
        "context": "{}",
        "processed_at": at,
    }


def log_later(session: Session, events: list[dict]) -> None:
    """Store Boomerang's own events (see `internal`) as processed: the next flush moves them into the log,
    where segments and journeys see them. A message id already stored is kept once."""
    executemany(session, insert_ignore(session, inbox), events)
