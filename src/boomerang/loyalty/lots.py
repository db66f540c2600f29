"""Lots: each earn is a lot, pending until it is spendable and spendable until it expires. Spending draws on the
nearest-expiring lots first; what comes back (a released hold, a refunded order's spent points) goes back to the lot
it came from, or straight to `expired` where that lot has expired meanwhile."""

from __future__ import annotations

from datetime import datetime

from boomerang.loyalty.ledger import Book, Lot, Posting


def credit(
    book: Book,
    customer_id: str,
    points: int,
    *,
    reference: str,
    kind: str,
    source: str,
    available_at: datetime,
    expires_at: datetime | None,
    order_id: str | None = None,
    reason: str | None = None,
    origin: str = "earned",
) -> Posting:
    """A new lot of `points` from the `origin` account: pending until `available_at`, then in the wallet."""
    now = book.now
    lot = Lot(
        id=None,
        customer_id=customer_id,
        order_id=order_id,
        amount=points,
        remaining=0,
        reversed=0,
        state="pending" if available_at > now else "available",
        available_at=available_at,
        expires_at=expires_at,
        created_at=now,
    )
    posting = Posting(reference, kind, customer_id, source, now, order_id=order_id, reason=reason, lot=lot)
    posting.move(points, origin, lot.account, lot=lot)
    book.post(posting)
    book.due(customer_id, available_at if lot.state == "pending" else None)
    book.due(customer_id, expires_at)
    return posting


def spendable(book: Book, customer_id: str) -> list[Lot]:
    """The customer's lots with points to spend now, nearest expiry first (those that never expire last)."""
    now = book.now
    lots = [
        lot
        for lot in book.lots_of(customer_id)
        if lot.state == "available" and lot.remaining > 0 and not lot.expired_by(now)
    ]
    return sorted(lots, key=lambda lot: (lot.expires_at is None, lot.expires_at or now, lot.available_at, lot.id or 0))


def available(book: Book, customer_id: str) -> int:
    return sum(lot.remaining for lot in spendable(book, customer_id))


def draw(book: Book, posting: Posting, points: int, target: str) -> int:
    """Move up to `points` from the posting customer's spendable lots, nearest expiry first, to `target` (one pair
    of entries per lot); returns how many were moved."""
    left = points
    for lot in spendable(book, posting.customer_id):
        if left <= 0:
            break
        take = min(left, lot.remaining)  # each lot once: `post` takes the points off it
        posting.move(take, "wallet", target, lot=lot)
        left -= take
    return points - left


def restore(book: Book, posting: Posting, lot: Lot, points: int, origin: str) -> None:
    """Points from `origin` (held, redeemed) back to the lot they came from; to `expired` if it has expired."""
    if lot.expired_by(book.now):
        posting.move(points, origin, "expired", lot=lot)
    else:
        posting.move(points, origin, lot.account, lot=lot)


def revoke(book: Book, lot: Lot, reference: str, source: str, detail: dict | None = None) -> None:
    """An award whose reason is gone (a reward for an order returned whole): what is left of the lot's earn goes
    back to `earned`, as far as the lot still holds it; what was spent meanwhile is recorded as unrecovered."""
    wanted = lot.amount - lot.reversed
    taken = 0 if lot.state == "expired" else min(wanted, lot.remaining)
    posting = Posting(reference, "reverse", lot.customer_id, source, book.now)
    posting.detail = {**(detail or {}), "reversed": wanted, "unrecovered": wanted - taken}
    posting.move(taken, lot.account, "earned", lot=lot)
    book.post(posting)
    lot.reversed = lot.amount
    book.touch(lot)


def expire(book: Book, lot: Lot, *, source: str = "expiry") -> Posting | None:
    """The lot's remaining points are lost: one deduction for the lot."""
    posting = None
    if lot.remaining > 0:
        posting = Posting(f"lot:{lot.id}:expire", "expire", lot.customer_id, source, book.now)
        posting.detail = {"lot_id": lot.id, "expires_at": lot.expires_at.isoformat() if lot.expires_at else None}
        posting.move(lot.remaining, lot.account, "expired", lot=lot)
        book.post(posting)
    lot.state = "expired"
    book.touch(lot)
    return posting


def mature(book: Book, lot: Lot, *, source: str = "expiry") -> Posting | None:
    """A pending lot becomes spendable: its remaining points move from pending to the wallet."""
    posting = None
    if lot.remaining > 0:
        posting = Posting(f"lot:{lot.id}:available", "mature", lot.customer_id, source, book.now)
        posting.detail = {"lot_id": lot.id}
        posting.move(lot.remaining, "pending", "wallet", lot=lot)
        book.post(posting)
    lot.state = "available"
    book.touch(lot)
    return posting


def settle_lots(book: Book, customer_id: str) -> int:
    """Expire the customer's lots past their expiry and make spendable those past their pending time; returns how
    many lots changed."""
    now, changed = book.now, 0
    for lot in list(book.lots_of(customer_id)):
        if lot.id is None:
            continue  # made in this book: nothing of it is due yet
        if lot.expires_at is not None and lot.expires_at <= now:
            expire(book, lot)
            changed += 1
        elif lot.state == "pending" and lot.available_at <= now:
            mature(book, lot)
            changed += 1
    return changed


def next_due(book: Book, customer_id: str) -> datetime | None:
    """The earliest time one of the customer's lots will change by itself."""
    times = []
    for lot in book.lots_of(customer_id):
        if lot.state == "pending":
            times.append(lot.available_at)
        if lot.expires_at is not None and (lot.remaining > 0 or lot.state == "pending"):
            times.append(lot.expires_at)
    return min(times, default=None)
