"""Each customer's orders summed up (how many, spend net of refunds, the last one) and a listing of customers with
those sums, sorted and paged in the database: what the dashboard's customer list shows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.customers.models import Customer
from boomerang.db import chunked
from boomerang.orders.models import Order

NOT_COUNTED = ("cancelled", "returned")  # orders that bought nothing in the end


@dataclass(frozen=True)
class Totals:
    orders: int = 0
    spend: float = 0.0
    last_order: datetime | None = None
    currency: str | None = None

    @property
    def average(self) -> float | None:
        return self.spend / self.orders if self.orders else None


def _sums(ids: Sequence[str] | None = None) -> sa.Subquery:
    counted = Order.status.not_in(NOT_COUNTED)
    if ids is not None:
        counted = sa.and_(counted, Order.customer_id.in_(ids))
    return (
        sa.select(
            Order.customer_id.label("customer_id"),
            sa.func.count(Order.id).label("orders"),
            sa.func.sum(Order.total - sa.func.coalesce(Order.refunded_total, 0)).label("spend"),
            sa.func.max(Order.placed_at).label("last_order"),
            sa.func.max(Order.currency).label("currency"),
        )
        .where(counted, Order.customer_id.is_not(None))
        .group_by(Order.customer_id)
        .subquery("order_sums")
    )


def _name():
    return sa.func.coalesce(Customer.first_name_key, "") + " " + sa.func.coalesce(Customer.last_name_key, "")


SORTS = ("created", "name", "orders", "spend", "last_order", "last_seen")


def _key(sums: sa.Subquery, sort: str):
    return {
        "created": Customer.created_at,
        "name": _name(),
        "orders": sa.func.coalesce(sums.c.orders, 0),
        "spend": sa.func.coalesce(sums.c.spend, 0),
        "last_order": sums.c.last_order,
        "last_seen": Customer.last_seen_at,
    }[sort]


def _ordering(sums: sa.Subquery, sort: str, descending: bool) -> list:
    key = _key(sums, sort)
    first = sa.nulls_last(key.desc() if descending else key.asc())
    return [first, Customer.id]


ORDER_SORTS = {"orders", "spend", "last_order"}  # the sorts that need every customer's sums


def listing(
    session: Session,
    where: sa.ColumnElement[bool],
    *,
    sort: str = "created",
    descending: bool = True,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[tuple[Customer, Totals]], int]:
    """A page of the customers `where` selects, with their totals, in the order asked, and how many there are.
    Sums of the page's customers only, unless the order is by them."""
    total = session.scalar(sa.select(sa.func.count()).select_from(Customer).where(where))
    ids = _ids(session, where, sort=sort, descending=descending, limit=limit, offset=offset)
    return of_ids(session, ids), int(total or 0)


def _ids(session: Session, where, *, sort: str, descending: bool, limit: int | None = None, offset: int = 0):
    sums = _sums()
    query = sa.select(Customer.id).where(where)
    if sort in ORDER_SORTS:
        query = query.outerjoin(sums, sums.c.customer_id == Customer.id)
    query = query.order_by(*_ordering(sums, sort, descending)).offset(offset)
    return list(session.scalars(query.limit(limit) if limit is not None else query))


def ordered_ids(session: Session, where: sa.ColumnElement[bool], *, sort: str, descending: bool) -> list[str]:
    """Every id `where` selects, in the order asked (for a page the caller cuts after filtering on what the
    database does not hold, such as RFM groups)."""
    return _ids(session, where, sort=sort, descending=descending)


def of_ids(session: Session, ids: Sequence[str]) -> list[tuple[Customer, Totals]]:
    """These customers with their totals, in the order given."""
    found: dict[str, tuple[Customer, Totals]] = {}
    for chunk in chunked(ids):
        sums = _sums(chunk)
        for c, n, spend, last, cur in session.execute(
            sa.select(Customer, sums.c.orders, sums.c.spend, sums.c.last_order, sums.c.currency)
            .outerjoin(sums, sums.c.customer_id == Customer.id)
            .where(Customer.id.in_(chunk))
        ):
            found[c.id] = (c, Totals(n or 0, float(spend or 0), last, cur))
    return [found[i] for i in ids if i in found]


def totals(session: Session, customer_id: str) -> Totals:
    """One customer's totals."""
    found = of_ids(session, [customer_id])
    return found[0][1] if found else Totals()
