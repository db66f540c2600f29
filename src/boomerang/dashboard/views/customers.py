"""Customers: search and list, and one customer's whole story."""

from __future__ import annotations

import math

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from boomerang.customers.identity import canonical
from boomerang.customers.models import Consent, ConsentChange, Customer, Identity
from boomerang.dashboard.views.common import BoardDep, Viewer, redirect, render
from boomerang.dashboard.views.journeys import customer_journeys
from boomerang.orders.models import Order, OrderLine
from boomerang.segments.models import Segment, SegmentMember

router = APIRouter()
PAGE = 50
EVENTS_PAGE = 50
MAX_ORDERS = 100


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search(q: str) -> sa.ColumnElement[bool]:
    """External id, email or phone: equal to the text, or for ids and emails starting with it."""
    q = q.strip()
    return sa.or_(
        Customer.external_id == q,
        Customer.email == q.lower(),
        Customer.phone == q,
        Customer.external_id.like(_like(q), escape="\\"),
        Customer.email.like(_like(q.lower()), escape="\\"),
    )


@router.get("/customers")
def customers_page(
    request: Request, user: Viewer, board: BoardDep, q: str = "", page: int = Query(1, ge=1, le=1_000_000)
) -> Response:
    where = [Customer.merged_into_id.is_(None)]
    if q.strip():
        where.append(search(q))
    with board.ws.uow.session() as s:
        total = s.scalar(sa.select(sa.func.count()).select_from(Customer).where(*where))
        rows = s.scalars(
            sa.select(Customer)
            .where(*where)
            .order_by(Customer.created_at.desc(), Customer.id)
            .limit(PAGE)
            .offset((page - 1) * PAGE)
        ).all()
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
        identities = s.execute(
            sa.select(Identity.kind, Identity.value, Identity.created_at)
            .where(Identity.customer_id == customer.id)
            .order_by(Identity.kind, Identity.value)
        ).all()
        consents = s.scalars(
            sa.select(Consent).where(Consent.customer_id == customer.id).order_by(Consent.channel)
        ).all()
        history = s.scalars(
            sa.select(ConsentChange)
            .where(ConsentChange.customer_id == customer.id)
            .order_by(ConsentChange.at.desc(), ConsentChange.id.desc())
        ).all()
        order_count = s.scalar(sa.select(sa.func.count()).where(Order.customer_id == customer.id))
        orders = s.scalars(
            sa.select(Order)
            .where(Order.customer_id == customer.id)
            .order_by(Order.placed_at.desc(), Order.id)
            .limit(MAX_ORDERS)
        ).all()
        lines: dict[str, list[OrderLine]] = {o.id: [] for o in orders}
        if orders:
            for line in s.scalars(
                sa.select(OrderLine)
                .where(OrderLine.order_id.in_(list(lines)))
                .order_by(OrderLine.order_id, OrderLine.line_no)
            ):
                lines[line.order_id].append(line)
        member = (SegmentMember.segment_id == Segment.id) & (SegmentMember.customer_id == customer.id)
        segments = s.execute(
            sa.select(Segment.name, Segment.title, Segment.refreshed_at, SegmentMember.entered_at)
            .outerjoin(SegmentMember, member)
            .order_by(SegmentMember.entered_at.is_(None), Segment.name)
        ).all()
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
