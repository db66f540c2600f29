"""The workspace at a glance: profiles, orders, revenue, products and events."""

from __future__ import annotations

import sqlalchemy as sa

from boomerang.catalog.models import Product
from boomerang.customers.models import IDENTIFIED, Customer
from boomerang.db import UnitOfWork
from boomerang.events import intake
from boomerang.events.log import EventLog
from boomerang.events.models import inbox
from boomerang.orders.models import Order

BUYING = ("placed", "paid", "shipped", "delivered", "partially_refunded")


def summary(uow: UnitOfWork, log: EventLog) -> dict:
    """Counts from both stores; events still waiting in the intake or the inbox are reported as pending."""
    with uow.session() as session:
        customers, identified = session.execute(  # one scan each of the customers and the orders
            sa.select(sa.func.count(), sa.func.count().filter(IDENTIFIED)).where(Customer.merged_into_id.is_(None))
        ).one()
        # A refund of an order never seen is kept as a returned order of total 0: not an order anyone placed.
        revenue, orders = session.execute(
            sa.select(
                sa.func.coalesce(sa.func.sum(Order.total - Order.refunded_total), 0.0),
                sa.func.count().filter(sa.or_(Order.total > 0, Order.status != "returned")),
            ).where(Order.status != "cancelled")
        ).one()
        per_customer = (
            sa.select(Order.customer_id, sa.func.count().label("n"))
            .where(Order.customer_id.is_not(None), Order.status.in_(BUYING))
            .group_by(Order.customer_id)
            .subquery()
        )
        buyers, repeat = session.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(sa.case((per_customer.c.n >= 2, 1), else_=0)), 0))
        ).one()
        products, in_stock = session.execute(
            sa.select(sa.func.count(), sa.func.count().filter(Product.in_stock.is_(True))).select_from(Product)
        ).one()
        pending = session.scalar(sa.select(sa.func.count()).select_from(inbox)) + intake.waiting(session)
    logged = log.summary()
    return {
        "customers": {"total": customers, "identified": identified, "anonymous": customers - identified},
        "orders": orders,
        "revenue": round(float(revenue), 2),
        "buyers": buyers,
        "repeat_purchase_rate": round(repeat / buyers, 4) if buyers else None,
        "products": {"total": products, "in_stock": in_stock},
        "events": {
            "total": logged["total"],
            "pending": pending,
            "by_type": logged["by_event"],
            "first": logged["first"].isoformat() if logged["first"] else None,
            "last": logged["last"].isoformat() if logged["last"] else None,
        },
    }
