"""Checkout, like a card authorisation: `estimate` what an order earns and the most points may pay of it, `hold`
points for the order with a time to live, then `confirm` when it is paid or `cancel`. Each is idempotent by order id
(the same request again answers the same hold); a hold past its time releases its points, lazily whenever the
customer's ledger is touched and by the expiry round. A hold locks the customer's balance row first, so two at once
take turns and can never spend the same points. Bad input raises before anything is written."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from boomerang.config import LoyaltySettings
from boomerang.core.errors import Conflict, NotFound, ValidationFailed
from boomerang.customers import service as customers
from boomerang.customers.merge import live_ids
from boomerang.customers.models import Customer
from boomerang.loyalty import due, holds, lots, programme, rule_versions, rules, tiers, view
from boomerang.loyalty.daily import DailyCap
from boomerang.loyalty.holds import Hold
from boomerang.loyalty.ledger import Book, Posting

MAX_POINTS = 10**15  # well inside a 64-bit integer, whatever is added to it


def whole_points(value: Any, field: str = "points") -> int:
    """A positive whole number of points, or ValidationFailed naming the field."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValidationFailed([{"field": field, "reason": "must be a whole number of points"}])
    if not 0 < value <= MAX_POINTS:
        raise ValidationFailed([{"field": field, "reason": f"must be between 1 and {MAX_POINTS} points"}])
    return value


def amount(value: Any, field: str = "total") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValidationFailed([{"field": field, "reason": "must be an amount of zero or more"}])
    if value > 1e12:
        raise ValidationFailed([{"field": field, "reason": "is too large an amount"}])
    return float(value)


def customer(session: Session, customer_id: str) -> str:
    """The live profile's id (following merges) for Boomerang's id, or the shop's own (its user id, or the
    customer's email); NotFound for an unknown customer."""
    row = (
        session.connection()
        .execute(sa.select(Customer.id, Customer.merged_into_id).where(Customer.id == customer_id))
        .first()
    )
    found = (row.id if row.merged_into_id is None else live_ids(session, [row.id]).get(row.id)) if row else None
    if found is None and (known := customers.lookup(session, customer_id)) is not None:
        found = known.id
    if found is None:
        raise NotFound(f"unknown customer '{customer_id}'", field="customer_id")
    return found


def estimate(
    session: Session,
    customer_id: str,
    total: float,
    *,
    settings: LoyaltySettings,
    now: datetime,
    lines: Iterable[rules.Line] = (),
) -> dict[str, Any]:
    """What an order of `total` (with these lines) would earn by the rules in force, the customer's tier and what
    the daily cap leaves today, and the most points that may pay for it (its allowed share, as far as the customer's
    available points go). Reads only."""
    cid, total = customer(session, customer_id), amount(total)
    mine = view.points(session, [cid], now=now)[cid]
    limit = programme.spend_limit(total, settings)
    _, earn_rules = rule_versions.current(session, settings)
    tier = tiers.multipliers(session, [cid], settings).get(cid, 1.0)
    earned = rules.order_points(total, lines, now, earn_rules, settings, tier)
    return {
        "customer_id": cid,
        "total": total,
        "earn": DailyCap(earn_rules.caps.per_day, session).grant(cid, now.date(), earned.points),
        "available": mine.available,
        "share_limit": limit,
        "max_spend": min(limit, mine.available),
        "point_value": settings.point_value,
        "unit": settings.unit_name,
    }


def _order_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 128:
        raise ValidationFailed([{"field": "order_id", "reason": "must be an order id of 1 to 128 characters"}])
    return value


def hold(
    session: Session,
    customer_id: str,
    order_id: str,
    points: int,
    total: float,
    *,
    settings: LoyaltySettings,
    now: datetime,
    ttl_minutes: float | None = None,
) -> dict[str, Any]:
    """Set `points` of the customer's aside for the order until confirmed, cancelled or `ttl_minutes` pass."""
    order_id, points, total = _order_id(order_id), whole_points(points), amount(total)
    if ttl_minutes is not None and not (isinstance(ttl_minutes, int | float) and 0 < ttl_minutes <= 7 * 24 * 60):
        raise ValidationFailed([{"field": "ttl_minutes", "reason": "must be above 0 and at most a week (10080)"}])
    cid = customer(session, customer_id)
    book = Book(session, now)
    book.lock([cid])
    due.settle(book, cid)
    existing = holds.load(session, order_id)
    if existing is not None:
        if existing.customer_id != cid or existing.points != points:
            raise Conflict(f"order '{order_id}' already has a hold of {existing.points} points", field="order_id")
        book.write()
        return existing.as_dict()
    limit = programme.spend_limit(total, settings)
    if points > limit:
        raise ValidationFailed(
            [{"field": "points", "reason": f"at most {limit} points may pay for an order of {total:g}"}]
        )
    available = lots.available(book, cid)
    if points > available:
        raise Conflict(f"only {available} points are available", field="points")
    expires = programme.hold_until(now, settings, ttl_minutes)
    posting = Posting(f"hold:{order_id}", "hold", cid, holds.SOURCE, now, order_id=order_id)
    lots.draw(book, posting, points, "held")
    book.post(posting)
    book.due(cid, expires)
    drawn = {str(lot.id): amount for _, account, lot, amount in posting.entries if account == "held"}
    made = Hold(order_id, cid, 0, points, drawn, total, "held", expires, 0, now, now)
    try:
        book.write()
        made.transaction_id = posting.id
        holds.insert(session, made)
    except IntegrityError:  # the same order id held for another customer at the same moment: all rolls back
        raise Conflict(f"order '{order_id}' already has a hold", field="order_id") from None
    return made.as_dict()


def _locked(session: Session, order_id: str, now: datetime) -> tuple[Book, Hold]:
    """The order's hold with its customer's balance locked and settled (an expired hold released)."""
    found = holds.load(session, _order_id(order_id))
    if found is None:
        raise NotFound(f"no hold for order '{order_id}'", field="order_id")
    book = Book(session, now)
    book.lock([found.customer_id])
    due.settle(book, found.customer_id)
    # Read again under the lock where the first read may be stale: PostgreSQL (SQLite's transaction already
    # began with the write lock), or where settling just released it.
    current = holds.load(session, order_id) if book.pg or found.state != "held" or found.expires_at <= now else found
    if current.customer_id != found.customer_id:  # merged meanwhile: lock the profile it moved to
        book.lock([current.customer_id])
    if current.state == "held" and current.expires_at <= now:
        holds.release(book, current, "expired", source="expiry")
    return book, current


def confirm(session: Session, order_id: str, *, now: datetime) -> dict[str, Any]:
    """The order is paid: its held points are spent. Again: the same answer. After expiry or cancellation: 409."""
    book, found = _locked(session, order_id, now)
    if found.state in ("expired", "cancelled"):
        raise Conflict(f"the hold for order '{order_id}' was {found.state}; nothing was spent", field="order_id")
    if found.state == "held":
        holds.capture(book, found)
    book.write()
    return found.as_dict()


def cancel(session: Session, order_id: str, *, now: datetime) -> dict[str, Any]:
    """The checkout was abandoned: the held points go back. Again, or after expiry: the same hold, unchanged."""
    book, found = _locked(session, order_id, now)
    if found.state == "confirmed":
        raise Conflict(
            f"the hold for order '{order_id}' was confirmed: cancel or refund the order to give its points back",
            field="order_id",
        )
    if found.state == "held":
        holds.release(book, found, "cancelled")
    book.write()
    return found.as_dict()
