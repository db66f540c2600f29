"""Deduplication by message id that outlasts the inbox: an id accepted within the window is a duplicate.

The inbox forgets an event once it has moved into the log (about a second); a client that retries
later, having missed the answer, must not start a journey or send an email twice. So every message id
accepted is kept with its time (`event_seen_ids`), written in the same transaction as the event itself
(a crash records both or neither), and forgotten after `ingest.dedup_window_hours` (24, Segment's
documented look-back) by the scheduled round, a chunk per short transaction.

The scope is the workspace: one shop, whatever its write key, source (browser, server) or path (the
tracking API, REST calls, `import events`; the bulk importers write the log directly, which keeps one
event per id). Segment's deduplication is not per source or per workspace either, and the log keys
events by message id alone, so two events sharing one could not both be kept anyway.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.db import UnitOfWork, insert_new
from boomerang.events.models import seen
from boomerang.events.schemas import Event

INTAKE = "boomerang_intake"  # the workspace's intake, lent to its sessions (events.intake.session_info)


def fresh(session: Session, events: list[Event], *, now: datetime) -> list[Event]:
    """The events whose message id was neither seen within the window nor earlier in the batch, nor is waiting in
    the workspace's intake, in their order; their ids are recorded as seen at `now` in the caller's transaction."""
    first = first_of_each(events)
    if first and (lent := session.info.get(INTAKE)):
        for message_id in lent().waiting_ids(list(first)):
            del first[message_id]
    if not first:
        return []
    new = _remember(session, first, now=now)
    return [event for message_id, event in first.items() if message_id in new]


def forget(uow: UnitOfWork, *, before: datetime, chunk_rows: int) -> int:
    """Forget the ids seen before `before`, oldest first, `chunk_rows` per transaction (short write
    locks); returns how many were forgotten."""
    forgotten = 0
    while True:
        with uow.session() as session:
            oldest = sa.select(seen.c.message_id).where(seen.c.seen_at < before).order_by(seen.c.seen_at)
            count = session.execute(sa.delete(seen).where(seen.c.message_id.in_(oldest.limit(chunk_rows)))).rowcount
        forgotten += count
        if count < chunk_rows:
            return forgotten


def first_of_each(events: list[Event]) -> dict[str, Event]:
    """The first event of each message id, in the batch's order."""
    first: dict[str, Event] = {}
    for event in events:
        first.setdefault(event.message_id, event)
    return first


def _remember(session: Session, message_ids, *, now: datetime) -> set[str]:
    """Record message ids as seen at `now`; returns those that were not seen yet, checked and recorded in one
    statement (ON CONFLICT DO NOTHING RETURNING): on PostgreSQL a concurrent request carrying the same id waits
    for this one's commit, then finds it. Sorted, so that two requests sharing ids take their locks in the
    same order and never deadlock."""
    rows = [{"message_id": message_id, "seen_at": now} for message_id in sorted(message_ids)]
    return insert_new(session, seen, "message_id", rows)
