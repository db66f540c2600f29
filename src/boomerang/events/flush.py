"""Moves processed events from the durable inbox into the log, and applies merges there.

Safe to run from several processes at once and to repeat after a crash: the log ignores message
ids it already has, and a merge's redirect can be applied twice.
"""

from __future__ import annotations

from datetime import datetime

import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.clock import Clock
from boomerang.customers.merge import final_targets
from boomerang.customers.models import Merge
from boomerang.db import UnitOfWork, executemany
from boomerang.events.intake import Intake
from boomerang.events.log import EVENT_COLUMNS, EventLog
from boomerang.events.models import inbox
from boomerang.events.process import Processed, process_next
from boomerang.events.schemas import Logged

# Times are read as the store's text (SQLite) or as they come (PostgreSQL): DuckDB casts them on insert,
# which is much cheaper than parsing them in Python.
INBOX_COLUMNS = (
    [inbox.c.id]
    + [
        sa.type_coerce(inbox.c[name], sa.String()).label(name)
        if name in ("timestamp", "received_at")
        else inbox.c[name]
        for name in EVENT_COLUMNS
    ]
    + [inbox.c.processed_at]
)
FROM_ROW = ("received_at", "properties", "context")  # as stored; the rest of a log row as processing left it
FROM_EVENT = [name for name in EVENT_COLUMNS if name not in FROM_ROW]
MOVED = sa.delete(inbox).where(inbox.c.id == sa.bindparam("row_id"))


def flush(uow: UnitOfWork, log: EventLog, *, chunk_rows: int) -> list[Logged]:
    """Move every processed inbox row into the log; the events of known customers moved, in inbox order
    (for live segments and journeys)."""
    moved: list[Logged] = []
    while True:
        with uow.session() as session:
            rows = session.execute(
                sa.select(*INBOX_COLUMNS)
                .where(inbox.c.processed_at.is_not(None))
                .order_by(inbox.c.id)
                .limit(chunk_rows)
            ).all()
        if not rows and not _pending_merges(uow):
            return moved
        columns = list(zip(*rows)) or [()] * (2 + len(EVENT_COLUMNS))
        frame = pd.DataFrame(dict(zip(["id", *EVENT_COLUMNS, "processed_at"], columns)))
        since = min(r.processed_at for r in rows) if rows else None
        frame = _move(uow, log, frame, since)
        moved += _logged(frame)


def process_and_move(
    uow: UnitOfWork, clock: Clock, log: EventLog, *, chunk_rows: int, move_rows: int, intake: Intake | None = None
) -> list[Logged]:
    """Process accepted events (in the inbox, then in the intake) `chunk_rows` at a time (each chunk committed), and
    move them into the log up to `move_rows` at a time from what processing parsed, not read back from the inbox
    (opening the log costs more than a small append); then whatever else is processed (Boomerang's own events, rows
    left by a crash) as `flush` does. The same events as process then flush."""
    moved: list[Logged] = []
    waiting: list[Processed] = []
    while True:
        chunk = process_next(uow, clock, chunk_rows=chunk_rows, intake=intake)
        waiting += chunk
        if waiting and (not chunk or len(waiting) >= move_rows):
            moved += _move_processed(uow, log, waiting)
            waiting = []
        if not chunk:
            return moved + flush(uow, log, chunk_rows=move_rows)


def _move_processed(uow: UnitOfWork, log: EventLog, done: list[Processed]) -> list[Logged]:
    events = [p.event for p in done]
    frame = pd.DataFrame(
        {
            "id": [p.row_id for p in done],
            **{name: [getattr(e, name) for e in events] for name in FROM_EVENT},
            **{name: [getattr(p, name) for p in done] for name in FROM_ROW},
        }
    )
    frame = _move(uow, log, frame, min(p.processed_at for p in done))
    return [
        Logged(cid, e.type, e.event, e.timestamp, e.properties, e.message_id)
        for cid, e in zip(frame["customer_id"].tolist(), events)
        if cid is not None
    ]


def _pending_merges(uow: UnitOfWork) -> bool:
    with uow.session() as session:
        return session.scalar(sa.select(Merge.id).where(Merge.applied_to_log.is_(False)).limit(1)) is not None


def _move(uow: UnitOfWork, log: EventLog, frame: pd.DataFrame, since: datetime | None) -> pd.DataFrame:
    """Append these processed rows (`id` their inbox row) to the log with the merges not applied there yet, their
    customers followed through the merges made since `since`; then forget the rows. Returns the frame appended."""
    with uow.session() as session:
        merges = session.execute(
            sa.select(Merge.id, Merge.from_customer_id, Merge.into_customer_id)
            .where(Merge.applied_to_log.is_(False))
            .order_by(Merge.id)
        ).all()
        redirects = _redirects(session, since) if since is not None else {}
    if redirects:
        frame["customer_id"] = frame["customer_id"].map(lambda c: redirects.get(c, c))
    log.append(frame, merges=[(m.from_customer_id, m.into_customer_id) for m in merges])
    with uow.session() as session:
        if len(frame):
            executemany(session, MOVED, [{"row_id": row_id} for row_id in frame["id"].tolist()])
        if merges:
            session.execute(sa.update(Merge).where(Merge.id.in_([m.id for m in merges])).values(applied_to_log=True))
    return frame


def _logged(frame: pd.DataFrame) -> list[Logged]:
    known = frame[frame["customer_id"].notna()]
    names = ("customer_id", "type", "event", "timestamp", "properties", "message_id")
    columns = [known[name].tolist() for name in names]
    return [
        Logged(c, t, e, datetime.fromisoformat(str(ts)), orjson.loads(p) if p else {}, m)
        for c, t, e, ts, p, m in zip(*columns)
    ]


def _redirects(session: Session, since: datetime) -> dict[str, str]:
    """Where each profile merged away since `since` ended up: events resolved before a merge follow it."""
    pointers = dict(
        session.execute(
            sa.select(Merge.from_customer_id, Merge.into_customer_id).where(Merge.at >= since).order_by(Merge.id)
        ).all()
    )
    return final_targets(pointers)
