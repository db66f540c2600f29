"""Order writes: record an order with its lines, move its status, refund it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from boomerang.core.errors import NotFound
from boomerang.orders.models import ORDER_STATUSES, Order, OrderLine


def _text_id(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


TextId = Annotated[str, BeforeValidator(_text_id), Field(min_length=1, max_length=128)]


class LineIn(BaseModel):
    """An order line; Segment's product objects fit (product_id or sku, price, quantity)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    sku: TextId | None = Field(default=None, validation_alias=AliasChoices("sku", "product_id"))
    name: str | None = None
    category: str | None = None
    brand: str | None = None
    price: float = 0.0
    quantity: float = 1.0
    url: str | None = None
    image_url: str | None = None


class OrderIn(BaseModel):
    """An order as the API and the Order Completed event carry it."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    order_id: TextId = Field(validation_alias=AliasChoices("order_id", "id"))
    total: float | None = None
    revenue: float | None = None
    subtotal: float | None = None
    discount: float | None = None
    shipping: float | None = None
    tax: float | None = None
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    coupon: str | None = None
    status: str | None = None
    products: list[LineIn] = Field(default_factory=list, validation_alias=AliasChoices("products", "lines"))

    @model_validator(mode="after")
    def _known_status(self):
        if self.status is not None and self.status not in ORDER_STATUSES:
            raise ValueError(f"status must be one of {', '.join(ORDER_STATUSES)}")
        return self

    def amount(self) -> float:
        if self.total is not None:
            return self.total
        if self.revenue is not None:
            return self.revenue
        return round(sum(line.price * line.quantity for line in self.products), 4)


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
