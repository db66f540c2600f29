"""Orders: read, create or update (recorded as events), status changes and refunds."""

from __future__ import annotations

from fastapi import APIRouter, Query

from boomerang.api.deps import Offset, SessionDep, WorkspaceDep
from boomerang.core.errors import NotFound
from boomerang.customers import service as customers
from boomerang.customers.merge import canonical
from boomerang.events.ingest import record
from boomerang.orders import service
from boomerang.orders.schemas import OrderBody, OrderOut, OrderPage, RefundBody, StatusBody

router = APIRouter(prefix="/orders", tags=["orders"])
STATUS_EVENTS = {
    "cancelled": "Order Cancelled",
    "shipped": "Order Shipped",
    "delivered": "Order Delivered",
    "paid": "Order Updated",
    "placed": "Order Updated",
}


@router.get("", response_model=OrderPage)
def list_orders(
    session: SessionDep, customer_id: str | None = None, limit: int = Query(50, ge=1, le=1000), offset: Offset = 0
) -> dict:
    if customer_id:
        customer = canonical(session, customer_id)
        customer_id = customer.id if customer else customer_id
    ids = service.listing(session, customer_id=customer_id, limit=limit, offset=offset)
    return {"items": [service.as_dict(session, i) for i in ids], "limit": limit, "offset": offset}


@router.get("/{order_id}", response_model=OrderOut)
def get_order(order_id: str, session: SessionDep) -> dict:
    return service.as_dict(session, order_id)


@router.post("", response_model=OrderOut)
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
    record(session, [message], now=ws.now(), limits=ws.settings.ingest, source="api")
    return service.as_dict(session, body.id)


def _order_event(session, ws, order_id: str, event: str, props: dict, message_id: str | None = None) -> dict:
    """A change of a known order, recorded as the event a shop would send for it."""
    order = service.as_dict(session, order_id)
    if order["customer_id"] is None:
        raise NotFound(f"unknown order '{order_id}'", field="order_id")
    customer = customers.live(session, order["customer_id"])
    message = {
        "type": "track",
        "event": event,
        "properties": {"order_id": order_id, **props},
        "userId": customer.external_id,
        "messageId": message_id,
    }
    if customer.external_id is None:
        message["anonymousId"] = next(iter(customers.anonymous_ids(session, customer.id)), None)
    record(session, [message], now=ws.now(), limits=ws.settings.ingest, source="api")
    return service.as_dict(session, order_id)


@router.post("/{order_id}/status", response_model=OrderOut)
def set_status(order_id: str, body: StatusBody, ws: WorkspaceDep, session: SessionDep) -> dict:
    return _order_event(session, ws, order_id, STATUS_EVENTS[body.status], {"status": body.status})


@router.post("/{order_id}/refunds", response_model=OrderOut)
def refund(order_id: str, body: RefundBody, ws: WorkspaceDep, session: SessionDep) -> dict:
    props = {} if body.amount is None else {"total": body.amount}
    message_id = f"refund:{order_id}:{body.refund_id}" if body.refund_id else None
    return _order_event(session, ws, order_id, "Order Refunded", props, message_id)
