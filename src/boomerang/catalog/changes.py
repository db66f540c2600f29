"""Changes of a product that its customers may care about: back in stock, a lower price.

Every write of the catalog (the API's upsert and stock calls, feeds and other bulk loads, what tracked
events teach) compares each product's offer before and after and records these changes in
`catalog_changes`, in the caller's transaction: a change is stored exactly when the product's new state
is. The pipeline's round then fans each change out, once, to the customers interested in the product
(orchestration.catalog_signals), and marks it fanned out.

- back_in_stock: the product could not be bought (`in_stock` false, or a stock quantity of 0) and now
  can; old_value and new_value are the stock quantities (None where the shop does not count them).
- price_dropped: the price went down, in the same currency; old_value and new_value are the prices.

A new product changes nothing: nobody could have waited for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.catalog.models import CatalogChange, Product
from boomerang.db import chunked, in_chunks

BACK_IN_STOCK, PRICE_DROPPED = "back_in_stock", "price_dropped"
KINDS = (BACK_IN_STOCK, PRICE_DROPPED)
OFFER_FIELDS = ("price", "currency", "in_stock", "stock_quantity")


@dataclass(frozen=True)
class Offer:
    """What the signals look at in a product: its price, and whether it can be bought."""

    price: float | None
    currency: str | None
    in_stock: bool
    stock_quantity: int | None

    @property
    def available(self) -> bool:
        return bool(self.in_stock) and (self.stock_quantity is None or self.stock_quantity > 0)

    def updated(self, fields: Mapping[str, Any]) -> Offer:
        """The offer once these product fields are written (fields not given stay as they are)."""
        return replace(self, **{name: fields[name] for name in OFFER_FIELDS if name in fields})


def offer(product: Product) -> Offer:
    return Offer(product.price, product.currency, product.in_stock, product.stock_quantity)


def offers(session: Session, skus: Iterable[str]) -> dict[str, Offer]:
    """The stored offers of the known products among these skus (for writes that bypass the ORM)."""
    table = Product.__table__
    columns = [table.c[name] for name in OFFER_FIELDS]
    rows = in_chunks(session, lambda chunk: sa.select(table.c.sku, *columns).where(table.c.sku.in_(chunk)), skus)
    return {row.sku: Offer(*row[1:]) for row in rows}


def detect(before: Offer, after: Offer) -> list[tuple[str, float | None, float | None]]:
    """(kind, old_value, new_value) of each change from `before` to `after` worth telling customers."""
    found = []
    if after.available and not before.available:
        found.append((BACK_IN_STOCK, before.stock_quantity, after.stock_quantity))
    same_currency = before.currency is None or after.currency is None or before.currency == after.currency
    if before.price is not None and after.price is not None and after.price < before.price and same_currency:
        found.append((PRICE_DROPPED, before.price, after.price))
    return found


def record(session: Session, changed: Iterable[tuple[str, Offer, Offer]], *, now: datetime) -> int:
    """Store the changes of each (sku, before, after) for the round to fan out; returns how many. Flushes."""
    rows = [
        {"sku": sku, "kind": kind, "old_value": old, "new_value": new, "at": now, "fanned_out_at": None}
        for sku, before, after in changed
        for kind, old, new in detect(before, after)
    ]
    if rows:
        session.execute(sa.insert(CatalogChange), rows)
    return len(rows)


def pending(session: Session, *, limit: int) -> list[CatalogChange]:
    """The oldest changes not fanned out yet."""
    query = sa.select(CatalogChange).where(CatalogChange.fanned_out_at.is_(None)).order_by(CatalogChange.id)
    return list(session.scalars(query.limit(limit)))


def claim(session: Session, ids: Iterable[int], *, at: datetime) -> set[int]:
    """Mark these changes fanned out, unless another worker already did; returns the ids this call marked.
    The caller writes their events in the same transaction, so a change is fanned out once or not at all."""
    table = CatalogChange.__table__
    marked: set[int] = set()
    for chunk in chunked(ids):
        update = sa.update(table).where(table.c.id.in_(chunk), table.c.fanned_out_at.is_(None))
        marked.update(session.scalars(update.values(fanned_out_at=at).returning(table.c.id)))
    return marked
