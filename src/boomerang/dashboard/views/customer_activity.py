"""A customer's activity in words: their events, orders, the messages sent to them and their points, one feed,
newest first, each item with its time, a sentence and its raw details (shown behind a toggle)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

KINDS = ("events", "orders", "messages", "points")


@dataclass(frozen=True)
class Item:
    at: datetime
    kind: str  # one of KINDS
    text: str
    detail: str = ""  # raw details, as indented JSON text (escaped by the template)

    def __post_init__(self) -> None:  # the log's times may carry a zone, the store's are UTC without one
        if self.at.tzinfo is not None:
            object.__setattr__(self, "at", self.at.astimezone(UTC).replace(tzinfo=None))


def _props(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = orjson.loads(raw) if isinstance(raw, (str, bytes)) and raw else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _product(p: dict[str, Any]) -> str:
    name = p.get("name") or p.get("title") or p.get("sku") or p.get("product_id")
    return f"“{name}”" if name else "a product"


def _money(value: Any, currency: Any) -> str:
    try:
        return f"{float(value):,.2f}" + (f" {currency}" if currency else "")
    except (TypeError, ValueError):
        return ""


def _order(p: dict[str, Any], verb: str) -> str:
    order = p.get("order_id") or p.get("orderId") or ""
    amount = _money(p.get("total") if p.get("total") is not None else p.get("revenue"), p.get("currency"))
    return " ".join(filter(None, (verb, f"order {order}" if order else "an order", f"for {amount}" if amount else "")))


SENTENCES = {
    "Product Viewed": lambda p: f"Viewed {_product(p)}",
    "Product Clicked": lambda p: f"Clicked {_product(p)}",
    "Product Added": lambda p: f"Added {_product(p)} to the cart",
    "Product Removed": lambda p: f"Removed {_product(p)} from the cart",
    "Product Added to Wishlist": lambda p: f"Added {_product(p)} to the wishlist",
    "Product Reviewed": lambda p: f"Reviewed {_product(p)}" + (f", {p['rating']} stars" if p.get("rating") else ""),
    "Product List Viewed": lambda p: "Viewed a list of products" + (f" ({p['list_id']})" if p.get("list_id") else ""),
    "Cart Viewed": lambda p: "Looked at the cart",
    "Checkout Started": lambda p: (
        "Started a checkout" + (f" of {_money(p.get('value'), p.get('currency'))}" if p.get("value") else "")
    ),
    "Order Completed": lambda p: _order(p, "Placed"),
    "Order Updated": lambda p: _order(p, "Updated"),
    "Order Cancelled": lambda p: _order(p, "Cancelled"),
    "Order Refunded": lambda p: _order(p, "Got a refund on"),
    "Order Shipped": lambda p: _order(p, "Was sent"),
    "Order Delivered": lambda p: _order(p, "Received"),
    "Signed Up": lambda p: "Signed up",
    "Telegram Bot Joined": lambda p: "Joined the Telegram bot",
    "Segment Entered": lambda p: f"Entered the segment {p.get('segment') or ''}".strip(),
    "Segment Exited": lambda p: f"Left the segment {p.get('segment') or ''}".strip(),
    "Lifecycle Stage Changed": lambda p: (
        f"Became {p.get('to') or 'another stage'}" + (f" (was {p['from']})" if p.get("from") else "")
    ),
    "Loyalty Tier Changed": lambda p: f"Moved {p.get('direction') or 'to'} to the {p.get('to') or 'next'} tier",
    "Loyalty Points Expiring": lambda p: f"Was told {p.get('points') or 'some'} points expire soon",
    "NPS Survey Answered": lambda p: f"Answered the NPS survey: {p.get('score', '?')}",
    "Back In Stock": lambda p: f"{_product(p).capitalize()} they wanted is back in stock",
    "Price Dropped": lambda p: f"The price of {_product(p)} they wanted dropped",
}


def event_text(kind: str, event: str | None, properties: Any) -> str:
    """An event as a sentence: the known ones in words, others by their name (identify, page and the like too)."""
    p = _props(properties)
    if kind == "identify":
        return "Was identified" + (f" ({', '.join(sorted(p)[:5])})" if p else "")
    if kind == "page":
        return "Visited " + str(p.get("url") or p.get("path") or p.get("name") or "a page")
    if event in SENTENCES:
        return SENTENCES[event](p)
    return str(event or kind or "an event")


def _pretty(value: Any) -> str:
    if value in (None, "", {}, []):
        return ""
    value = _props(value) if isinstance(value, (str, bytes)) else value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode() if value else ""


def events(rows: list[dict[str, Any]]) -> list[Item]:
    """From the dashboard's page of a customer's events (dashboard.data.Analytics.events)."""
    return [
        Item(e["timestamp"], "events", event_text(e["type"], e["event"], e["properties"]), e["properties"])
        for e in rows
    ]


def orders(rows) -> list[Item]:
    out = []
    for o in rows:
        text = f"Order {o.id}: {o.status.replace('_', ' ')}, {_money(o.total, o.currency)}"
        if o.refunded_total:
            text += f", {_money(o.refunded_total, o.currency)} refunded"
        detail = {"source": o.source, "coupon": o.coupon, "attributes": o.attributes or None}
        out.append(Item(o.placed_at, "orders", text, _pretty({k: v for k, v in detail.items() if v})))
    return out


def messages(rows: list[dict[str, Any]]) -> list[Item]:
    """From journeys' `customer_journeys(...)["messages"]` or the delivery log's message rows."""
    out = []
    for m in rows:
        channel = m.get("channel") or " / ".join(m.get("channels") or []) or "a channel"
        text = f"Message “{m.get('template')}” by {channel}: {str(m.get('status', '')).replace('_', ' ')}"
        if m.get("reason"):
            text += f" ({m['reason']})"
        detail = {k: m.get(k) for k in ("key", "source", "variant", "attempts") if m.get(k)}
        out.append(Item(m.get("sent_at") or m["created_at"], "messages", text, _pretty(detail)))
    return out


def points(rows: list[dict[str, Any]], unit: str) -> list[Item]:
    """From loyalty.view.history."""
    out = []
    for t in rows:
        change = t.get("change") or {}
        moved = ", ".join(f"{v:+,} {unit} {'spendable' if k == 'wallet' else k}" for k, v in change.items())
        why = t.get("reason") or t.get("source") or ""
        text = " ".join(filter(None, (str(t.get("kind", "")).replace("_", " ").capitalize(), moved and f"({moved})")))
        if t.get("order_id"):
            text += f" for order {t['order_id']}"
        if why and why != "order":
            text += f": {why}"
        out.append(Item(t["at"], "points", text, _pretty(t.get("detail"))))
    return out


def feed(*groups: list[Item], only: str = "") -> list[Item]:
    """The items of every group (or of the `only` kind), newest first."""
    items = [i for group in groups for i in group if not only or i.kind == only]
    return sorted(items, key=lambda i: i.at, reverse=True)
