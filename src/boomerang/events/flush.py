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

from boomerang.customers.models import Merge
from boomerang.db import UnitOfWork, executemany
from boomerang.events.log import EVENT_COLUMNS, EventLog
from boomerang.events.models import inbox
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
            merges = session.execute(
                sa.select(Merge.id, Merge.from_customer_id, Merge.into_customer_id)
                .where(Merge.applied_to_log.is_(False))
                .order_by(Merge.id)
            ).all()
            redirects = _redirects(session, min(r.processed_at for r in rows)) if rows else {}
        if not rows and not merges:
            return moved
        columns = list(zip(*rows)) or [()] * (2 + len(EVENT_COLUMNS))
        frame = pd.DataFrame(dict(zip(["id", *EVENT_COLUMNS, "processed_at"], columns)))
        if redirects:
            frame["customer_id"] = frame["customer_id"].map(lambda c: redirects.get(c, c))
        log.append(frame, merges=[(m.from_customer_id, m.into_customer_id) for m in merges])
        with uow.session() as session:
            if rows:
                executemany(session, MOVED, [{"row_id": r.id} for r in rows])
            if merges:
                session.execute(
                    sa.update(Merge).where(Merge.id.in_([m.id for m in merges])).values(applied_to_log=True)
                )
        moved += _logged(frame)


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
    resolved = {}
    for cid in pointers:
        target, hops = cid, 0
        while target in pointers and hops <= len(pointers):
            target, hops = pointers[target], hops + 1
        resolved[cid] = target
    return resolved
