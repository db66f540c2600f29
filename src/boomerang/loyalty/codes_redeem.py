"""Promo codes at checkout, with the points' pattern: `validate` a code for a customer and an order total (the
discount, or a 4xx naming why not), `hold` it for an order with a time to live, then `confirm` or `cancel`; each
idempotent by order id. A hold locks the code's row first (SELECT ... FOR UPDATE on PostgreSQL; SQLite's writers
take turns), so concurrent holds never take more than `max_uses`; a hold past its time gives its use back, lazily
whenever its code is held again or its order confirmed. Orders that carry a `coupon` (Segment's property on
`Order Completed`) redeem it at once (`follow_orders`), and a cancelled order gives it back. Services flush; the
caller commits."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import Conflict, NotFound, ValidationFailed
from boomerang.db import UnitOfWork
from boomerang.loyalty import checkout
from boomerang.loyalty.codes import CODES, POOLS, normal
from boomerang.loyalty.models import PromoRedemption

log = logging.getLogger(__name__)

REDEMPTIONS = PromoRedemption.__table__
HOLD_MINUTES = 15
MAX_HOLD_MINUTES = 7 * 24 * 60
_CODE = sa.select(
    CODES,
    POOLS.c.name.label("pool"),
    POOLS.c.discount_kind,
    POOLS.c.value.label("pool_value"),
    POOLS.c.min_order,
    POOLS.c.valid_from,
    POOLS.c.valid_until,
).join(POOLS, POOLS.c.id == CODES.c.pool_id)


def _load(session: Session, code: str, *, lock: bool) -> sa.Row | None:
    query = _CODE.where(CODES.c.code == code)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=CODES)
    return session.execute(query).first()


def _discount(row: sa.Row, total: float) -> dict[str, Any]:
    value = float(row.value if row.value is not None else row.pool_value)
    amount = {"percent": round(total * value / 100, 2), "fixed": min(value, total)}.get(row.discount_kind, 0.0)
    return {
        "code": row.code,
        "pool": row.pool,
        "discount_kind": row.discount_kind,
        "value": value,
        "discount": amount,
        "free_shipping": row.discount_kind == "free_shipping",
        "points_multiplier": value if row.discount_kind == "points_multiplier" else None,
        "min_order": float(row.min_order),
        "uses_left": max(row.max_uses - row.uses, 0),
        "expires_at": _ends(row),
    }


def _ends(row: sa.Row) -> datetime | None:
    ends = [t for t in (row.expires_at, row.valid_until) if t is not None]
    return min(ends) if ends else None


def _refuse(row: sa.Row | None, code: str, customer_id: str | None, total: float, now: datetime) -> None:
    """Raise the reason the code may not pay for this order, if any."""
    if row is None:
        raise NotFound(f"unknown code '{code}'", field="code")
    ends = _ends(row)
    if ends is not None and ends <= now:
        raise Conflict(f"the code expired on {ends:%Y-%m-%d %H:%M}", field="code")
    if row.valid_from is not None and row.valid_from > now:
        raise Conflict(f"the code is not valid before {row.valid_from:%Y-%m-%d %H:%M}", field="code")
    if row.uses >= row.max_uses:
        raise Conflict("the code is used up", field="code")
    if row.customer_id is not None and row.customer_id != customer_id:
        raise Conflict("the code is not this customer's", field="customer_id")
    if total < float(row.min_order):
        raise ValidationFailed(
            [{"field": "total", "reason": f"the order is below the code's minimum of {float(row.min_order):g}"}]
        )


def _customer(session: Session, customer_id: str | None) -> str | None:
    return None if customer_id is None else checkout.customer(session, customer_id)


def validate(session: Session, code: Any, customer_id: str | None, total: Any, *, now: datetime) -> dict[str, Any]:
    """The discount the code gives this customer's order of `total`, or a 4xx naming why not. Reads only."""
    code, total, cid = normal(code), checkout.amount(total), _customer(session, customer_id)
    row = _load(session, code, lock=False)
    _refuse(row, code, cid, total, now)
    return _discount(row, total)


def _free_expired(session: Session, code: str, now: datetime) -> int:
    """The code's holds past their time end, giving their uses back (under the code's lock); how many ended."""
    gone = session.execute(
        sa.update(REDEMPTIONS)
        .where(REDEMPTIONS.c.code == code, REDEMPTIONS.c.state == "held", REDEMPTIONS.c.expires_at <= now)
        .values(state="expired", updated_at=now)
    ).rowcount
    if gone:
        session.execute(sa.update(CODES).where(CODES.c.code == code).values(uses=CODES.c.uses - gone))
    return gone


def release_expired(uow: UnitOfWork, now: datetime, *, chunk: int = 500) -> int:
    """The scheduled round's sweep: every code hold past its time ends and gives its use back (a code at a time,
    under its lock, `chunk` codes per transaction), so stock counts and validation see the uses free. Returns how
    many holds ended."""
    ended = 0
    while True:
        with uow.session() as session:
            lapsed = session.scalars(
                sa.select(REDEMPTIONS.c.code)
                .where(REDEMPTIONS.c.state == "held", REDEMPTIONS.c.expires_at <= now)
                .distinct()
                .order_by(REDEMPTIONS.c.code)
                .limit(chunk)
            ).all()
            for code in lapsed:
                _load(session, code, lock=True)
                ended += _free_expired(session, code, now)
        if len(lapsed) < chunk:
            return ended


def _redemption(session: Session, code: str, order_id: str) -> sa.Row | None:
    query = sa.select(REDEMPTIONS).where(REDEMPTIONS.c.code == code, REDEMPTIONS.c.order_id == order_id)
    return session.execute(query).first()


def _out(row: sa.Row | dict) -> dict[str, Any]:
    data = dict(row._mapping) if isinstance(row, sa.Row) else dict(row)
    data.pop("id", None)
    data["discount"] = data.pop("amount")
    return data


def hold(
    session: Session,
    code: Any,
    customer_id: str,
    order_id: Any,
    total: Any,
    *,
    now: datetime,
    ttl_minutes: float | None = None,
) -> dict[str, Any]:
    """Take one use of the code for the order until confirmed, cancelled or `ttl_minutes` pass (the same request
    again: the same hold)."""
    code, total, order_id = normal(code), checkout.amount(total), checkout._order_id(order_id)
    ttl = HOLD_MINUTES if ttl_minutes is None else ttl_minutes
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= MAX_HOLD_MINUTES:
        raise ValidationFailed([{"field": "ttl_minutes", "reason": "must be above 0 and at most a week (10080)"}])
    cid = checkout.customer(session, customer_id)
    row = _load(session, code, lock=True)
    if row is None:
        raise NotFound(f"unknown code '{code}'", field="code")
    _free_expired(session, code, now)
    existing = _redemption(session, code, order_id)
    if existing is not None and existing.state in ("held", "confirmed"):
        if existing.customer_id != cid:
            raise Conflict(f"order '{order_id}' holds this code for another customer", field="order_id")
        return _out(existing)
    row = _load(session, code, lock=False)  # with the uses just given back
    _refuse(row, code, cid, total, now)
    values = {
        "customer_id": cid,
        "state": "held",
        "total": total,
        "amount": _discount(row, total)["discount"],
        "expires_at": now + timedelta(minutes=ttl),
        "updated_at": now,
    }
    if existing is None:
        session.execute(sa.insert(REDEMPTIONS), [values | {"code": code, "order_id": order_id, "created_at": now}])
    else:  # cancelled or expired before: held again
        session.execute(sa.update(REDEMPTIONS).where(REDEMPTIONS.c.id == existing.id).values(values))
    session.execute(sa.update(CODES).where(CODES.c.code == code).values(uses=CODES.c.uses + 1))
    return _out(_redemption(session, code, order_id))


def _of_order(session: Session, order_id: Any) -> list[sa.Row]:
    order_id = checkout._order_id(order_id)
    rows = session.execute(
        sa.select(REDEMPTIONS).where(REDEMPTIONS.c.order_id == order_id).order_by(REDEMPTIONS.c.code)
    ).all()
    if not rows:
        raise NotFound(f"no code is held for order '{order_id}'", field="order_id")
    for row in rows:
        _load(session, row.code, lock=True)
    return session.execute(  # again, under the locks
        sa.select(REDEMPTIONS).where(REDEMPTIONS.c.order_id == order_id).order_by(REDEMPTIONS.c.code)
    ).all()


def _set(session: Session, row: sa.Row, state: str, now: datetime, uses: int = 0) -> None:
    session.execute(sa.update(REDEMPTIONS).where(REDEMPTIONS.c.id == row.id).values(state=state, updated_at=now))
    if uses:
        session.execute(sa.update(CODES).where(CODES.c.code == row.code).values(uses=CODES.c.uses + uses))


def confirm(session: Session, order_id: Any, *, now: datetime) -> dict[str, Any]:
    """The order is paid: its held codes are used. Again: the same answer. After expiry or cancellation: 409."""
    rows = _of_order(session, order_id)
    for row in rows:
        if row.state == "held" and row.expires_at is not None and row.expires_at <= now:
            _set(session, row, "expired", now, uses=-1)
            raise Conflict(f"the hold of '{row.code}' for order '{order_id}' expired", field="order_id")
        if row.state in ("cancelled", "expired"):
            raise Conflict(f"the hold of '{row.code}' for order '{order_id}' was {row.state}", field="order_id")
    for row in rows:
        if row.state == "held":
            _set(session, row, "confirmed", now)
    return {"order_id": order_id, "redemptions": [_out(r) for r in _of_order(session, order_id)]}


def cancel(session: Session, order_id: Any, *, now: datetime) -> dict[str, Any]:
    """The checkout was abandoned or the order cancelled: its codes' uses go back. Again: the same answer."""
    for row in _of_order(session, order_id):
        if row.state in ("held", "confirmed"):
            _set(session, row, "cancelled", now, uses=-1)
    return {"order_id": order_id, "redemptions": [_out(r) for r in _of_order(session, order_id)]}


def follow_orders(session: Session, orders: Iterable[Any], *, now: datetime) -> int:
    """Orders with a `coupon` that is one of our codes: redeemed (confirmed at once, once per order; a hold for
    the order confirmed), or given back when the order is cancelled. The order is a fact, so neither the customer
    nor the minimum is checked; only a code used up is left unredeemed (and logged). Returns the changes."""
    changed = 0
    for order in sorted((o for o in orders if getattr(o, "coupon", None)), key=lambda o: str(o.id)):
        code, order_id = str(order.coupon).strip().upper()[:40], str(order.id)
        row = _load(session, code, lock=True)
        if row is None:
            continue  # another system's coupon
        existing = _redemption(session, code, order_id)
        live = existing is not None and existing.state in ("held", "confirmed")
        if order.status == "cancelled":
            if live:
                _set(session, existing, "cancelled", now, uses=-1)
                changed += 1
            continue
        if existing is not None and existing.state == "confirmed":
            continue
        if existing is not None and existing.state == "held":
            _set(session, existing, "confirmed", now)
            changed += 1
            continue
        _free_expired(session, code, now)
        uses, most = session.execute(sa.select(CODES.c.uses, CODES.c.max_uses).where(CODES.c.code == code)).one()
        if uses >= most:
            log.warning("order %s used promo code %s, which is used up: not redeemed", order_id, code)
            continue
        total = float(order.total or 0)
        values = {
            "customer_id": order.customer_id or "",
            "state": "confirmed",
            "total": total,
            "amount": _discount(row, total)["discount"],
            "expires_at": None,
            "updated_at": now,
        }
        if existing is None:
            session.execute(sa.insert(REDEMPTIONS), [values | {"code": code, "order_id": order_id, "created_at": now}])
        else:
            session.execute(sa.update(REDEMPTIONS).where(REDEMPTIONS.c.id == existing.id).values(values))
        session.execute(sa.update(CODES).where(CODES.c.code == code).values(uses=CODES.c.uses + 1))
        changed += 1
    return changed
