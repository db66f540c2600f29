"""Catalog writes: product upserts (API, feeds, events) and stock changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.catalog import changes
from boomerang.catalog.models import Product
from boomerang.catalog.schemas import ProductIn, StockChange
from boomerang.core.errors import NotFound
from boomerang.db import among, chunked, in_chunks, upsert

PRODUCT_FIELDS = ("name", "category", "brand", "price", "currency", "in_stock", "stock_quantity", "url", "image_url")


def upsert_products(session: Session, products: list[ProductIn], *, now: datetime) -> dict[str, int]:
    """Insert new products and replace the given fields of known ones; returns counts. A product back in
    stock or cheaper is recorded as a change (catalog.changes). Flushes."""
    existing = preload(session, {p.sku for p in products})
    before = {sku: changes.offer(product) for sku, product in existing.items()}
    created = updated = 0
    for item in products:
        data = item.model_dump(exclude_unset=True)
        product = existing.get(item.sku)
        if product is None:
            product = Product(sku=item.sku, attributes={}, in_stock=True, created_at=now, updated_at=now)
            session.add(product)
            existing[item.sku] = product
            created += 1
        else:
            updated += 1
        for name in PRODUCT_FIELDS:
            if name in data:
                setattr(product, name, data[name])
        if data.get("attributes"):
            product.attributes = {**(product.attributes or {}), **data["attributes"]}
        product.updated_at = now
    _record(session, before, existing, now=now)
    return {"created": created, "updated": updated}


def change_stock(session: Session, stock: list[StockChange], *, now: datetime) -> int:
    """Apply stock changes; an unknown sku fails the whole call. A product back in stock is recorded as a
    change (catalog.changes). Flushes."""
    products = preload(session, {c.sku for c in stock})
    before = {sku: changes.offer(product) for sku, product in products.items()}
    for index, change in enumerate(stock):
        product = products.get(change.sku)
        if product is None:
            raise NotFound(f"unknown sku '{change.sku}'", field=f"[{index}].sku")
        if change.stock_quantity is not None:
            product.stock_quantity = change.stock_quantity
            product.in_stock = change.stock_quantity > 0
        if change.in_stock is not None:
            product.in_stock = change.in_stock
        product.updated_at = now
    _record(session, before, products, now=now)
    return len(stock)


def _record(session: Session, before: dict[str, changes.Offer], products: dict[str, Product], *, now: datetime) -> None:
    """Record what changed between each product's offer before the call and now (the net change of the call:
    the same sku twice is one change), then flush."""
    changes.record(session, ((sku, offer, changes.offer(products[sku])) for sku, offer in before.items()), now=now)
    session.flush()


def preload(session: Session, skus: set[str]) -> dict[str, Product]:
    """The known products among these skus, keyed by sku, in one query per 5,000."""
    return {
        p.sku: p for chunk in chunked(skus) for p in session.scalars(sa.select(Product).where(Product.sku.in_(chunk)))
    }


class ProductLearner:
    """What a batch of events tells about products (never their stock: events do not know it).

    Reads the batch's products once, and writes only the new and the changed ones, with one
    statement each, when `write` is called; a lower price it writes is recorded as a change
    (catalog.changes), as any other write of the catalog.
    """

    FIELDS = ("name", "category", "brand", "price", "currency", "url", "image_url")

    def __init__(self, session: Session, skus: set[str], *, now: datetime) -> None:
        self.session, self.now = session, now
        table = Product.__table__
        rows = in_chunks(
            session,
            lambda chunk: sa.select(table.c.sku, *(table.c[f] for f in self.FIELDS)).where(
                among(session, table.c.sku, chunk)
            ),
            skus,
        )
        self.known: dict[str, dict] = {row.sku: dict(row._mapping) for row in rows}
        self.stored = {sku: self._offer(row) for sku, row in self.known.items()}  # as the store has them
        self.new: dict[str, dict] = {}
        self.changed: set[str] = set()

    def learn(self, fields: dict[str, Any], *, paid: bool = False, trusted: bool = True) -> None:
        """What one event says of a product. `paid`: a line of an order, whose price may carry a discount, so
        it fills a missing price but never changes one (nor sends everyone interested a price drop).
        Untrusted (the public write key): it fills what the catalog does not know, never changes what it does."""
        sku = fields["sku"]
        current = self.known.get(sku)
        if current is None:
            current = self.known[sku] = self.new[sku] = {"sku": sku, **dict.fromkeys(self.FIELDS)}
        for name in self.FIELDS:
            if current[name] is not None and (not trusted or (paid and name == "price")):
                continue
            if fields.get(name) is not None and current[name] != fields[name]:
                current[name] = fields[name]
                if sku not in self.new:
                    self.changed.add(sku)

    def write(self) -> None:
        table, conn = Product.__table__, self.session.connection()
        if self.new:
            rows = [
                {**row, "in_stock": True, "attributes": {}, "created_at": self.now, "updated_at": self.now}
                for row in self.new.values()
            ]
            # Another request may have just added the same sku: then this one's fields win.
            conn.execute(upsert(conn, table, ["sku"], rows), rows)
        if self.changed:
            conn.execute(
                sa.update(table)
                .where(table.c.sku == sa.bindparam("key"))
                .values({f: sa.bindparam(f) for f in (*self.FIELDS, "updated_at")}),
                [{**self.known[sku], "key": sku, "updated_at": self.now} for sku in sorted(self.changed)],
            )
            written = {sku: self._offer(self.known[sku]) for sku in self.changed}
            changes.record(
                self.session, ((sku, self.stored[sku], written[sku]) for sku in sorted(written)), now=self.now
            )
            self.stored.update(written)
        self.stored.update({sku: self._offer(row) for sku, row in self.new.items()})
        self.new, self.changed = {}, set()

    @staticmethod
    def _offer(row: dict) -> changes.Offer:
        """A product's price as an offer; the learner never touches stock, so that part stays equal."""
        return changes.Offer(row["price"], row["currency"], in_stock=True, stock_quantity=None)


def listing(
    session: Session, *, category: str | None = None, in_stock: bool | None = None, limit: int = 100, offset: int = 0
) -> list[Product]:
    """Products by sku; `category` takes its subcategories too (Kitchen takes Kitchen > Mugs)."""
    query = sa.select(Product)
    if category:
        query = query.where(sa.or_(Product.category == category, Product.category.like(f"{category} > %")))
    if in_stock is not None:
        query = query.where(Product.in_stock.is_(in_stock))
    return list(session.scalars(query.order_by(Product.sku).limit(limit).offset(offset)))


def categories(session: Session) -> list[str]:
    """Every category of the catalog and each level above it ("Kitchen" of "Kitchen > Mugs"), A to Z."""
    found: set[str] = set()
    for category in session.scalars(sa.select(Product.category).where(Product.category.is_not(None)).distinct()):
        parts = [p.strip() for p in category.split(">")]
        found.update(" > ".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(found, key=str.lower)


def latest_in_stock(session: Session) -> str | None:
    """The sku of the product in stock changed last (an example to show)."""
    query = sa.select(Product.sku).where(Product.in_stock.is_(True)).order_by(Product.updated_at.desc()).limit(1)
    return session.scalar(query)


def lookup(session: Session, text: str, *, limit: int = 10) -> list[Product]:
    """Products whose sku starts with `text` or whose name holds it, by sku."""
    like = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    match = sa.or_(Product.sku.like(like, escape="\\"), Product.name.ilike("%" + like, escape="\\"))
    return list(session.scalars(sa.select(Product).where(match).order_by(Product.sku).limit(limit)))


def get(session: Session, sku: str) -> Product:
    product = session.get(Product, sku)
    if product is None:
        raise NotFound(f"unknown sku '{sku}'", field="sku")
    return product


def as_dict(product: Product) -> dict[str, Any]:
    return {c.key: getattr(product, c.key) for c in Product.__table__.columns}
