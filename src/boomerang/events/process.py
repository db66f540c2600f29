"""The background step between the tracking API and the log: accepted events get their effects.

Takes the oldest unprocessed inbox rows in order, or, none waiting there, the oldest events in the intake
(events.intake) into the inbox, applies them (events.effects) and stamps them with their customer id and
`processed_at`, all in one transaction: a crash redoes the chunk, never half of it. On PostgreSQL several servers
share the work (FOR UPDATE SKIP LOCKED). An event that fails to apply is logged and kept without a customer, so one
bad row never holds up the rest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from boomerang.core.clock import Clock, naive_utc
from boomerang.db import UnitOfWork, executemany
from boomerang.events import effects
from boomerang.events.intake import Intake, keep
from boomerang.events.models import inbox
from boomerang.events.schemas import Event

log = logging.getLogger("boomerang.process")
STAMP = (
    sa.update(inbox)
    .where(inbox.c.id == sa.bindparam("row_id"))
    .values(customer_id=sa.bindparam("cid"), processed_at=sa.bindparam("at"))
)
COLUMNS = [
    inbox.c.id,
    inbox.c.message_id,
    inbox.c.type,
    inbox.c.event,
    inbox.c.user_id,
    inbox.c.anonymous_id,
    inbox.c.timestamp,
    inbox.c.properties,
    inbox.c.context,
    inbox.c.source,
    inbox.c.received_at,
]


@dataclass
class Processed:
    """An inbox row just processed: its event (customer resolved) and the stored text it came from."""

    row_id: int
    received_at: datetime
    properties: str
    context: str
    event: Event
    processed_at: datetime


def process(uow: UnitOfWork, clock: Clock, *, chunk_rows: int, intake: Intake | None = None) -> int:
    """Process until no accepted event waits (in the inbox, then in the intake); returns how many were processed."""
    done = 0
    while chunk := process_next(uow, clock, chunk_rows=chunk_rows, intake=intake):
        done += len(chunk)
    return done


def process_next(
    uow: UnitOfWork, clock: Clock, *, chunk_rows: int, intake: Intake | None = None, attempts: int = 3
) -> list[Processed]:
    """The next chunk of accepted events, applied and kept in one committed transaction (none: nothing waits).
    When another server's pipeline created the same identity at the same moment, again."""
    for attempt in range(attempts):
        try:
            with uow.session() as session:
                return process_chunk(session, now=naive_utc(clock.now()), limit=chunk_rows, intake=intake)
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    return []


def process_chunk(session: Session, *, now, limit: int, intake: Intake | None = None) -> list[Processed]:
    """The oldest unprocessed inbox rows, or, none waiting there, the oldest events in the intake taken into the
    inbox (before their effects, so that the events those write follow them there), applied and stamped."""
    query = sa.select(*COLUMNS).where(inbox.c.processed_at.is_(None)).order_by(inbox.c.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = session.execute(query).all()
    if not rows and intake is not None and keep(session, intake.take(session, limit)):
        rows = session.execute(query).all()
    if not rows:
        return []
    events = [
        Event.from_stored(
            message_id, kind, name, user, anonymous, at, orjson.loads(props), orjson.loads(context), source
        )
        for _, message_id, kind, name, user, anonymous, at, props, context, source, _ in rows
    ]
    try:
        with session.begin_nested():
            effects.apply(session, events, now=now)
    except IntegrityError:
        raise  # a race with another pipeline, not a bad event: the whole chunk runs again
    except Exception:  # noqa: BLE001 - find the event at fault, apply the others
        for event in events:
            event.customer_id = None
            try:
                with session.begin_nested():
                    effects.apply(session, [event], now=now)
            except IntegrityError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("event %s could not be applied; it goes to the log without a customer", event.message_id)
                event.customer_id = None
    executemany(session, STAMP, [{"row_id": r.id, "cid": e.customer_id, "at": now} for r, e in zip(rows, events)])
    return [Processed(r.id, r.received_at, r.properties, r.context, e, now) for r, e in zip(rows, events)]
