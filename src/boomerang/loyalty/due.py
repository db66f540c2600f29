"""What changes with time alone: pending lots become spendable, lots expire (one deduction each), holds not
confirmed in time release their points. Done lazily for a customer whenever the ledger works on them (`settle`),
and for everyone due by the worker's scheduled round (`run_due`). Each customer's balance row says when they are
next due, so neither looks at anyone who is not."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from boomerang.db import UnitOfWork
from boomerang.loyalty import holds, lots
from boomerang.loyalty.ledger import BALANCES, Book


def settle(book: Book, customer_id: str, open_holds: list[holds.Hold] | None = None) -> bool:
    """Bring a locked customer up to `book.now` if anything of theirs is due; returns whether anything was.
    `open_holds`: their open holds, where the caller has read them already."""
    due_at = book.balance(customer_id)["due_at"]
    if due_at is None or due_at > book.now:
        return False
    if open_holds is None:
        open_holds = holds.open_of(book.session, [customer_id]).get(customer_id, [])
    for hold in open_holds:
        if hold.expires_at <= book.now:
            holds.release(book, hold, "expired", source="expiry")
    lots.settle_lots(book, customer_id)
    times = [lots.next_due(book, customer_id), *(h.expires_at for h in open_holds if h.state == "held")]
    book.set_due(customer_id, min((t for t in times if t is not None), default=None))
    return True


def run_due(uow: UnitOfWork, now: datetime, *, chunk: int = 500) -> dict[str, int]:
    """Settle every customer due by `now`, `chunk` customers per transaction; returns how many customers and what
    their settling wrote (transactions by kind)."""
    out = {"customers": 0}
    after = ""
    while True:
        with uow.session() as session:
            ids = list(
                session.scalars(
                    sa.select(BALANCES.c.customer_id)
                    .where(BALANCES.c.due_at <= now, BALANCES.c.customer_id > after)
                    .order_by(BALANCES.c.customer_id)
                    .limit(chunk)
                )
            )
            if not ids:
                return out
            book = Book(session, now)
            book.lock(ids)
            book.preload(ids)
            open_holds = holds.open_of(session, ids)
            for customer_id in ids:
                if settle(book, customer_id, open_holds.get(customer_id, [])):
                    out["customers"] += 1
            for posting in book.postings:
                out[posting.kind] = out.get(posting.kind, 0) + 1
            book.write()
            after = ids[-1]
