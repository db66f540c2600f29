"""Customers: search and list, one customer's whole story; for admins, their data export and erasure."""

from __future__ import annotations

import math

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from boomerang.core.errors import BoomerangError
from boomerang.customers import privacy
from boomerang.customers import service as customers
from boomerang.customers.merge import canonical
from boomerang.customers.privacy.subject import merged_into
from boomerang.dashboard.views.common import HEADERS, Admin, BoardDep, Viewer, checked_form, redirect, render
from boomerang.dashboard.views.journeys import customer_journeys
from boomerang.loyalty import achievements_store
from boomerang.loyalty import view as loyalty
from boomerang.orders import service as order_service
from boomerang.segments import service as segment_service

router = APIRouter()
PAGE = 50
EVENTS_PAGE = 50
MAX_ORDERS = 100
POINTS_HISTORY = 20


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
            return _not_found(request, user, customer_id)
        if customer.id != customer_id:  # merged into another profile
            return redirect(f"/customers/{customer.id}")
        identities = [(i.kind, i.value, i.created_at) for i in customers.identities(s, customer.id)]
        consents = customers.consents(s, customer.id)
        history = customers.consent_history(s, customer.id, newest_first=True)
        orders, lines, order_count = order_service.of_customer(s, customer.id, limit=MAX_ORDERS)
        segments = segment_service.memberships(s, customer.id)
        journeys = customer_journeys(s, customer.id)
        now = board.ws.now()
        points = {
            "unit": board.ws.settings.loyalty.unit_name,
            "now": loyalty.points(s, [customer.id], now=now, with_lots=True)[customer.id],
            "history": loyalty.history(s, customer.id, limit=POINTS_HISTORY),
            "badges": achievements_store.progress(s, customer.id, now=now),
        }
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
        points=points,
    )


def _not_found(request: Request, user, customer_id: str, message: str | None = None) -> Response:
    return render(
        request,
        "error.html",
        user=user,
        status_code=404,
        title="No such customer",
        message=message or f"There is no customer with the id {customer_id}.",
    )


def _actor(user) -> str:
    return f"user:{user.username}"


@router.post("/customers/{customer_id}/export")
async def export_data(request: Request, customer_id: str, user: Admin, board: BoardDep) -> Response:
    """Everything held about the customer, downloaded as one JSON file."""
    await checked_form(request)
    try:
        with board.ws.uow.session() as s:
            data = privacy.export(s, board.ws.log, customer_id, actor=_actor(user), now=board.ws.now())
    except BoomerangError as exc:
        return _not_found(request, user, customer_id, exc.message)
    body = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    disposition = f'attachment; filename="customer-{data["customer_id"]}.json"'
    headers = {**HEADERS, "Content-Disposition": disposition}
    return Response(body, media_type="application/json", headers=headers)


def _confirmation(request: Request, user, board, customer_id: str, *, status_code: int = 200, **context) -> Response:
    with board.ws.uow.session() as s:
        customer = canonical(s, customer_id)
        if customer is None:
            return _not_found(request, user, customer_id)
        name = " ".join(filter(None, (customer.first_name, customer.last_name)))
        label = name or customer.external_id or customer.email or customer.id
        merged = len(merged_into(s, customer.id))
    return render(
        request,
        "customer_erase.html",
        user=user,
        status_code=status_code,
        customer_id=customer.id,
        label=label,
        merged=merged,
        **context,
    )


@router.get("/customers/{customer_id}/erase")
def erase_page(request: Request, customer_id: str, user: Admin, board: BoardDep) -> Response:
    """The confirmation step before an erasure."""
    return _confirmation(request, user, board, customer_id)


@router.post("/customers/{customer_id}/erase")
async def erase(request: Request, customer_id: str, user: Admin, board: BoardDep) -> Response:
    """Erase the customer once the form repeats their id."""
    form = await checked_form(request)
    if str(form.get("confirm", "")).strip() != customer_id:
        errors = [{"field": "confirm", "reason": f"type the customer id {customer_id} to confirm the erasure"}]
        return _confirmation(request, user, board, customer_id, status_code=400, errors=errors)
    try:
        with board.ws.uow.session() as s:
            done = privacy.erase(s, board.ws.forgetting, customer_id, actor=_actor(user), now=board.ws.now())
    except BoomerangError as exc:
        return _not_found(request, user, customer_id, exc.message)
    return render(request, "customer_erase.html", user=user, customer_id=customer_id, done=done)
