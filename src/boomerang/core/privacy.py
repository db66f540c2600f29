"""What survives a customer's erasure, and how an erased address is recognised without being kept.

Plain functions, shared by the operational store's erasure (customers.privacy), the event log's
(events.log) and the domains' hooks, so the rule of what analytics may keep exists once:

- event properties keep only what counts and sums need (`analytics_properties`): order ids and totals,
  products, the segment or channel an event is about; free text, addresses and URLs go;
- an erased email or phone is remembered as a keyed hash of its normalised form (`address_digest`), the
  key derived from the workspace secret, so a stolen database alone does not say whose addresses they were.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

SUPPRESSIBLE = ("email", "phone")  # the address kinds an erasure keeps from coming back

# Event properties analytics reads (metrics.source, segments, journeys' triggers and goals, messaging results).
ANALYTICS_PROPERTIES = frozenset(
    {
        "order_id",
        "checkout_id",
        "cart_id",
        "total",
        "revenue",
        "subtotal",
        "value",
        "tax",
        "shipping",
        "discount",
        "currency",
        "coupon",
        "products",
        "sku",
        "product_id",
        "category",
        "brand",
        "variant",
        "price",
        "quantity",
        "segment",
        "version",
        "score",
        "from",
        "to",
        "channel",
        "template",
        "source",
        "message_id",
        "instance_id",
    }
)
# What each product of an order or a cart keeps.
PRODUCT_FIELDS = frozenset({"sku", "product_id", "name", "category", "brand", "variant", "price", "quantity"})


def analytics_properties(properties: dict[str, Any] | None) -> dict[str, Any]:
    """The properties an erased customer's event keeps: the allow-listed keys, scalar values only (a nested
    object could hold anything), and of `products` each product's own fields."""
    kept: dict[str, Any] = {}
    for key, value in (properties or {}).items():
        if key not in ANALYTICS_PROPERTIES:
            continue
        if key == "products" and isinstance(value, list):
            kept[key] = product_lines(value)
        elif value is None or isinstance(value, (str, int, float, bool)):
            kept[key] = value
    return kept


def product_lines(lines: list[Any]) -> list[dict[str, Any]]:
    """Products (of an event, or a cart's lines) with their catalogue fields only."""
    return [
        {k: v for k, v in line.items() if k in PRODUCT_FIELDS and (v is None or isinstance(v, (str, int, float)))}
        for line in lines
        if isinstance(line, dict)
    ]


def analytics_trigger(trigger: dict[str, Any] | None) -> dict[str, Any] | None:
    """The event that started a journey (`{"event", "key", "properties"}`), as an erased customer's messages and
    journey instances keep it."""
    if not trigger:
        return trigger
    return {
        "event": trigger.get("event"),
        "key": trigger.get("key"),
        "properties": analytics_properties(trigger.get("properties")),
    }


def normalise_address(kind: str, value: str) -> str:
    """The form an address is compared in: an email trimmed and lower-cased, a phone as its digits with a
    leading + kept. ValueError for another kind."""
    if kind == "email":
        return value.strip().lower()
    if kind == "phone":
        text = value.strip()
        return ("+" if text.startswith("+") else "") + re.sub(r"\D", "", text)
    raise ValueError(f"addresses of kind {kind!r} are not suppressed (one of {', '.join(SUPPRESSIBLE)})")


def digest_key(secret: bytes) -> bytes:
    """The key of address digests, derived from the workspace secret (and of no use for anything else)."""
    return hashlib.sha256(b"boomerang-suppression\0" + secret).digest()


def address_digest(key: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 of the normalised address: equal for the same address however it was written."""
    message = f"{kind}\0{normalise_address(kind, value)}".encode()
    return hmac.digest(key, message, "sha256").hex()
