"""Moves accepted events from the durable inbox into the DuckDB log, and applies merges there.

Safe to run from several processes at once and to repeat after a crash: the log ignores message
ids it already has, and a merge's redirect can be applied twice.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from boomerang.bootstrap import Workspace
from boomerang.customers.models import Customer, Merge
from boomerang.events.log import EVENT_COLUMNS
from boomerang.events.models import inbox


def flush(ws: Workspace, *, chunk_rows: int | None = None) -> int:
    """Flush until the inbox is empty; returns how many inbox rows were moved."""
    chunk_rows = chunk_rows or ws.settings.ingest.flush_chunk_rows
    moved = 0
    while True:
        with ws.uow.session() as session:
            rows = session.execute(sa.select(inbox).order_by(inbox.c.id).limit(chunk_rows)).mappings().all()
            merges = session.execute(
                sa.select(Merge.id, Merge.from_customer_id, Merge.into_customer_id)
                .where(Merge.applied_to_log.is_(False)).order_by(Merge.id)
            ).all()
            redirects = _redirects(session, {r["customer_id"] for r in rows if r["customer_id"]})
        if not rows and not merges:
            return moved
        frame = pd.DataFrame([dict(r) for r in rows], columns=["id", *EVENT_COLUMNS])
        frame["customer_id"] = frame["customer_id"].map(lambda c: redirects.get(c, c))
        with ws.log.connect() as conn:
            conn.execute("BEGIN TRANSACTION")
            ws.log.append(conn, frame)
            ws.log.redirect(conn, [(m.from_customer_id, m.into_customer_id) for m in merges])
            conn.execute("COMMIT")
        with ws.uow.session() as session:
            ids = [r["id"] for r in rows]
            for start in range(0, len(ids), 5000):
                session.execute(sa.delete(inbox).where(inbox.c.id.in_(ids[start : start + 5000])))
            if merges:
                session.execute(sa.update(Merge).where(Merge.id.in_([m.id for m in merges])).values(applied_to_log=True))
        moved += len(rows)


def _redirects(session, customer_ids: set[str]) -> dict[str, str]:
    """For each merged-away profile among the ids, the live profile it ended up in."""
    pointers: dict[str, str] = {}
    frontier = list(customer_ids)
    while frontier:
        found = session.execute(
            sa.select(Customer.id, Customer.merged_into_id).where(Customer.id.in_(frontier[:5000]), Customer.merged_into_id.is_not(None))
        ).all()
        frontier = frontier[5000:]
        for cid, into in found:
            pointers[cid] = into
            frontier.append(into)
    resolved = {}
    for cid in pointers:
        target = cid
        while target in pointers:
            target = pointers[target]
        resolved[cid] = target
    return resolved
