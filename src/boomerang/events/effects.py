"""What accepted events change besides the log: profiles and identities, consents, products, orders.

`apply` runs a batch of checked events in order within the caller's transaction, and sets each
event's customer id. The tracking API's events come here from the inbox (see flush.process);
Boomerang's own calls (REST, importers) come here at once (ingest.ingest).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.catalog.models import Product
from boomerang.catalog.service import ProductLearner
from boomerang.core.vocab import speaks_for_customer
from boomerang.customers import bulk as customers_bulk
from boomerang.customers import privacy, profiles
from boomerang.customers.identity import Resolver
from boomerang.customers.models import Customer
from boomerang.db import in_chunks
from boomerang.events import ecommerce, own
from boomerang.events.schemas import Event
from boomerang.loyalty import orders as loyalty
from boomerang.loyalty import reactions, rules, tiers
from boomerang.orders.carts import CartKeeper, cart_id
from boomerang.orders.models import Order, OrderLine

CLAIMED_IDENTITIES = (("email", "email"), ("phone", "phone"), ("telegram", "telegram_chat_id"))


def apply(session: Session, events: list[Event], *, now: datetime) -> None:
    """Resolve every event's profile and apply its effects, in order; flushes, does not commit."""
    if not events:
        return
    resolver = Resolver(session, now=now)
    resolver.preload(
        {("user", e.user_id) for e in events if e.user_id}
        | {("anonymous", e.anonymous_id) for e in events if e.anonymous_id}
        | {("user", e.previous_id) for e in events if e.previous_id}
        | {("anonymous", e.previous_id) for e in events if e.previous_id}
        | {("device", _device(e)) for e in events if e.user_id and _device(e)}
    )
    products = ProductLearner(session, set().union(*(ecommerce.skus(e) for e in events)), now=now)
    carts = CartKeeper(session, {c for e in events if (c := cart_id(e.properties))}, now=now)
    seen: dict[str, tuple[datetime, datetime]] = {}
    with session.no_autoflush:
        for event in events:
            cid = event.customer_id = event.customer_id or _resolve(resolver, event)  # Boomerang's own know theirs
            first, last = seen.get(cid, (event.timestamp, event.timestamp))
            seen[cid] = (min(first, event.timestamp), max(last, event.timestamp))
            if event.user_id:
                resolver.claim("device", _device(event), cid)
            if event.type == "identify":
                _identify(session, resolver, resolver.customer(cid), event, now=now)
            ecommerce.apply(session, event, now=now, source=event.source, products=products, carts=carts)
    session.flush()
    products.write()
    carts.write()
    orders = _orders(session, events)
    loyalty.follow(session, orders, now=now, baskets=order_baskets)  # points earned, taken back, given back
    changed = tiers.follow(session, {o.customer_id for o in orders}, now=now, spending=order_spending)  # tiers up
    changed += reactions.follow(session, events, orders, now=now)  # bonuses, referrals, achievements
    log_loyalty_notices(session, changed)
    customers_bulk.touch_seen(session, _follow(seen, resolver.merged))


def _orders(session: Session, events: list[Event]) -> list[Order]:
    """The orders these events touched, as they stand now."""
    ids = {e.properties.get("order_id", e.properties.get("id")) for e in events if e.event in ecommerce.ORDER_ID_EVENTS}
    return [order for i in sorted(map(str, ids - {None})) if (order := session.get(Order, i)) is not None]


def order_spending(session: Session, customer_ids: Sequence[str], since: datetime) -> dict[str, tiers.Qualified]:
    """What counts towards loyalty tiers (`tiers.Spending`): each customer's paid orders placed after `since`, and
    their total net of refunds."""
    net = Order.total - sa.func.coalesce(Order.refunded_total, 0)
    rows = in_chunks(
        session,
        lambda ids: (
            sa.select(Order.customer_id, sa.func.sum(net), sa.func.count())
            .where(Order.customer_id.in_(ids), Order.status.in_(tiers.QUALIFYING_STATUSES), Order.placed_at > since)
            .group_by(Order.customer_id)
        ),
        customer_ids,
    )
    return {cid: tiers.Qualified(float(spend or 0), int(n)) for cid, spend, n in rows}


def order_baskets(session: Session, order_ids: Sequence[str]) -> dict[str, list[rules.Line]]:
    """Orders' lines as the earn rules read them (`loyalty.orders.Baskets`), with their products' brand and catalog
    price."""
    rows = in_chunks(
        session,
        lambda ids: (
            sa.select(  # columns, not ORM objects: a large import reads hundreds of thousands of lines
                OrderLine.order_id,
                OrderLine.quantity,
                OrderLine.unit_price,
                OrderLine.sku,
                OrderLine.category,
                OrderLine.name,
                Product.brand,
                Product.price,
            )
            .outerjoin(Product, Product.sku == OrderLine.sku)
            .where(OrderLine.order_id.in_(ids))
            .order_by(OrderLine.order_id, OrderLine.line_no)
        ),
        order_ids,
    )
    out: dict[str, list[rules.Line]] = {}
    for line in rows:
        out.setdefault(line.order_id, []).append(
            rules.Line(
                amount=float(line.quantity or 0) * float(line.unit_price or 0),
                sku=line.sku,
                category=line.category,
                brand=line.brand,
                name=line.name,
                catalog_price=line.price,
                unit_price=line.unit_price,
            )
        )
    return out


def log_loyalty_notices(session: Session, notices: list[tiers.Notice]) -> None:
    """Loyalty's events (tier changes, points about to expire) into the inbox: the next flush logs them, and
    journeys start from them."""
    own.log_later(
        session,
        [
            own.internal(n.message_id, n.event, n.customer_id, at=n.at, source="loyalty", properties=n.properties)
            for n in notices
        ],
    )


def _resolve(resolver: Resolver, event: Event) -> str:
    cid = resolver.resolve(event.user_id, event.anonymous_id)
    if event.type == "alias":
        previous = resolver.find_id("user", event.previous_id) or resolver.find_id("anonymous", event.previous_id)
        if previous is None:
            resolver.link("anonymous", event.previous_id, cid)
        elif previous != cid:
            resolver.merge(resolver.customer(previous), resolver.customer(cid), reason="alias")
    return cid


def _follow(seen: dict[str, tuple[datetime, datetime]], merged: dict[str, str]) -> dict[str, tuple[datetime, datetime]]:
    """The time ranges of profiles merged away during the batch, moved to where they went."""
    out: dict[str, tuple[datetime, datetime]] = {}
    for cid, (first, last) in seen.items():
        cid = merged.get(cid, cid)
        before = out.get(cid, (first, last))
        out[cid] = (min(before[0], first), max(before[1], last))
    return out


def _device(event: Event) -> str | None:
    """The device id a mobile SDK sends in context.device.id."""
    device = event.context.get("device")
    value = device.get("id") if isinstance(device, dict) else None
    return str(value)[:320] if value not in (None, "") else None


def _identify(session: Session, resolver: Resolver, customer: Customer, event: Event, *, now: datetime) -> None:
    """Traits onto the profile; a trait sent as null clears its field. From the public write key alone a browser
    may tell what is not known yet, nothing that would send someone's messages elsewhere: an address the customer
    already has is kept and a consent already given or refused stands. With the user id signed by the shop's
    server (`verified`), or from the server itself, the customer's addresses and consents change, and an address
    replaced or cleared no longer finds them."""
    columns, attributes = profiles.profile_changes(event.traits)
    for key in ("timezone", "locale"):
        if key not in columns and isinstance(event.context.get(key), str):
            columns[key] = event.context[key]
    consents = profiles.consent_changes(event.traits)
    for kind in ("email", "phone"):  # an erased customer's address is not taken again (privacy.suppression)
        if privacy.is_suppressed(session, kind, columns.get(kind)):
            columns.pop(kind)
    if not speaks_for_customer(event.source):
        for _, column in CLAIMED_IDENTITIES:
            if getattr(customer, column) is not None:
                columns.pop(column, None)
        consents = {c: granted for c, granted in consents.items() if not profiles.has_consent(session, customer, c)}
    for kind, column in CLAIMED_IDENTITIES:
        old = getattr(customer, column)
        if column in columns and old is not None and columns[column] != old:
            resolver.unlink(kind, old, customer.id)
    profiles.apply_profile(customer, columns, attributes, now=now)
    for kind, column in CLAIMED_IDENTITIES:
        resolver.claim(kind, columns.get(column), customer.id)
    for channel, granted in consents.items():
        profiles.set_consent(session, customer, channel, granted, source=event.source, at=event.timestamp)
