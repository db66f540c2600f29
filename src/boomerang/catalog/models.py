"""Products of the shop's catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.db import Base, BigInt, Money


class Product(Base):
    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.String(512))
    category: Mapped[str | None] = mapped_column(sa.String(1024), index=True)  # "Home > Kitchen > Mugs"
    brand: Mapped[str | None] = mapped_column(sa.String(255))
    price: Mapped[float | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    in_stock: Mapped[bool] = mapped_column(default=True)
    stock_quantity: Mapped[int | None]
    url: Mapped[str | None] = mapped_column(sa.String(2048))
    image_url: Mapped[str | None] = mapped_column(sa.String(2048))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CatalogChange(Base):
    """A change of a product that customers may care about (catalog.changes), recorded with the write that
    made it; `fanned_out_at` is set once its events are in the inbox (orchestration.catalog_signals)."""

    __tablename__ = "catalog_changes"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(sa.String(128))
    kind: Mapped[str] = mapped_column(sa.String(32))  # back_in_stock | price_dropped
    old_value: Mapped[float | None] = mapped_column(Money)  # the price, or the stock quantity (None: not counted)
    new_value: Mapped[float | None] = mapped_column(Money)
    at: Mapped[datetime]
    fanned_out_at: Mapped[datetime | None] = mapped_column(index=True)
