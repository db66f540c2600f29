"""Catalog signals: each recorded change of a product (catalog.changes) becomes one event per customer
interested in it, `Back In Stock` or `Price Dropped` with the product's `sku`, from which the ready-made
journeys back_in_stock and price_drop start.

Who is interested, as the event log shows it at the change (`sku`, or Segment's `product_id`):

- Back In Stock: who viewed the product or added it to a cart (`Product Viewed`, `Product Added`) within
  `interest_days` of the change, or asked to be told (`Back In Stock Subscribed`, at any time, until a
  `Back In Stock` for that product reached them);
- Price Dropped: who viewed it, added it to a cart or to a wish list (`Product Added to Wishlist`)
  within `interest_days`;

and, in both cases, has not bought it since (an `Order Completed` with the product, not cancelled).

The log is read outside the store's transaction; then, in one transaction, the changes are marked fanned
out (unless another worker did it first) and their events stored in the inbox as processed, with message
ids `catalog:{change}:{customer}`: a change is fanned out once or not at all, and the next flush moves its
events into the log, where journeys and segments see them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import ibis
import pandas as pd
from sqlalchemy.orm import Session

from boomerang.catalog.changes import BACK_IN_STOCK, PRICE_DROPPED, claim, pending
from boomerang.catalog.models import CatalogChange, Product
from boomerang.catalog.service import preload
from boomerang.db import UnitOfWork
from boomerang.events import own
from boomerang.events.log import EventLog
from boomerang.metrics import source

EVENTS = {BACK_IN_STOCK: "Back In Stock", PRICE_DROPPED: "Price Dropped"}
SUBSCRIBED = "Back In Stock Subscribed"  # a customer asks to be told when a product is back: {sku}
INTEREST = {  # the events that show interest within the window, per kind of change
    BACK_IN_STOCK: ("Product Viewed", "Product Added"),
    PRICE_DROPPED: ("Product Viewed", "Product Added", "Product Added to Wishlist"),
}
SOURCE = "catalog"
BATCH = 500  # changes per query of the log and per transaction


def fan_out(uow: UnitOfWork, log: EventLog, *, now: datetime, interest_days: int) -> dict[str, int]:
    """Fan out every pending change; returns how many changes and how many events."""
    done = {"changes": 0, "events": 0}
    window = timedelta(days=interest_days)
    while True:
        with uow.session() as session:
            batch = pending(session, limit=BATCH)
        if not batch:
            return done
        audience = _audience(log, batch, window)
        with uow.session() as session:
            claimed = claim(session, [c.id for c in batch], at=now)
            events = _events(session, [c for c in batch if c.id in claimed], audience)
            own.log_later(session, events)
        done["changes"] += len(claimed)
        done["events"] += len(events)
        if len(batch) < BATCH or not claimed:
            return done  # all done, or another worker is on the same changes


def _audience(log: EventLog, batch: list[CatalogChange], window: timedelta) -> dict[int, list[str]]:
    """The customers interested in each change, by change id, in customer id order."""
    frame = pd.DataFrame(
        {
            "change_id": [c.id for c in batch],
            "sku": [c.sku for c in batch],
            "kind": [c.kind for c in batch],
            "at": pd.to_datetime([c.at for c in batch]),
            "since": pd.to_datetime([c.at - window for c in batch]),
        }
    )
    with log.reader() as r:
        rows = interested(r.events, ibis.memtable(frame)).execute()
    audience: dict[int, list[str]] = defaultdict(list)
    for change_id, customer_id in sorted(zip(rows["change_id"].tolist(), rows["customer_id"].tolist())):
        audience[int(change_id)].append(customer_id)
    return audience


def interested(events: ibis.Table, changed: ibis.Table) -> ibis.Table:
    """change_id, customer_id: who is interested in each change (change_id, sku, kind, at, since)."""
    skus = changed.select("sku").distinct()
    interest = _interest(events, changed)
    told = _told(events, skus)
    interest = interest.left_join(told, ["customer_id", "sku"])
    interest = interest.filter(~interest.asked | interest.told_at.isnull() | (interest.ts > interest.told_at))
    last = interest.group_by(["change_id", "sku", "customer_id"]).aggregate(last=interest.ts.max())
    bought = _bought(events, skus)
    last = last.left_join(bought, ["customer_id", "sku"])
    return last.filter(last.bought_at.isnull() | (last.bought_at < last.last)).select("change_id", "customer_id")


def _sku(t: ibis.Table) -> ibis.Value:
    """The product an event is about: its `sku`, or Segment's `product_id`."""
    return source.text(t, "sku").coalesce(source.text(t, "product_id"))


def _interest(events: ibis.Table, changed: ibis.Table) -> ibis.Table:
    """change_id, sku, customer_id, ts, asked: each event showing interest in a changed product, as of its change."""
    names = sorted({SUBSCRIBED, *(n for names in INTEREST.values() for n in names)})
    e = events.filter(events.event.isin(names) & events.customer_id.notnull())
    e = e.select("customer_id", "event", ts=e.timestamp, sku=_sku(e))
    j = e.join(changed, "sku")
    windowed = ibis.or_(*((j.kind == kind) & j.event.isin(shown) for kind, shown in INTEREST.items()))
    asked = (j.kind == BACK_IN_STOCK) & (j.event == SUBSCRIBED)
    j = j.filter((j.ts <= j.at) & ((windowed & (j.ts >= j.since)) | asked))
    return j.select("change_id", "sku", "customer_id", "ts", asked=asked)


def _told(events: ibis.Table, skus: ibis.Table) -> ibis.Table:
    """customer_id, sku, told_at: the last Back In Stock each customer had of each of these products."""
    e = events.filter((events.event == EVENTS[BACK_IN_STOCK]) & events.customer_id.notnull())
    e = e.select("customer_id", ts=e.timestamp, sku=_sku(e)).semi_join(skus, "sku")
    return e.group_by(["customer_id", "sku"]).aggregate(told_at=e.ts.max())


def _bought(events: ibis.Table, skus: ibis.Table) -> ibis.Table:
    """customer_id, sku, bought_at: the last purchase (not cancelled) of each of these products by each customer."""
    completed = events.filter((events.event == source.ORDER_COMPLETED) & events.customer_id.notnull())
    lines = completed.select(
        "customer_id",
        order_id=source.text(completed, "order_id"),
        ts=completed.timestamp,
        product=completed.properties["products"].array,
    ).unnest("product")
    lines = lines.select(
        "customer_id", "order_id", "ts", sku=lines["product"]["sku"].str.coalesce(lines["product"]["product_id"].str)
    )
    lines = lines.semi_join(skus, "sku").semi_join(source.purchases(events).select("order_id"), "order_id")
    return lines.group_by(["customer_id", "sku"]).aggregate(bought_at=lines.ts.max())


def _events(session: Session, batch: list[CatalogChange], audience: dict[int, list[str]]) -> list[dict]:
    """The inbox rows of these changes' events, one per interested customer."""
    products = preload(session, {c.sku for c in batch})
    return [
        own.internal(
            f"catalog:{change.id}:{customer_id}",
            EVENTS[change.kind],
            customer_id,
            at=change.at,
            source=SOURCE,
            properties=properties(change, products.get(change.sku)),
        )
        for change in batch
        for customer_id in audience.get(change.id, [])
    ]


def properties(change: CatalogChange, product: Product | None) -> dict[str, Any]:
    """What a signal says: the product (sku, name, currency) and what changed."""
    out: dict[str, Any] = {"sku": change.sku}
    if product is not None:
        out.update(name=product.name, currency=product.currency, url=product.url)
    if change.kind == BACK_IN_STOCK:
        quantity = None if change.new_value is None else int(change.new_value)
        out.update(stock_quantity=quantity, price=product.price if product else None)
    else:
        old, new = change.old_value, change.new_value
        out.update(old_price=old, price=new, drop_percent=round((old - new) / old * 100, 1))
    return out
