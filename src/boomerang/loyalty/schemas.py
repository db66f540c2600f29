"""Typed inputs and answers of the loyalty API: checkout (estimate, hold), adjustments, a customer's points."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_POINTS = 10**15
MAX_AMOUNT = 1e12
CustomerId = Field(
    min_length=1, max_length=40, description="the customer's id (a merged-away id leads to the live one)"
)
OrderId = Field(min_length=1, max_length=128, description="the shop's order id: a hold is idempotent by it")


class Line(BaseModel):
    model_config = ConfigDict(extra="ignore")

    price: float = Field(ge=0, le=MAX_AMOUNT)
    quantity: float = Field(default=1, gt=0, le=1e6)
    sku: str | None = Field(default=None, max_length=128, description="for the earn rules' exclusions")
    category: str | None = Field(default=None, max_length=1024, description='"Coffee > Beans": for the earn rules')
    brand: str | None = Field(default=None, max_length=255, description="for the earn rules")
    name: str | None = Field(default=None, max_length=512)


class EstimateIn(BaseModel):
    """An order at checkout: its total, or its lines (price x quantity)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = CustomerId
    total: float | None = Field(default=None, ge=0, le=MAX_AMOUNT, description="what the order costs")
    lines: list[Line] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _something(self) -> EstimateIn:
        if self.total is None and not self.lines:
            raise ValueError("give the order's total or its lines")
        return self

    def amount(self) -> float:
        return self.total if self.total is not None else round(sum(li.price * li.quantity for li in self.lines), 4)


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = CustomerId
    order_id: str = OrderId
    points: int = Field(gt=0, le=MAX_POINTS, description="whole points to set aside")
    total: float = Field(ge=0, le=MAX_AMOUNT, description="the order's total: points may pay only its allowed share")
    ttl_minutes: float | None = Field(default=None, gt=0, le=7 * 24 * 60, description="default: the programme's")


class AdjustIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = CustomerId
    points: int = Field(ge=-MAX_POINTS, le=MAX_POINTS, description="whole points to add, or (negative) to take")
    reason: str = Field(min_length=1, max_length=500)
    reference: str | None = Field(
        default=None, min_length=1, max_length=150, description="makes the adjustment idempotent"
    )


class EstimateOut(BaseModel):
    customer_id: str
    total: float
    earn: int = Field(description="points the order earns (pending until the programme's pending time passes)")
    available: int
    share_limit: int = Field(description="the most points the order's allowed share takes")
    max_spend: int = Field(description="the most points that may pay for it now")
    point_value: float
    unit: str


class HoldOut(BaseModel):
    order_id: str
    customer_id: str
    points: int
    total: float
    state: str = Field(description="held, confirmed, cancelled or expired")
    expires_at: datetime
    returned: int = Field(description="of the spent points, given back by refunds")
    created_at: datetime
    updated_at: datetime


class LotOut(BaseModel):
    id: int
    order_id: str | None
    amount: int
    remaining: int
    state: str
    available_at: datetime
    expires_at: datetime | None


class Expiring(BaseModel):
    points: int
    first_at: datetime | None
    within_days: int


class AccountOut(BaseModel):
    customer_id: str
    unit: str
    balance: int = Field(description="points spendable now")
    pending: int
    held: int
    expiring_soon: Expiring
    totals: dict[str, int]
    lots: list[LotOut]
    tier: dict[str, Any] | None = Field(default=None, description="name, since, multiplier, benefits, next, missing")


class Movement(BaseModel):
    id: int
    reference: str
    kind: str
    order_id: str | None
    source: str
    reason: str | None
    at: datetime
    change: dict[str, int] = Field(description="what it did to the customer's wallet, pending and held points")
    detail: dict[str, Any]


class HistoryOut(BaseModel):
    customer_id: str
    items: list[Movement]
    limit: int


class AdjustOut(BaseModel):
    customer_id: str
    reference: str
    points: int
    new: bool = Field(description="false where the reference was adjusted already")


class AchievementProgress(BaseModel):
    """An achievement as one customer stands with it: earned (when), or how far along (`count` of `target`)."""

    key: str
    title: str
    description: str
    badge: str
    points: int
    count: int
    target: int
    earned: bool
    earned_at: datetime | None
    valid_until: datetime | None
