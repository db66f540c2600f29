"""Checkout holds as rows, and the movements that end them: points held for an order are captured (redeemed) when
it is paid, or released back to their lots when it is cancelled or the hold expires. A hold's transaction says which
lots it drew on (and the hold repeats them, `drawn`), so whatever ends it goes back lot by lot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.loyalty import lots
from boomerang.loyalty.ledger import Book, Posting
from boomerang.loyalty.models import LoyaltyHold

HOLDS = LoyaltyHold.__table__
SOURCE = "checkout"


@dataclass
class Hold:
    order_id: str
    customer_id: str
    transaction_id: int
    points: int
    drawn: dict[str, int]
    total: float
    state: str
    expires_at: datetime
    returned: int
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "points": self.points,
            "total": self.total,
            "state": self.state,
            "expires_at": self.expires_at,
            "returned": self.returned,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def load(session: Session, order_id: str) -> Hold | None:
    row = session.connection().execute(sa.select(HOLDS).where(HOLDS.c.order_id == order_id)).first()
    return Hold(**row._mapping) if row else None


def of_orders(session: Session, order_ids: list[str]) -> dict[str, Hold]:
    if not order_ids:
        return {}
    rows = session.connection().execute(sa.select(HOLDS).where(HOLDS.c.order_id.in_(order_ids)))
    return {row.order_id: Hold(**row._mapping) for row in rows}


def insert(session: Session, hold: Hold) -> None:
    session.connection().execute(sa.insert(HOLDS), [hold.__dict__])


def save(session: Session, hold: Hold, now: datetime) -> None:
    hold.updated_at = now
    session.connection().execute(
        sa.update(HOLDS)
        .where(HOLDS.c.order_id == hold.order_id)
        .values(state=hold.state, returned=hold.returned, customer_id=hold.customer_id, updated_at=now)
    )


def allocation(hold: Hold) -> list[tuple[int, int]]:
    """(lot id, points) the hold drew on, in the order it drew them."""
    return [(int(lot_id), points) for lot_id, points in hold.drawn.items()]


def open_of(session: Session, customer_ids: list[str]) -> dict[str, list[Hold]]:
    """The customers' holds still open (held), whether or not past their time."""
    out: dict[str, list[Hold]] = {}
    for start in range(0, len(customer_ids), 5000):
        rows = session.connection().execute(
            sa.select(HOLDS).where(HOLDS.c.customer_id.in_(customer_ids[start : start + 5000]), HOLDS.c.state == "held")
        )
        for row in rows:
            out.setdefault(row.customer_id, []).append(Hold(**row._mapping))
    return out


def release(book: Book, hold: Hold, state: str, *, source: str = SOURCE) -> Posting:
    """End an open hold without spending it (`cancelled` or `expired`): its points back to their lots."""
    posting = Posting(f"hold:{hold.order_id}:{state}", "release", hold.customer_id, source, book.now)
    posting.order_id = hold.order_id
    drawn = allocation(hold)
    for lot, (_, points) in zip(book.load_lots([lot_id for lot_id, _ in drawn]), drawn):
        lots.restore(book, posting, lot, points, "held")
    book.post(posting)
    hold.state = state
    save(book.session, hold, book.now)
    return posting


def capture(book: Book, hold: Hold, *, source: str = SOURCE) -> Posting:
    """The order is paid: the held points are redeemed."""
    posting = Posting(f"hold:{hold.order_id}:confirm", "redeem", hold.customer_id, source, book.now)
    posting.order_id = hold.order_id
    for lot_id, points in allocation(hold):
        posting.move(points, "held", "redeemed", lot=lot_id)
    book.post(posting)
    hold.state = "confirmed"
    save(book.session, hold, book.now)
    return posting


def give_back(book: Book, hold: Hold, target: int, reference: str, *, source: str) -> Posting | None:
    """Of a confirmed hold's points, give back up to `target` in all (refunds): to the longest-lived lots first."""
    target = min(target, hold.points)
    if target <= hold.returned:
        return None
    posting = Posting(reference, "return", hold.customer_id, source, book.now, order_id=hold.order_id)
    allocated = allocation(hold)
    drawn = list(zip(book.load_lots([lot_id for lot_id, _ in allocated]), (points for _, points in allocated)))
    drawn.sort(key=lambda d: (d[0].expires_at is not None, -(d[0].expires_at or book.now).timestamp()))
    skip, left = hold.returned, target - hold.returned
    for lot, points in drawn:
        used = min(skip, points)
        skip -= used
        take = min(points - used, left)
        if take > 0:
            lots.restore(book, posting, lot, take, "redeemed")
            left -= take
    posting.detail = {"returned_to": target}
    book.post(posting)
    hold.returned = target
    save(book.session, hold, book.now)
    return posting
