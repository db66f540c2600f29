"""Orders and their lines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.db import Base, Money

ORDER_STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled", "returned", "partially_refunded")


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)  # the shop's own order id
    customer_id: Mapped[str | None] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(24))
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    total: Mapped[float] = mapped_column(Money, default=0.0)
    subtotal: Mapped[float | None] = mapped_column(Money)
    discount: Mapped[float | None] = mapped_column(Money)
    shipping: Mapped[float | None] = mapped_column(Money)
    tax: Mapped[float | None] = mapped_column(Money)
    refunded_total: Mapped[float] = mapped_column(Money, default=0.0)
    coupon: Mapped[str | None] = mapped_column(sa.String(128))
    source: Mapped[str] = mapped_column(sa.String(64))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    placed_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]


class OrderLine(Base):
    __tablename__ = "order_lines"

    order_id: Mapped[str] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True)
    line_no: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str | None] = mapped_column(sa.String(128), index=True)  # not every line is a product
    name: Mapped[str | None] = mapped_column(sa.String(512))
    category: Mapped[str | None] = mapped_column(sa.String(1024))
    quantity: Mapped[float] = mapped_column(sa.Float())
    unit_price: Mapped[float] = mapped_column(Money)


class Cart(Base):
    """A shopping cart as its events describe it (`cart_id` on Product Added, Product Removed, Cart Viewed,
    Checkout Started): its current lines, and the order that bought it (an Order Completed with its cart_id)."""

    __tablename__ = "carts"

    id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)  # the shop's cart id
    customer_id: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON(), default=list)  # sku, name, price, quantity...
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    order_id: Mapped[str | None] = mapped_column(sa.String(128))
    updated_at: Mapped[datetime]
