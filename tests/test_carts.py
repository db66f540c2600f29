"""Carts as their events describe them: lines added, removed, listed, and the order that bought the cart."""

from __future__ import annotations

from boomerang.events.ingest import record
from boomerang.orchestration.rounds import move_events
from boomerang.orders.models import Cart
from messaging_data import NOW


def _send(ws, *events: tuple[str, dict]) -> None:
    with ws.uow.session() as session:
        messages = [{"type": "track", "userId": "ann", "event": e, "properties": p} for e, p in events]
        record(session, messages, now=NOW, limits=ws.settings.ingest, source="test")
    move_events(ws)


def _cart(ws, cart_id: str) -> tuple[list[tuple], str | None]:
    with ws.uow.session() as session:
        cart = session.get(Cart, cart_id)
        return [(line["sku"], line["quantity"], line["price"]) for line in cart.lines], cart.order_id


def test_a_cart_follows_its_events(ws):
    _send(
        ws,
        ("Product Added", {"cart_id": "c1", "sku": "MUG", "price": 10, "quantity": 2}),
        ("Product Added", {"cart_id": "c1", "sku": "TEA", "price": 4}),
        ("Product Added", {"cart_id": "c1", "sku": "MUG", "price": 10}),
        ("Product Removed", {"cart_id": "c1", "sku": "TEA"}),
        ("Product Added", {"sku": "NO-CART"}),
    )
    assert _cart(ws, "c1") == ([("MUG", 3.0, 10.0)], None)
    _send(ws, ("Cart Viewed", {"cart_id": 7, "products": [{"sku": "CUP", "price": 3, "quantity": 1}]}))
    assert _cart(ws, "7") == ([("CUP", 1.0, 3.0)], None)
    _send(ws, ("Order Completed", {"order_id": "o-1", "cart_id": "c1", "total": 30}))
    assert _cart(ws, "c1") == ([("MUG", 3.0, 10.0)], "o-1")
