"""Orders: record one with its lines, move its status, refund it, and read them back. Services flush."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import NotFound
from boomerang.core.privacy import product_lines
from boomerang.customers.merge import move_rows
from boomerang.customers.privacy import hooks as privacy
from boomerang.db import chunked, in_chunks
from boomerang.orders.models import Cart, Order, OrderLine
from boomerang.orders.schemas import OrderIn


def record_order(
    session: Session,
    order: OrderIn,
    *,
    customer_id: str | None,
    placed_at: datetime,
    source: str,
    now: datetime,
    status: str = "paid",
) -> Order:
    """Create or update an order and replace its lines; a later status is never moved back."""
    row = session.get(Order, order.order_id)
    if row is None:
        row = Order(
            id=order.order_id,
            status=order.status or status,
            placed_at=placed_at,
            source=source,
            refunded_total=0.0,
            attributes={},
        )
        session.add(row)
    elif order.status:
        row.status = order.status
    row.customer_id = customer_id or row.customer_id
    row.total = order.amount()
    for name in ("subtotal", "discount", "shipping", "tax", "currency", "coupon"):
        value = getattr(order, name)
        if value is not None:
            setattr(row, name, value)
    row.updated_at = now
    if order.products:
        session.flush()
        session.execute(sa.delete(OrderLine).where(OrderLine.order_id == row.id))
        session.add_all(
            OrderLine(
                order_id=row.id,
                line_no=i,
                sku=line.sku,
                name=line.name,
                category=line.category,
                quantity=line.quantity,
                unit_price=line.price,
            )
            for i, line in enumerate(order.products)
        )
    return row


def main_currency(session: Session, *, recent: int = 1000) -> str | None:
    """The currency of most of the shop's latest orders (None before the first order that names one)."""
    found = Counter(
        session.scalars(
            sa.select(Order.currency).where(Order.currency.is_not(None)).order_by(Order.placed_at.desc()).limit(recent)
        )
    )
    return found.most_common(1)[0][0] if found else None


def set_status(session: Session, order_id: str, status: str, *, now: datetime) -> Order:
    row = session.get(Order, order_id)
    if row is None:
        raise NotFound(f"unknown order '{order_id}'", field="order_id")
    row.status = status
    row.updated_at = now
    return row


def refund(
    session: Session,
    order_id: str,
    *,
    amount: float | None,
    refund_id: str,
    customer_id: str | None,
    at: datetime,
    now: datetime,
    source: str,
) -> Order:
    """Record a refund once per refund id; the status becomes returned or partially refunded."""
    row = session.get(Order, order_id)
    if row is None:  # a refund of an order we never saw: keep it, so revenue nets out
        row = Order(
            id=order_id,
            status="returned",
            total=0.0,
            refunded_total=0.0,
            placed_at=at,
            source=source,
            customer_id=customer_id,
            attributes={},
        )
        session.add(row)
    refunds = dict((row.attributes or {}).get("refunds", {}))
    if refund_id not in refunds:
        refunds[refund_id] = row.total - row.refunded_total if amount is None else amount
        row.attributes = {**(row.attributes or {}), "refunds": refunds}
        row.refunded_total = round(sum(refunds.values()), 4)
        row.status = "returned" if row.refunded_total >= row.total else "partially_refunded"
        row.updated_at = now
    return row


def follow_merge(session: Session, from_id: str, into_id: str, now: datetime) -> None:
    """The merged profile's orders and carts are the surviving profile's."""
    move_rows(session, Order.customer_id, from_id, into_id)
    move_rows(session, Cart.customer_id, from_id, into_id)


ORDER_ATTRIBUTES_KEPT = ("refunds",)  # what an erased customer's order keeps of its attributes: refunds net out


def export_customer(session: Session, customer_ids: list[str]) -> dict[str, Any]:
    """The customers' orders with their lines, and their carts (a privacy export's sections)."""
    orders = privacy.rows_of(session, Order.customer_id, customer_ids, order_by=Order.placed_at)
    lines: dict[str, list[dict[str, Any]]] = {}
    for line in in_chunks(
        session, lambda ids: sa.select(OrderLine).where(OrderLine.order_id.in_(ids)), [o["id"] for o in orders]
    ):
        lines.setdefault(line.OrderLine.order_id, []).append(privacy.as_dict(line.OrderLine, leave=("order_id",)))
    for order in orders:
        order["lines"] = sorted(lines.get(order["id"], []), key=lambda line: line["line_no"])
    carts = privacy.rows_of(session, Cart.customer_id, customer_ids, order_by=Cart.updated_at)
    return {"orders": orders, "carts": carts}


def erase_customer(session: Session, customer_id: str, pseudonym: str, now: datetime) -> privacy.Tally:
    """An erased customer's orders and carts stay, for revenue and the carts' journeys, under the pseudonym:
    an order keeps of its attributes only its refunds, a cart of its lines only the products' own fields."""
    orders = session.scalars(sa.select(Order).where(Order.customer_id == customer_id)).all()
    for order in orders:
        kept = {k: v for k, v in (order.attributes or {}).items() if k in ORDER_ATTRIBUTES_KEPT}
        order.customer_id, order.attributes, order.updated_at = pseudonym, kept, now
    carts = session.scalars(sa.select(Cart).where(Cart.customer_id == customer_id)).all()
    for cart in carts:
        cart.customer_id, cart.lines, cart.updated_at = pseudonym, product_lines(cart.lines or []), now
    session.flush()
    return {"pseudonymised": {"orders": len(orders), "carts": len(carts)}}


def as_dict(session: Session, order_id: str) -> dict[str, Any]:
    """The order with its lines; NotFound for an unknown id."""
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound(f"unknown order '{order_id}'", field="order_id")
    lines = session.scalars(sa.select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.line_no))
    data = {c.key: getattr(order, c.key) for c in Order.__table__.columns}
    data["lines"] = [{c.key: getattr(line, c.key) for c in OrderLine.__table__.columns} for line in lines]
    return data


def listing(session: Session, *, customer_id: str | None = None, limit: int = 50, offset: int = 0) -> list[str]:
    """Order ids, newest first (of one customer, if given)."""
    query = sa.select(Order.id)
    if customer_id:
        query = query.where(Order.customer_id == customer_id)
    return list(session.scalars(query.order_by(Order.placed_at.desc(), Order.id).limit(limit).offset(offset)))


def of_customer(
    session: Session, customer_id: str, *, limit: int
) -> tuple[list[Order], dict[str, list[OrderLine]], int]:
    """A customer's latest orders with their lines, and how many orders they have."""
    count = session.scalar(sa.select(sa.func.count()).where(Order.customer_id == customer_id))
    orders = list(
        session.scalars(
            sa.select(Order)
            .where(Order.customer_id == customer_id)
            .order_by(Order.placed_at.desc(), Order.id)
            .limit(limit)
        )
    )
    lines: dict[str, list[OrderLine]] = {o.id: [] for o in orders}
    for chunk in chunked(lines):
        for line in session.scalars(
            sa.select(OrderLine).where(OrderLine.order_id.in_(chunk)).order_by(OrderLine.order_id, OrderLine.line_no)
        ):
            lines[line.order_id].append(line)
    return orders, lines, int(count)
