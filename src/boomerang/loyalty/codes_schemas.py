"""Typed inputs of the promo codes API: pools, generation, uploads, personal codes, validation and holds."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_AMOUNT = 1e12
Code = Field(min_length=1, max_length=40, description="the promo code (case does not matter)")


class PoolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    kind: Literal["generated", "uploaded"] = "generated"
    discount_kind: Literal["percent", "fixed", "free_shipping", "points_multiplier"] = "percent"
    value: float = Field(default=0, ge=0, le=MAX_AMOUNT)
    min_order: float = Field(default=0, ge=0, le=MAX_AMOUNT)
    uses_per_code: int = Field(default=1, ge=1, le=1_000_000)
    prefix: str = Field(default="", max_length=16)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    low_stock_alert: int | None = Field(default=None, ge=0)


class GenerateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, le=10_000_000)
    length: int = Field(default=12, ge=11, le=24)


class PersonalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pool: str = Field(min_length=1, max_length=100)
    customer_id: str = Field(min_length=1, max_length=40)
    valid_days: float | None = Field(default=None, gt=0, le=3650)


class ValidateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Code
    customer_id: str | None = Field(default=None, min_length=1, max_length=40)
    total: float = Field(ge=0, le=MAX_AMOUNT)


class CodeHoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Code
    customer_id: str = Field(min_length=1, max_length=40)
    order_id: str = Field(min_length=1, max_length=128)
    total: float = Field(ge=0, le=MAX_AMOUNT)
    ttl_minutes: float | None = Field(default=None, gt=0, le=7 * 24 * 60)
