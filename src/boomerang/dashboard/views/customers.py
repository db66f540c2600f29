"""Customers: search and list, and one customer's whole story."""

from __future__ import annotations

import math

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from boomerang.customers import service as customers
from boomerang.customers.merge import canonical
from boomerang.dashboard.views.common import BoardDep, Viewer, redirect, render
from boomerang.dashboard.views.journeys import customer_journeys
from boomerang.orders import service as order_service
from boomerang.segments import service as segment_service

router = APIRouter()
PAGE = 50
EVENTS_PAGE = 50
MAX_ORDERS = 100


@router.get("/customers")
def customers_page(
    request: Request, user: Viewer, board: BoardDep, q: str = "", page: int = Query(1, ge=1, le=1_000_000)
) -> Response:
    with board.ws.uow.session() as s:
        rows, total = customers.find(s, q, prefix=True, limit=PAGE, offset=(page - 1) * PAGE)
    pages = max(1, math.ceil(total / PAGE))
    return render(request, "customers.html", user=user, customers=rows, q=q, page=page, pages=pages, total=total)


@router.get("/customers/{customer_id}")
def customer_page(
    request: Request, customer_id: str, user: Viewer, board: BoardDep, page: int = Query(1, ge=1, le=1_000_000)
) -> Response:
    with board.ws.uow.session() as s:
        customer = canonical(s, customer_id)
        if customer is None:
            return render(
                request,
                "error.html",
                user=user,
                status_code=404,
                title="No such customer",
                message=f"There is no customer with the id {customer_id}.",
            )
        if customer.id != customer_id:  # merged into another profile
            return redirect(f"/customers/{customer.id}")
        identities = [(i.kind, i.value, i.created_at) for i in customers.identities(s, customer.id)]
        consents = customers.consents(s, customer.id)
        history = customers.consent_history(s, customer.id, newest_first=True)
        orders, lines, order_count = order_service.of_customer(s, customer.id, limit=MAX_ORDERS)
        segments = segment_service.memberships(s, customer.id)
        journeys = customer_journeys(s, customer.id)
    events, event_total = board.analytics.events(customer.id, limit=EVENTS_PAGE, offset=(page - 1) * EVENTS_PAGE)
    traits = board.analytics.traits(customer.id)
    return render(
        request,
        "customer.html",
        user=user,
        customer=customer,
        identities=identities,
        consents=consents,
        history=history,
        orders=orders,
        lines=lines,
        order_count=order_count,
        max_orders=MAX_ORDERS,
        events=events,
        event_total=event_total,
        page=page,
        pages=max(1, math.ceil(event_total / EVENTS_PAGE)),
        traits=traits,
        segments=segments,
        journeys=journeys,
    )
