"""Orders: read, create or update (recorded as events), status changes and refunds."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from boomerang.api.deps import SessionDep, WorkspaceDep
from boomerang.core.clock import naive_utc
from boomerang.core.errors import NotFound
from boomerang.customers.identity import canonical
from boomerang.customers.models import Identity
from boomerang.events.ingest import record
from boomerang.orders.models import Order, OrderLine
from boomerang.orders.service import LineIn

router = APIRouter(prefix="/orders", tags=["orders"])
STATUS_EVENTS = {
    "cancelled": "Order Cancelled",
    "shipped": "Order Shipped",
    "delivered": "Order Delivered",
    "paid": "Order Updated",
    "placed": "Order Updated",
}


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


def _order(session, order_id: str) -> dict:
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound(f"unknown order '{order_id}'", field="order_id")
    lines = session.scalars(
        sa.select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.line_no)
    ).all()
    data = {c.key: getattr(order, c.key) for c in Order.__table__.columns}
    data["lines"] = [{c.key: getattr(line, c.key) for c in OrderLine.__table__.columns} for line in lines]
    return data


@router.get("")
def list_orders(
    session: SessionDep,
    customer_id: str | None = None,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> dict:
    query = sa.select(Order.id)
    if customer_id:
        customer = canonical(session, customer_id)
        query = query.where(Order.customer_id == (customer.id if customer else customer_id))
    ids = session.scalars(query.order_by(Order.placed_at.desc(), Order.id).limit(limit).offset(offset)).all()
    return {"items": [_order(session, i) for i in ids], "limit": limit, "offset": offset}


@router.get("/{order_id}")
def get_order(order_id: str, session: SessionDep) -> dict:
    return _order(session, order_id)


@router.post("")
def create_order(body: OrderBody, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Record a completed order; the log gets an Order Completed event for it."""
    props = body.model_dump(exclude={"id", "external_id", "anonymous_id", "placed_at", "lines"}, exclude_none=True)
    props.update(order_id=body.id, products=[line.model_dump(exclude_none=True) for line in body.lines])
    message = {
        "type": "track",
        "event": "Order Completed",
        "userId": body.external_id,
        "anonymousId": body.anonymous_id,
        "properties": props,
        "timestamp": body.placed_at.isoformat() if body.placed_at else None,
    }
    record(session, [message], now=naive_utc(ws.clock.now()), limits=ws.settings.ingest, source="api")
    return _order(session, body.id)


def _order_event(session, ws, order_id: str, event: str, props: dict, message_id: str | None = None) -> dict:
    order = session.get(Order, order_id)
    if order is None or order.customer_id is None:
        raise NotFound(f"unknown order '{order_id}'", field="order_id")
    customer = canonical(session, order.customer_id)
    message = {
        "type": "track",
        "event": event,
        "properties": {"order_id": order_id, **props},
        "userId": customer.external_id,
        "messageId": message_id,
    }
    if customer.external_id is None:
        message["anonymousId"] = next(iter(_anonymous_ids(session, customer.id)), None)
    record(session, [message], now=naive_utc(ws.clock.now()), limits=ws.settings.ingest, source="api")
    return _order(session, order_id)


def _anonymous_ids(session, customer_id: str) -> list[str]:
    return list(
        session.scalars(
            sa.select(Identity.value).where(Identity.customer_id == customer_id, Identity.kind == "anonymous")
        )
    )


@router.post("/{order_id}/status")
def set_status(order_id: str, body: StatusBody, ws: WorkspaceDep, session: SessionDep) -> dict:
    return _order_event(session, ws, order_id, STATUS_EVENTS[body.status], {"status": body.status})


@router.post("/{order_id}/refunds")
def refund(order_id: str, body: RefundBody, ws: WorkspaceDep, session: SessionDep) -> dict:
    props = {} if body.amount is None else {"total": body.amount}
    message_id = f"refund:{order_id}:{body.refund_id}" if body.refund_id else None
    return _order_event(session, ws, order_id, "Order Refunded", props, message_id)
