"""Customers: search and list (with orders, spend and stored results), one customer's whole story in words; for admins, their data export and erasure."""

from __future__ import annotations

import math

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from boomerang.core.errors import BoomerangError
from boomerang.customers import privacy, search
from boomerang.customers import service as customers
from boomerang.customers.merge import canonical
from boomerang.customers.privacy.subject import merged_into
from boomerang.dashboard.views import customer_activity as activity
from boomerang.dashboard.views import customers_list as listing
from boomerang.dashboard.views.common import (
    HEADERS,
    Admin,
    BoardDep,
    Viewer,
    checked_form,
    json_answer,
    redirect,
    render,
)
from boomerang.dashboard.views.journeys import customer_journeys
from boomerang.dashboard.views.segment_builder import suggested
from boomerang.loyalty import achievements_store, tiers
from boomerang.loyalty import view as loyalty
from boomerang.metrics.lifecycle import STAGES
from boomerang.metrics.rfm import GROUP_NAMES
from boomerang.orders import per_customer
from boomerang.orders import service as order_service
from boomerang.segments import audiences
from boomerang.segments import service as segment_service

router = APIRouter()
EVENTS_PAGE = 50
MAX_ORDERS = 100
POINTS_HISTORY = 20


@router.get("/customers")
def customers_page(
    request: Request,
    user: Viewer,
    board: BoardDep,
    q: str = "",
    rfm: str = "",
    stage: str = "",
    churn: str = "",
    sort: str = "",
    direction: str = Query("", alias="dir"),
    page: int = Query(1, ge=1, le=1_000_000),
) -> Response:
    """Customers with their orders, spend and stored results; searched, filtered, sorted and paged (see
    customers_list for the parameters)."""
    try:
        filters = listing.parse(q, rfm, stage, churn, sort, direction, page)
    except BoomerangError as exc:
        filters = listing.Filters(q=q.strip()[:320], page=page)
        return _list(request, user, board, filters, errors=exc.errors, status_code=exc.status_code)
    return _list(request, user, board, filters)


def _list(request: Request, user, board, filters: listing.Filters, *, errors=None, status_code: int = 200) -> Response:
    with board.ws.uow.session() as s:
        rows, total, traits = listing.page(s, board.ws.log, filters)
    return render(
        request,
        "customers.html",
        user=user,
        rows=rows,
        filters=filters,
        q=filters.q,
        page=filters.page,
        pages=max(1, math.ceil(total / listing.PAGE)),
        total=total,
        computed=traits.computed,
        groups=GROUP_NAMES,
        stages=STAGES,
        churn_buckets=listing.CHURN,
        as_segment=_as_segment(filters),
        errors=errors,
        status_code=status_code,
    )


def _as_segment(filters: listing.Filters) -> str | None:
    """The segment builder with the rule of the filtered list (RFM group, stage, churn risk), to save and act on."""
    if not (filters.rfm or filters.stage or filters.churn):
        return None
    churn = listing.CHURN[filters.churn] if filters.churn else None
    rule = audiences.traits(rfm=filters.rfm, stage=filters.stage, churn=churn)
    said = [
        filters.rfm and filters.rfm.replace("_", " "),
        filters.stage,
        filters.churn and f"{filters.churn} churn risk",
    ]
    title = ", ".join(w for w in said if w).capitalize()
    return suggested(rule, audiences.name_for("customers", filters.rfm, filters.stage, filters.churn), title)


LOOKUP_LIMIT = 8


@router.get("/customers/lookup")
def lookup(user: Viewer, board: BoardDep, q: str = "") -> Response:
    """Customers matching what was typed, as JSON for a customer field's picker (static/customer_lookup.js):
    {"customers": [{"id", "label"}]}; nothing for fewer than two characters."""
    text = q.strip()[: search.MAX_QUERY]
    found = []
    if len(text) >= 2:
        with board.ws.uow.session() as s:
            found = [{"id": c.id, "label": c.label} for c in search.candidates(s, text, limit=LOOKUP_LIMIT)]
    return json_answer({"customers": found})


FEEDS = {"": "everything", **{k: k for k in activity.KINDS}}


@router.get("/customers/{customer_id}")
def customer_page(
    request: Request,
    customer_id: str,
    user: Viewer,
    board: BoardDep,
    page: int = Query(1, ge=1, le=1_000_000),
    feed: str = "",
) -> Response:
    feed = feed.strip().lower()
    if feed not in FEEDS:
        return render(
            request,
            "error.html",
            user=user,
            status_code=400,
            title="No such activity",
            message=f"feed: one of {', '.join(k for k in FEEDS if k)} (or nothing for everything)",
        )
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
        totals = per_customer.totals(s, customer.id)
        segments = segment_service.memberships(s, customer.id)
        journeys = customer_journeys(s, customer.id)
        now = board.ws.now()
        points = {
            "unit": board.ws.settings.loyalty.unit_name,
            "now": loyalty.points(s, [customer.id], now=now, with_lots=True)[customer.id],
            "history": loyalty.history(s, customer.id, limit=POINTS_HISTORY),
            "badges": achievements_store.progress(s, customer.id, now=now),
            "tier": _tier(s, customer.id),
        }
    events, event_total = board.analytics.events(customer.id, limit=EVENTS_PAGE, offset=(page - 1) * EVENTS_PAGE)
    traits = board.analytics.traits(customer.id)
    items = activity.feed(
        activity.events(events),
        activity.orders(orders[:EVENTS_PAGE] if page == 1 else []),
        activity.messages(journeys["messages"] if page == 1 else []),
        activity.points(points["history"] if page == 1 else [], points["unit"]),
        only=feed,
    )
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
        totals=totals,
        events=events,
        event_total=event_total,
        activity=items,
        feed=feed,
        feeds=FEEDS,
        page=page,
        pages=max(1, math.ceil(event_total / EVENTS_PAGE)),
        traits=traits,
        churn_bucket=listing.bucket(_churn(traits.get("predictions"))),
        segments=segments,
        journeys=journeys,
        points=points,
    )


def _churn(prediction) -> float | None:
    """The one churn score: P(no purchase in the prediction horizon)."""
    return prediction.get("churn_probability") if prediction else None


def _tier(session, customer_id: str) -> str | None:
    """The customer's loyalty tier, when the programme has tiers."""
    try:
        standing = tiers.standings(session, [customer_id]).get(customer_id)
    except BoomerangError:
        return None
    return standing.tier if standing else None


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
