"""Carts: what the cart events of a batch change, read once and written at the end (like products).

`Product Added` adds a line (or more of one), `Product Removed` takes it away, `Cart Viewed` and
`Checkout Started` with their `products` say what the cart holds now, and an `Order Completed` with the
cart's id marks it bought. Events without a `cart_id` change no cart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.db import in_chunks, upsert
from boomerang.orders.models import Cart
from boomerang.orders.schemas import LineIn

ADDED, REMOVED, ORDERED = "Product Added", "Product Removed", "Order Completed"
LISTED = ("Cart Viewed", "Checkout Started")
CART_EVENTS = (ADDED, REMOVED, ORDERED, *LISTED)
LINE_FIELDS = ("sku", "name", "price", "quantity", "url", "image_url")


def cart_id(properties: dict[str, Any]) -> str | None:
    """The event's cart id as text (numbers too), or None."""
    value = properties.get("cart_id")
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)[:128]


def _line(line: LineIn) -> dict[str, Any]:
    return {f: getattr(line, f) for f in LINE_FIELDS}


class CartKeeper:
    """The carts a batch of events touches."""

    def __init__(self, session: Session, ids: set[str], *, now: datetime) -> None:
        self.session, self.now = session, now
        table = Cart.__table__
        rows = in_chunks(session, lambda chunk: sa.select(table).where(table.c.id.in_(chunk)), ids)
        self.carts: dict[str, dict[str, Any]] = {row.id: dict(row._mapping) for row in rows}
        self.touched: set[str] = set()

    def apply(self, event: str, properties: dict[str, Any], lines: list[LineIn], customer_id: str | None) -> None:
        cid = cart_id(properties)
        if cid is None or event not in CART_EVENTS:
            return
        cart = self.carts.setdefault(
            cid, {"id": cid, "customer_id": customer_id, "lines": [], "currency": None, "order_id": None}
        )
        cart["customer_id"] = customer_id or cart["customer_id"]
        currency = properties.get("currency")
        if isinstance(currency, str) and len(currency) == 3:
            cart["currency"] = currency
        if event == ORDERED:
            cart["order_id"] = str(properties.get("order_id") or properties.get("id") or "") or None
        elif event in LISTED and "products" in properties:
            cart["lines"] = [_line(line) for line in lines if line.sku]
        elif event in (ADDED, REMOVED) and lines and lines[0].sku:
            cart["lines"] = _changed(cart["lines"], _line(lines[0]), -1 if event == REMOVED else 1)
        self.touched.add(cid)

    def write(self) -> None:
        if self.touched:
            rows = [{**self.carts[cid], "updated_at": self.now} for cid in sorted(self.touched)]
            conn = self.session.connection()
            conn.execute(upsert(conn, Cart.__table__, ["id"], rows), rows)
        self.touched = set()


def _changed(lines: list[dict[str, Any]], line: dict[str, Any], sign: int) -> list[dict[str, Any]]:
    """The cart's lines with `line`'s quantity added (sign 1) or taken away (-1); a line at 0 goes."""
    out, found = [], False
    for current in lines:
        if current["sku"] == line["sku"]:
            found = True
            quantity = current["quantity"] + sign * line["quantity"]
            fresh = {k: v for k, v in line.items() if v is not None} if sign > 0 else {}  # an add may say more
            current = {**current, **fresh, "quantity": quantity}
        if current["quantity"] > 0:
            out.append(current)
    if not found and sign > 0:
        out.append(line)
    return out
