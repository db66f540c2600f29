"""A segment's members as a listing: a page sorted in SQL (joined, name, email, orders, spend, last order), and
every member in chunks for an export. Orders and spend count the orders not cancelled, less refunds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.errors import ValidationFailed
from boomerang.customers.models import Customer
from boomerang.db import Money
from boomerang.orders.models import Order
from boomerang.segments.models import SegmentMember
from boomerang.segments.service import get

SORTS = ("joined", "name", "email", "orders", "spend", "last_order")
MAX_PER_PAGE = 200
CHUNK = 2000  # rows an export reads at a time
NO_ORDERS = {"orders": 0, "spend": 0.0, "last_order": None}
COLUMNS = (
    "customer_id",
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "city",
    "country",
    "joined",
    "orders",
    "spend",
    "last_order",
)


def _spend() -> sa.ColumnElement:
    """What a customer's orders brought, less refunds (a float on every database)."""
    return sa.type_coerce(sa.func.sum(Order.total - sa.func.coalesce(Order.refunded_total, 0)), Money)


def _query(segment_id: int) -> sa.Select:
    return (
        sa.select(
            Customer.id.label("customer_id"),
            Customer.external_id,
            Customer.email,
            Customer.phone,
            Customer.first_name,
            Customer.last_name,
            Customer.city,
            Customer.country,
            SegmentMember.entered_at.label("joined"),
        )
        .select_from(SegmentMember)
        .join(Customer, Customer.id == SegmentMember.customer_id)
        .where(SegmentMember.segment_id == segment_id)
    )


def _of_member(measure: sa.ColumnElement) -> sa.ScalarSelect:
    """The member's orders (not cancelled) measured: a subquery per member that the index on customer_id serves,
    cheaper than summing every member's orders before sorting."""
    mine = (Order.customer_id == SegmentMember.customer_id) & (Order.status != "cancelled")
    return sa.select(measure).where(mine).scalar_subquery()


def _order_by(sort: str, descending: bool) -> list[Any]:
    name = sa.func.coalesce(Customer.last_name, "") + " " + sa.func.coalesce(Customer.first_name, "")
    key = {
        "joined": lambda: SegmentMember.entered_at,
        "name": lambda: sa.func.lower(sa.func.trim(name)),
        "email": lambda: sa.func.lower(sa.func.coalesce(Customer.email, "")),
        "orders": lambda: _of_member(sa.func.count()),
        "spend": lambda: sa.func.coalesce(_of_member(_spend()), 0),
        "last_order": lambda: _of_member(sa.func.max(Order.placed_at)),
    }[sort]()
    ordered = key.desc() if descending else key.asc()
    if sort == "last_order":  # customers with no order last, whichever the direction
        ordered = ordered.nulls_last()
    return [ordered, Customer.id]


def checked(sort: str, direction: str, page: int, per_page: int) -> tuple[str, bool]:
    """The sort and direction, or a ValidationFailed naming the field."""
    problems = []
    if sort not in SORTS:
        problems.append({"field": "sort", "reason": f"unknown sort {sort!r}; use one of {', '.join(SORTS)}"})
    if direction not in ("asc", "desc"):
        problems.append({"field": "dir", "reason": "must be asc or desc"})
    if page < 1:
        problems.append({"field": "page", "reason": "must be 1 or more"})
    if not 1 <= per_page <= MAX_PER_PAGE:
        problems.append({"field": "per_page", "reason": f"must be between 1 and {MAX_PER_PAGE}"})
    if problems:
        raise ValidationFailed(problems)
    return sort, direction == "desc"


def page(
    session: Session, name: str, *, sort: str = "joined", direction: str = "desc", page: int = 1, per_page: int = 50
) -> dict[str, Any]:
    """One page of members with their orders: rows (dicts of COLUMNS), total, pages."""
    sort, descending = checked(sort, direction, page, per_page)
    segment = get(session, name)
    total = session.scalar(
        sa.select(sa.func.count()).select_from(SegmentMember).where(SegmentMember.segment_id == segment.id)
    )
    query = _query(segment.id).order_by(*_order_by(sort, descending))
    rows = [dict(row._mapping) for row in session.execute(query.limit(per_page).offset((page - 1) * per_page))]
    figures = _figures(session, [r["customer_id"] for r in rows])
    for row in rows:
        row.update(figures.get(row["customer_id"], NO_ORDERS))
    return {
        "rows": rows,
        "total": int(total),
        "page": page,
        "per_page": per_page,
        "pages": max(1, -(-int(total) // per_page)),
        "sort": sort,
        "dir": "desc" if descending else "asc",
    }


def _figures(session: Session, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not customer_ids:
        return {}
    rows = session.execute(
        sa.select(
            Order.customer_id,
            sa.func.count().label("orders"),
            _spend().label("spend"),
            sa.func.max(Order.placed_at).label("last_order"),
        )
        .where(Order.customer_id.in_(customer_ids), Order.status != "cancelled")
        .group_by(Order.customer_id)
    )
    return {r.customer_id: {"orders": r.orders, "spend": r.spend, "last_order": r.last_order} for r in rows}


def every(session: Session, name: str) -> Iterator[dict[str, Any]]:
    """Every member with their orders, in the order they joined, read CHUNK rows at a time (keyset, not offset);
    each chunk's orders are summed for its members alone."""
    segment = get(session, name)
    query = _query(segment.id)
    after: tuple[datetime, str] | None = None
    while True:
        chunk = query
        if after is not None:
            chunk = chunk.where(
                sa.or_(
                    SegmentMember.entered_at > after[0],
                    sa.and_(SegmentMember.entered_at == after[0], Customer.id > after[1]),
                )
            )
        chunk = chunk.order_by(SegmentMember.entered_at, Customer.id).limit(CHUNK)
        rows = [dict(r._mapping) for r in session.execute(chunk)]
        figures = _figures(session, [r["customer_id"] for r in rows])
        for row in rows:
            row.update(figures.get(row["customer_id"], NO_ORDERS))
        yield from rows
        if len(rows) < CHUNK:
            return
        after = (rows[-1]["joined"], rows[-1]["customer_id"])
