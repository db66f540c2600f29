"""Catalog writes: product upserts (API, feeds, events) and stock changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from boomerang.catalog.models import Product
from boomerang.core.errors import NotFound

PRODUCT_FIELDS = ("name", "category", "brand", "price", "currency", "in_stock", "stock_quantity", "url", "image_url")


class ProductIn(BaseModel):
    """A product as the API and feeds take it; unknown fields are kept as attributes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sku: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=512)
    category: str | None = Field(default=None, max_length=1024)
    brand: str | None = Field(default=None, max_length=255)
    price: float | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    in_stock: bool = True
    stock_quantity: int | None = Field(default=None, ge=0)
    url: str | None = Field(default=None, max_length=2048)
    image_url: str | None = Field(default=None, max_length=2048)
    attributes: dict[str, Any] = Field(default_factory=dict)


class StockChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=128)
    in_stock: bool | None = None
    stock_quantity: int | None = Field(default=None, ge=0)


def upsert_products(session: Session, products: list[ProductIn], *, now: datetime) -> dict[str, int]:
    """Insert new products and replace the given fields of known ones; returns counts."""
    existing = preload(session, {p.sku for p in products})
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
    return {"created": created, "updated": updated}


def change_stock(session: Session, changes: list[StockChange], *, now: datetime) -> int:
    """Apply stock changes; an unknown sku fails the whole call."""
    products = {p.sku: p for p in session.scalars(sa.select(Product).where(Product.sku.in_([c.sku for c in changes])))}
    for index, change in enumerate(changes):
        product = products.get(change.sku)
        if product is None:
            raise NotFound(f"unknown sku '{change.sku}'", field=f"[{index}].sku")
        if change.stock_quantity is not None:
            product.stock_quantity = change.stock_quantity
            product.in_stock = change.stock_quantity > 0
        if change.in_stock is not None:
            product.in_stock = change.in_stock
        product.updated_at = now
    return len(changes)


def preload(session: Session, skus: set[str]) -> dict[str, Product]:
    """The known products among these skus, keyed by sku, in one query per 5,000."""
    wanted = sorted(skus)
    return {
        p.sku: p for start in range(0, len(wanted), 5000)
        for p in session.scalars(sa.select(Product).where(Product.sku.in_(wanted[start : start + 5000])))
    }


def learn_from_event(session: Session, fields: dict[str, Any], *, now: datetime, cache: dict[str, Product]) -> None:
    """Fill in what a product event tells about a product (never its stock: events do not know it).

    `cache` must hold every known product among the batch's skus (see `preload`).
    """
    sku = fields["sku"]
    product = cache.get(sku)
    if product is None:
        product = Product(sku=sku, attributes={}, in_stock=True, created_at=now, updated_at=now)
        session.add(product)
    cache[sku] = product
    for name in ("name", "category", "brand", "price", "currency", "url", "image_url"):
        if fields.get(name) is not None and getattr(product, name) != fields[name]:
            setattr(product, name, fields[name])
            product.updated_at = now
