"""The catalog: products, bulk upsert for catalog sync, stock changes."""

from __future__ import annotations

from fastapi import APIRouter, Body, Query

from boomerang.api.deps import Offset, SessionDep, WorkspaceDep
from boomerang.catalog import service
from boomerang.catalog.schemas import ProductIn, ProductOut, ProductPage, StockChange, StockUpdated, Upserted

router = APIRouter(prefix="/products", tags=["catalog"])
MAX_BATCH = 10_000


@router.get("", response_model=ProductPage)
def list_products(
    session: SessionDep,
    category: str | None = None,
    in_stock: bool | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: Offset = 0,
) -> dict:
    rows = service.listing(session, category=category, in_stock=in_stock, limit=limit, offset=offset)
    return {"items": [service.as_dict(p) for p in rows], "limit": limit, "offset": offset}


@router.get("/{sku}", response_model=ProductOut)
def get_product(sku: str, session: SessionDep) -> dict:
    return service.as_dict(service.get(session, sku))


@router.put("", response_model=Upserted)
def upsert(ws: WorkspaceDep, session: SessionDep, products: list[ProductIn] = Body(max_length=MAX_BATCH)) -> dict:
    """Create or update up to 10,000 products in one transaction (catalog sync)."""
    return service.upsert_products(session, products, now=ws.now())


@router.post("/stock", response_model=StockUpdated)
def stock(ws: WorkspaceDep, session: SessionDep, changes: list[StockChange] = Body(max_length=MAX_BATCH)) -> dict:
    """Set stock quantities or availability; an unknown sku rejects the whole call."""
    return {"updated": service.change_stock(session, changes, now=ws.now())}
