"""Points from orders: the ledger follows each order's state, however and in whatever order its events came.

A paid order earns its cashback once (`order:{id}:earn`), as a lot pending until `pending_days` after it was
placed; one first seen already cancelled or wholly refunded earns nothing. A cancellation or a refund takes back
the share of that earn the order has lost (all of it when cancelled; refunded / total otherwise, rounded down, never
more than was earned), from the same lot, as far as the lot still holds it; and gives back the same share of the
points the order spent (its confirmed checkout hold). What each order has had taken back or given back is kept (on
the lot and the hold), so every step is a difference from there: retried or reordered events land on the same
balances. An order's `coupon`, where it is one of our promo codes, is redeemed for it (`codes_redeem`). Loyalty
and orders are siblings; the event pipeline, which sees both, hands the orders it touched to
`follow`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Protocol

from sqlalchemy.orm import Session

from boomerang.config import LoyaltySettings
from boomerang.customers.merge import live_ids
from boomerang.loyalty import codes_redeem, holds, lots, programme, tiers
from boomerang.loyalty.ledger import Book, Lot, Posting

SOURCE = "order"
NOT_EARNING = ("placed",)  # not paid yet


class OrderLike(Protocol):
    """What the ledger reads of an order (an `orders.models.Order` is one)."""

    id: str
    customer_id: str | None
    status: str
    total: float
    refunded_total: float
    placed_at: datetime


@dataclass(frozen=True)
class OrderState:
    id: str
    customer_id: str | None
    status: str
    total: float
    refunded_total: float
    placed_at: datetime
    coupon: str | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> OrderState:
        """From an order as a mapping (an importer's row)."""
        return cls(
            id=str(row["id"]),
            customer_id=row.get("customer_id"),
            status=row.get("status") or "paid",
            total=float(row.get("total") or 0),
            refunded_total=float(row.get("refunded_total") or 0),
            placed_at=row["placed_at"],
            coupon=row.get("coupon"),
        )


def lost_share(order: OrderLike) -> Fraction:
    """How much of the order is gone: all of it when cancelled, the refunded share otherwise."""
    total, refunded = float(order.total or 0), float(order.refunded_total or 0)
    if order.status == "cancelled":
        return Fraction(1)
    if total > 0 and refunded > 0:
        return min(Fraction(1), Fraction(Decimal(repr(refunded))) / Fraction(Decimal(repr(total))))
    return Fraction(1) if order.status == "returned" else Fraction(0)


def _part(points: int, share: Fraction) -> int:
    return points if share >= 1 else math.floor(points * share)


def follow(
    session: Session,
    orders: Iterable[OrderLike],
    *,
    now: datetime,
    settings: LoyaltySettings | None = None,
    source: str = SOURCE,
) -> dict[str, int]:
    """Make the ledger agree with these orders (earn, take back, give back); flushes. Returns transactions by kind."""
    latest = {str(o.id): o for o in orders}
    if not latest:
        return {}
    settings = settings or programme.of(session)
    live = live_ids(session, {o.customer_id for o in latest.values() if o.customer_id})
    book = Book(session, now)
    book.lock(live.values())
    earned = book.order_lots(latest)
    held = {}
    ids = sorted(latest)
    for start in range(0, len(ids), 5000):
        held.update(holds.of_orders(session, ids[start : start + 5000]))
    book.lock([lot.customer_id for lot in earned.values()] + [h.customer_id for h in held.values()])
    multipliers = tiers.multipliers(session, live.values(), settings)  # the tier held when the order earns
    for order_id in ids:
        order = latest[order_id]
        lot = earned.get(order_id)
        customer = live.get(order.customer_id) if order.customer_id else None
        share = lost_share(order)
        if lot is None and customer and order.status not in NOT_EARNING and share < 1:
            lot = _earn(book, order, customer, settings, source, multipliers.get(customer, 1.0))
        if lot is not None and share > 0:
            _take_back(book, lot, _part(lot.amount, share), source)
        hold = held.get(order_id)
        if hold is not None and share > 0:
            _give_back(book, hold, share, source)
    counts: dict[str, int] = {}
    for posting in book.postings:
        counts[posting.kind] = counts.get(posting.kind, 0) + 1
    book.write()
    if redeemed := codes_redeem.follow_orders(session, latest.values(), now=now):
        counts["promo_code"] = redeemed
    return counts


def _earn(
    book: Book, order: OrderLike, customer: str, settings: LoyaltySettings, source: str, multiplier: float = 1.0
) -> Lot | None:
    points = programme.points_for(float(order.total or 0), settings, multiplier)
    if points <= 0:
        return None
    available = programme.available_at(order.placed_at, settings)
    return lots.credit(
        book,
        customer,
        points,
        reference=f"order:{order.id}:earn",
        kind="earn",
        source=source,
        available_at=available,
        expires_at=programme.expires_at(available, settings),
        order_id=str(order.id),
    ).lot


def _take_back(book: Book, lot: Lot, target: int, source: str) -> None:
    """Of the lot's earn, take back up to `target` in all, as far as the lot still holds it."""
    if target <= lot.reversed:
        return
    wanted = target - lot.reversed
    taken = 0 if lot.state == "expired" else min(wanted, lot.remaining)
    posting = Posting(f"order:{lot.order_id}:reverse:{target}", "reverse", lot.customer_id, source, book.now)
    posting.order_id = lot.order_id
    posting.detail = {"reversed_to": target, "unrecovered": wanted - taken}
    posting.move(taken, lot.account, "earned", lot=lot)
    book.post(posting)
    lot.reversed = target
    book.touch(lot)


def _give_back(book: Book, hold: holds.Hold, share: Fraction, source: str) -> None:
    """The order's spent points: a hold still open ends when the order is gone; a confirmed one gives back its
    share."""
    if hold.state == "held" and share >= 1:
        holds.release(book, hold, "cancelled", source=source)
    elif hold.state == "confirmed":
        target = _part(hold.points, share)
        holds.give_back(book, hold, target, f"order:{hold.order_id}:return:{target}", source=source)
