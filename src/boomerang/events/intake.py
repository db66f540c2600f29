"""Where the tracking API keeps the events it accepts until the pipeline takes them.

On SQLite, a database file of its own beside the operational store (`boomerang.sqlite-intake`): the API's writes
take that file's lock, never the operational store's, so a batch is answered while the pipeline processes the
previous ones, and the pipeline never waits for the API. Both then work at once, one core each.

An event is durable when `put` returns (the intake's commit, as the inbox's was). The pipeline `take`s a chunk at a
time into a transaction of the operational store (events.process): the chunk's message ids are recorded as seen
(events.dedup, at the time they were received), the events whose id was new there are processed and kept in the
inbox until they are in the log, and once that transaction commits the chunk leaves the intake. A crash between
the two finds the chunk again with its ids seen: nothing is applied twice. Several processes may take at once for
the same reason; and as rows are numbered without reuse (AUTOINCREMENT), a chunk's delete (every row up to its
last) never reaches a row it did not read.

Duplicates are answered at `put` from the rows still in the intake and the ids the store has seen, read from a
snapshot. An id taken between those two reads is answered as accepted and then skipped by the take: kept once, as
every other id.

Whatever reads the pending events of the operational store (a privacy export or erasure, the events debugger)
`take_into` its own session first: the intake's rows go into the inbox, unprocessed, in the caller's transaction.

On PostgreSQL the inbox is the intake (`Inbox`): row locks let the API write beside the pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.vocab import VERIFIED
from boomerang.db import UnitOfWork, after_commit, among, create_sql_engine, executemany, insert_ignore, insert_new
from boomerang.events import dedup
from boomerang.events.models import inbox, seen
from boomerang.events.schemas import Event

log = logging.getLogger("boomerang.intake")

# ON CONFLICT DO NOTHING: an id already in the inbox (one of Boomerang's own events, an inbox row older than
# the table of seen ids) is stored once. One statement per dialect, each compiled once.
INBOX_INSERTS = {name: insert_ignore(name, inbox) for name in ("sqlite", "postgresql")}


@dataclass
class IngestResult:
    accepted: int
    duplicates: int


_metadata = sa.MetaData()
intake = sa.Table(
    "event_intake",
    _metadata,
    *(column._copy() for column in inbox.columns if column.name != "processed_at"),
    sqlite_autoincrement=True,  # never reuse a number: a take forgets every row up to the last it read
)
COLUMNS = [c.name for c in intake.columns if c.name != "id"]
# Times move as the text they were stored as: both files are SQLite, and parsing them would cost more than the rest.
READ = sa.select(
    intake.c.id,
    *(
        sa.type_coerce(intake.c[name], sa.String()) if name in ("timestamp", "received_at") else intake.c[name]
        for name in COLUMNS
    ),
).order_by(intake.c.id)


class Intake(Protocol):
    """Where accepted events wait for the pipeline (`Inbox` or `FileIntake`)."""

    def put(self, events: list[Event], *, now: datetime, source: str) -> IngestResult:
        """Store checked events, deduplicated, durably, to be processed in the background."""

    def take(self, session: Session, limit: int | None = None) -> list[dict[str, Any]]:
        """Up to `limit` waiting events, oldest first, as the inbox's rows (but their processing), for the caller's
        transaction to keep: those whose message id the store had not seen (every id is seen now). They leave the
        intake when that transaction commits."""

    def waiting(self) -> int:
        """How many accepted events wait here."""

    def waiting_ids(self, message_ids: list[str]) -> set[str]:
        """Those of the message ids that wait here."""


class Inbox:
    """The intake of a store whose writers do not wait for each other (PostgreSQL): the inbox itself."""

    def __init__(self, store: UnitOfWork) -> None:
        self.store = store

    def put(self, events: list[Event], *, now: datetime, source: str) -> IngestResult:
        with self.store.session() as session:
            return accept(session, events, now=now, source=source)

    def take(self, session: Session, limit: int | None = None) -> list[dict[str, Any]]:
        return []

    def waiting(self) -> int:
        return 0

    def waiting_ids(self, message_ids: list[str]) -> set[str]:
        return set()


class FileIntake:
    """The intake as an SQLite file of its own beside the operational store's (`store`)."""

    def __init__(self, url: str, store: UnitOfWork) -> None:
        self.store = store
        engine = create_sql_engine(url)
        with engine.begin() as conn:  # under the file's write lock: processes opening it at once make it once
            _metadata.create_all(conn)
        self.uow = UnitOfWork(engine)

    def put(self, events: list[Event], *, now: datetime, source: str) -> IngestResult:
        first = dedup.first_of_each(events)
        if first:
            with self.store.reading() as session:
                known = set(
                    session.scalars(sa.select(seen.c.message_id).where(among(session, seen.c.message_id, list(first))))
                )
            rows = [accepted_row(e, now, source) for message_id, e in first.items() if message_id not in known]
        else:
            rows = []
        with self.uow.session() as session:
            new = insert_new(session, intake, "message_id", rows)
        return IngestResult(accepted=len(new), duplicates=len(events) - len(new))

    def take(self, session: Session, limit: int | None = None) -> list[dict[str, Any]]:
        last, fresh = 0, []
        while not fresh:  # a chunk of ids seen already (taken before a crash) does not end the taking
            with self.uow.reading() as reading:
                rows = reading.execute(READ.where(intake.c.id > last).limit(limit)).all()
            if not rows:
                break
            last = rows[-1].id
            new = insert_new(
                session, seen, "message_id", [{"message_id": r.message_id, "seen_at": r.received_at} for r in rows]
            )
            fresh = [dict(zip(COLUMNS, r[1:])) for r in rows if r.message_id in new]
        if last:
            after_commit(session, lambda: self._forget(last))
        return fresh

    def _forget(self, last: int) -> None:
        """The rows up to `last` leave the intake: the store has them (or had seen their ids). Should that fail, they
        stay, and the next take skips them."""
        try:
            with self.uow.session() as session:
                session.execute(sa.delete(intake).where(intake.c.id <= last))
        except sa.exc.SQLAlchemyError:
            log.exception("events taken into the store stay in the intake until the next take")

    def waiting(self) -> int:
        with self.uow.reading() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(intake))

    def waiting_ids(self, message_ids: list[str]) -> set[str]:
        with self.uow.reading() as session:
            return set(
                session.scalars(sa.select(intake.c.message_id).where(among(session, intake.c.message_id, message_ids)))
            )


def accept(session: Session, events: list[Event], *, now: datetime, source: str) -> IngestResult:
    """Store checked events in the inbox as they came, to be processed in the background (the intake of a store
    whose writers do not wait for each other)."""
    fresh = dedup.fresh(session, events, now=now)
    rows = [accepted_row(e, now, source) | {"processed_at": None} for e in fresh]
    executemany(session, inbox_insert(session), rows)
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


def open_intake(store_url: str, store: UnitOfWork) -> Intake:
    """The intake of the operational store at `store_url`: beside an SQLite file (its name and `-intake`), or the
    inbox itself."""
    url = sa.engine.make_url(store_url)
    if url.get_backend_name() != "sqlite":
        return Inbox(store)
    return FileIntake(url.set(database=f"{url.database}-intake").render_as_string(hide_password=False), store)


def session_info(intake: Callable[[], Intake]) -> dict:
    """What the unit of work puts in every session's `info`: the workspace's intake (made when first needed)."""
    return {dedup.INTAKE: intake}


def keep(session: Session, taken: list[dict[str, Any]]) -> int:
    """Events taken from the intake, into the inbox as accepted (unprocessed); how many."""
    executemany(session, inbox_insert(session), [row | {"processed_at": None} for row in taken])
    return len(taken)


def take_into(session: Session) -> int:
    """The events waiting in the intake of the session's workspace, into the inbox in the session's transaction
    (for whoever reads pending events there); none for a session lent no intake."""
    lent = session.info.get(dedup.INTAKE)
    return keep(session, lent().take(session)) if lent else 0


def waiting(session: Session) -> int:
    """How many events wait in the intake of the session's workspace (none for a session lent no intake)."""
    lent = session.info.get(dedup.INTAKE)
    return lent().waiting() if lent else 0
