"""Products: listing, bulk upsert for catalog sync, stock changes."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Body, Query

from boomerang.api.deps import SessionDep, WorkspaceDep
from boomerang.catalog.models import Product
from boomerang.catalog.service import ProductIn, StockChange, change_stock, upsert_products
from boomerang.core.clock import naive_utc
from boomerang.core.errors import NotFound

router = APIRouter(prefix="/products", tags=["catalog"])
MAX_BATCH = 10_000


def _row(product: Product) -> dict:
    return {c.key: getattr(product, c.key) for c in Product.__table__.columns}


@router.get("")
def list_products(
    session: SessionDep,
    category: str | None = None,
    in_stock: bool | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> dict:
    query = sa.select(Product)
    if category:
        query = query.where(sa.or_(Product.category == category, Product.category.like(f"{category} > %")))
    if in_stock is not None:
        query = query.where(Product.in_stock.is_(in_stock))
    rows = session.scalars(query.order_by(Product.sku).limit(limit).offset(offset)).all()
    return {"items": [_row(p) for p in rows], "limit": limit, "offset": offset}


@router.get("/{sku}")
def get_product(sku: str, session: SessionDep) -> dict:
    product = session.get(Product, sku)
    if product is None:
        raise NotFound(f"unknown sku '{sku}'", field="sku")
    return _row(product)


@router.put("")
def upsert(ws: WorkspaceDep, session: SessionDep, products: list[ProductIn] = Body(max_length=MAX_BATCH)) -> dict:
    """Create or update up to 10,000 products in one transaction (catalog sync)."""
    return upsert_products(session, products, now=naive_utc(ws.clock.now()))


@router.post("/stock")
def stock(ws: WorkspaceDep, session: SessionDep, changes: list[StockChange] = Body(max_length=MAX_BATCH)) -> dict:
    """Set stock quantities or availability; an unknown sku rejects the whole call."""
    return {"updated": change_stock(session, changes, now=naive_utc(ws.clock.now()))}
