"""What the standard e-commerce events change besides the log: products and orders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from boomerang.catalog.service import ProductLearner
from boomerang.core.errors import NotFound
from boomerang.core.vocab import trusted
from boomerang.events.schemas import Event, errors_of
from boomerang.orders import service as orders
from boomerang.orders.carts import CartKeeper
from boomerang.orders.schemas import LineIn, OrderIn

PRODUCT_EVENTS = {"Product Viewed", "Product Clicked", "Product Added", "Product Removed", "Product Added to Wishlist"}
PRODUCT_LIST_EVENTS = {"Cart Viewed", "Checkout Started", "Product List Viewed"}
ORDER_EVENTS = {"Order Completed", "Order Updated"}
STATUS_EVENTS = {"Order Cancelled": "cancelled", "Order Shipped": "shipped", "Order Delivered": "delivered"}
REFUND_EVENT = "Order Refunded"
ORDER_ID_EVENTS = ORDER_EVENTS | set(STATUS_EVENTS) | {REFUND_EVENT}


def check(event: Event, prefix: str) -> list[dict]:
    """Problems with an e-commerce event's properties, before anything is written."""
    try:
        if event.event in ORDER_ID_EVENTS:
            OrderIn.model_validate(event.properties)
        elif event.event in PRODUCT_EVENTS:
            LineIn.model_validate(event.properties)
        elif event.event in PRODUCT_LIST_EVENTS:
            for item in event.properties.get("products") or []:
                LineIn.model_validate(item)
    except ValidationError as exc:
        return errors_of(exc, f"{prefix}.properties".lstrip("."))
    return []


def skus(event: Event) -> set[str]:
    """The product skus an event mentions, so a batch can load them at once."""
    props = event.properties
    items = [props] if event.event in PRODUCT_EVENTS else props.get("products") or []
    return {
        str(i.get("sku") or i.get("product_id"))
        for i in items
        if isinstance(i, dict) and (i.get("sku") or i.get("product_id"))
    }


def _product_fields(line: LineIn) -> dict[str, Any] | None:
    if line.sku is None:
        return None
    return {
        "sku": line.sku,
        "name": line.name,
        "category": line.category,
        "brand": line.brand,
        "price": line.price or None,
        "url": line.url,
        "image_url": line.image_url,
        "currency": None,
    }


def apply(
    session: Session, event: Event, *, now: datetime, source: str, products: ProductLearner, carts: CartKeeper
) -> None:
    """Update products, carts and orders from one accepted event."""
    name, props = event.event, event.properties
    if name in PRODUCT_EVENTS:
        lines = [LineIn.model_validate(props)]
    elif name in PRODUCT_LIST_EVENTS or name in ORDER_EVENTS or name == REFUND_EVENT:
        lines = [LineIn.model_validate(p) for p in props.get("products") or []]
    else:
        lines = []
    currency = props.get("currency") if isinstance(props.get("currency"), str) else None
    for line in lines:
        fields = _product_fields(line)
        if fields is not None:
            fields["currency"] = currency
            products.learn(fields, paid=name in ORDER_EVENTS or name == REFUND_EVENT, trusted=trusted(source))
    carts.apply(name, props, lines, event.customer_id)
    if name in ORDER_EVENTS:
        order = OrderIn.model_validate(props)
        status = "paid" if name == "Order Completed" else (order.status or "placed")
        orders.record_order(
            session,
            order,
            customer_id=event.customer_id,
            placed_at=event.timestamp,
            source=source,
            now=now,
            status=status,
        )
    elif name in STATUS_EVENTS:
        order = OrderIn.model_validate(props)
        try:
            orders.set_status(session, order.order_id, STATUS_EVENTS[name], now=now)
        except NotFound:
            # A status for an order we have not seen yet: record the order with that status.
            order.status = STATUS_EVENTS[name]
            orders.record_order(
                session, order, customer_id=event.customer_id, placed_at=event.timestamp, source=source, now=now
            )
    elif name == REFUND_EVENT:
        order = OrderIn.model_validate(props)
        amount = props.get("total", props.get("revenue"))
        if amount is None and order.products:
            amount = sum(line.price * line.quantity for line in order.products)
        orders.refund(
            session,
            order.order_id,
            amount=None if amount is None else abs(float(amount)),
            refund_id=event.message_id,
            customer_id=event.customer_id,
            at=event.timestamp,
            now=now,
            source=source,
        )
