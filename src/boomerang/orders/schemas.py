"""Typed inputs of orders: an order and its lines as events and the API carry them, a status, a refund."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from boomerang.core.urls import WebUrl
from boomerang.orders.models import ORDER_STATUSES


def _text_id(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


TextId = Annotated[str, BeforeValidator(_text_id), Field(min_length=1, max_length=128)]


class LineIn(BaseModel):
    """An order line; Segment's product objects fit (product_id or sku, price, quantity)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    sku: TextId | None = Field(default=None, validation_alias=AliasChoices("sku", "product_id"))
    name: str | None = None
    category: str | None = None
    brand: str | None = None
    price: float = 0.0
    quantity: float = 1.0
    url: WebUrl | None = None
    image_url: WebUrl | None = None


class OrderIn(BaseModel):
    """An order as the API and the Order Completed event carry it."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    order_id: TextId = Field(validation_alias=AliasChoices("order_id", "id"))
    total: float | None = None
    revenue: float | None = None
    subtotal: float | None = None
    discount: float | None = None
    shipping: float | None = None
    tax: float | None = None
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    coupon: str | None = None
    status: str | None = None
    products: list[LineIn] = Field(default_factory=list, validation_alias=AliasChoices("products", "lines"))

    @model_validator(mode="after")
    def _known_status(self):
        if self.status is not None and self.status not in ORDER_STATUSES:
            raise ValueError(f"status must be one of {', '.join(ORDER_STATUSES)}")
        return self

    def amount(self) -> float:
        if self.total is not None:
            return self.total
        if self.revenue is not None:
            return self.revenue
        return round(sum(line.price * line.quantity for line in self.products), 4)


class OrderBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128)
    external_id: str | None = Field(default=None, description="the customer's id in the shop")
    anonymous_id: str | None = None
    placed_at: datetime | None = None
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    total: float | None = None
    subtotal: float | None = None
    discount: float | None = None
    shipping: float | None = None
    tax: float | None = None
    coupon: str | None = None
    lines: list[LineIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _someone(self):
        if not self.external_id and not self.anonymous_id:
            raise ValueError("external_id or anonymous_id is required")
        return self


class StatusBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["placed", "paid", "shipped", "delivered", "cancelled"]


class RefundBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: float | None = Field(default=None, gt=0, description="omitted: refund what is left")
    refund_id: str | None = Field(default=None, max_length=128, description="the same id twice refunds once")


# -- outputs ---------------------------------------------------------------------------------------


class LineOut(BaseModel):
    order_id: str
    line_no: int
    sku: str | None
    name: str | None
    category: str | None
    quantity: float
    unit_price: float


class OrderOut(BaseModel):
    id: str
    customer_id: str | None
    status: str
    currency: str | None
    total: float
    subtotal: float | None
    discount: float | None
    shipping: float | None
    tax: float | None
    refunded_total: float
    coupon: str | None
    source: str
    attributes: dict[str, Any]
    placed_at: datetime
    updated_at: datetime
    lines: list[LineOut]


class OrderPage(BaseModel):
    items: list[OrderOut]
    limit: int
    offset: int
