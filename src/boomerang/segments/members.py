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


def _orders(segment_id: int) -> sa.Subquery:
    """customer_id, orders, spend, last_order: per member, the orders that were not cancelled."""
    members = sa.select(SegmentMember.customer_id).where(SegmentMember.segment_id == segment_id)
    return (
        sa.select(
            Order.customer_id,
            sa.func.count().label("orders"),
            _spend().label("spend"),
            sa.func.max(Order.placed_at).label("last_order"),
        )
        .where(Order.customer_id.in_(members), Order.status != "cancelled")
        .group_by(Order.customer_id)
        .subquery("member_orders")
    )


def _query(segment_id: int, *, with_orders: bool) -> tuple[sa.Select, Any]:
    o = _orders(segment_id) if with_orders else None
    columns = [
        Customer.id.label("customer_id"),
        Customer.external_id,
        Customer.email,
        Customer.phone,
        Customer.first_name,
        Customer.last_name,
        Customer.city,
        Customer.country,
        SegmentMember.entered_at.label("joined"),
    ]
    if o is not None:
        columns += [
            sa.func.coalesce(o.c.orders, 0).label("orders"),
            sa.type_coerce(sa.func.coalesce(o.c.spend, 0), Money).label("spend"),
            o.c.last_order,
        ]
    query = (
        sa.select(*columns)
        .select_from(SegmentMember)
        .join(Customer, Customer.id == SegmentMember.customer_id)
        .where(SegmentMember.segment_id == segment_id)
    )
    if o is not None:
        query = query.outerjoin(o, o.c.customer_id == SegmentMember.customer_id)
    return query, o


def _order_by(sort: str, descending: bool, o: Any) -> list[Any]:
    name = sa.func.coalesce(Customer.last_name, "") + " " + sa.func.coalesce(Customer.first_name, "")
    key = {
        "joined": SegmentMember.entered_at,
        "name": sa.func.lower(sa.func.trim(name)),
        "email": sa.func.lower(sa.func.coalesce(Customer.email, "")),
        "orders": sa.func.coalesce(o.c.orders, 0) if o is not None else None,
        "spend": sa.func.coalesce(o.c.spend, 0) if o is not None else None,
        "last_order": o.c.last_order if o is not None else None,
    }[sort]
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
    # the order figures are summed for the page's members only, unless the page is sorted by them
    by_orders = sort in ("orders", "spend", "last_order")
    query, o = _query(segment.id, with_orders=by_orders)
    query = query.order_by(*_order_by(sort, descending, o)).limit(per_page).offset((page - 1) * per_page)
    rows = [dict(row._mapping) for row in session.execute(query)]
    if not by_orders:
        figures = _figures(session, [r["customer_id"] for r in rows])
        for row in rows:
            row.update(figures.get(row["customer_id"], {"orders": 0, "spend": 0, "last_order": None}))
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
    """Every member with their orders, in the order they joined, read CHUNK rows at a time (keyset, not offset)."""
    segment = get(session, name)
    query, o = _query(segment.id, with_orders=True)
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
        rows = [
            dict(r._mapping)
            for r in session.execute(chunk.order_by(SegmentMember.entered_at, Customer.id).limit(CHUNK))
        ]
        yield from rows
        if len(rows) < CHUNK:
            return
        after = (rows[-1]["joined"], rows[-1]["customer_id"])
