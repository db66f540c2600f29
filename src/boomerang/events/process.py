"""The background step between the tracking API and the log: accepted events get their effects.

Takes the oldest unprocessed inbox rows in order, applies them (events.effects) and stamps them
with their customer id and `processed_at`, all in one transaction: a crash redoes the batch, never
half of it. On PostgreSQL several servers share the work (FOR UPDATE SKIP LOCKED). An event that
fails to apply is logged and stamped without a customer, so one bad row never holds up the rest.
"""

from __future__ import annotations

import logging

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from boomerang.core.clock import Clock, naive_utc
from boomerang.db import UnitOfWork, executemany
from boomerang.events import effects
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
]


def process(uow: UnitOfWork, clock: Clock, *, chunk_rows: int) -> int:
    """Process until no accepted event waits; returns how many were processed."""
    done = 0
    while True:
        count = _with_retry(uow, clock, chunk_rows)
        if not count:
            return done
        done += count


def _with_retry(uow: UnitOfWork, clock: Clock, chunk_rows: int, attempts: int = 3) -> int:
    """One chunk; when another server's pipeline created the same identity at the same moment, again."""
    for attempt in range(attempts):
        try:
            with uow.session() as session:
                return process_chunk(session, now=naive_utc(clock.now()), limit=chunk_rows)
        except IntegrityError:
            if attempt == attempts - 1:
                raise
    return 0


def process_chunk(session: Session, *, now, limit: int) -> int:
    query = sa.select(*COLUMNS).where(inbox.c.processed_at.is_(None)).order_by(inbox.c.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = session.execute(query).all()
    if not rows:
        return 0
    events = [
        Event.from_stored(
            r.message_id,
            r.type,
            r.event,
            r.user_id,
            r.anonymous_id,
            r.timestamp,
            orjson.loads(r.properties),
            orjson.loads(r.context),
            r.source,
        )
        for r in rows
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
    return len(rows)
