"""Why a journey's message has lost its reason since the event that started the journey: the cart was
bought or emptied, the product back in stock is out again, the price that dropped went back up. Asked by
the dispatcher just before a message leaves (the `purpose` guard), beside each domain's own checks."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.catalog.models import Product
from boomerang.db import in_chunks
from boomerang.messaging.models import Message
from boomerang.orders.models import Cart


def trigger_gone(session: Session, messages: list[Message]) -> dict[int, str]:
    """Message id -> why, for the messages whose triggering cart or product changed so they no longer fit."""
    about = {m.id: (m.trigger, m.subject) for m in messages if m.trigger and m.subject}
    by_key: dict[str, set[str]] = {"cart_id": set(), "sku": set()}
    for trigger, subject in about.values():
        if trigger.get("key") in by_key:
            by_key[trigger["key"]].add(subject)
    carts = {
        row.id: row
        for row in in_chunks(
            session,
            lambda ids: sa.select(Cart.id, Cart.order_id, Cart.lines).where(Cart.id.in_(ids)),
            by_key["cart_id"],
        )
    }
    products = {
        row.sku: row
        for row in in_chunks(
            session,
            lambda ids: sa.select(Product.sku, Product.in_stock, Product.price).where(Product.sku.in_(ids)),
            by_key["sku"],
        )
    }
    out = {}
    for message_id, (trigger, subject) in about.items():
        why = _why(trigger, carts.get(subject), products.get(subject))
        if why:
            out[message_id] = why
    return out


def _why(trigger: dict[str, Any], cart: Any, product: Any) -> str | None:
    key, event = trigger.get("key"), trigger.get("event")
    if key == "cart_id" and cart is not None:
        if cart.order_id:
            return "the cart was bought"
        if not cart.lines:
            return "the cart is empty"
    if key == "sku" and product is not None:
        if event == "Back In Stock" and not product.in_stock:
            return "the product is out of stock again"
        dropped_to = (trigger.get("properties") or {}).get("price")
        if event == "Price Dropped" and isinstance(dropped_to, int | float) and (product.price or 0) > dropped_to:
            return "the price went back up"
    return None
