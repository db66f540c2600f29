"""Typed inputs of the catalog: products as a shop's sync sends them, stock changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from boomerang.core.urls import WebUrl


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
    url: WebUrl | None = None
    image_url: WebUrl | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class StockChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=128)
    in_stock: bool | None = None
    stock_quantity: int | None = Field(default=None, ge=0)


# -- outputs ---------------------------------------------------------------------------------------


class ProductOut(BaseModel):
    sku: str
    name: str | None
    category: str | None
    brand: str | None
    price: float | None
    currency: str | None
    in_stock: bool
    stock_quantity: int | None
    url: str | None
    image_url: str | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ProductPage(BaseModel):
    items: list[ProductOut]
    limit: int
    offset: int


class StockUpdated(BaseModel):
    updated: int


class Upserted(BaseModel):
    created: int
    updated: int
