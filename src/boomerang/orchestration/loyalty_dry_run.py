"""The earn rules' dry run (`loyalty.dry_run`) fed from the stores: the period's orders with their lines from the
operational store, and from the event log the events that earn bonuses (a customer's first sign-up and first
joining of the Telegram bot ever, every review and NPS answer), with first orders and birthdays in the period."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from boomerang.config import LoyaltySettings
from boomerang.core.errors import ValidationFailed
from boomerang.core.vocab import BROWSER, VERIFIED
from boomerang.customers.merge import live_ids
from boomerang.customers.models import Customer
from boomerang.db import UnitOfWork
from boomerang.events import effects
from boomerang.events.importers import Progress
from boomerang.events.log import EventLog
from boomerang.loyalty import dry_run, rule_versions, rules, tiers
from boomerang.loyalty.orders import NOT_EARNING, OrderState
from boomerang.orders.models import Order

CHUNK = 5000
MAX_DAYS = 3 * 366


def run(
    uow: UnitOfWork,
    log: EventLog,
    proposed: rules.EarnRules,
    *,
    since: datetime,
    until: datetime,
    settings: LoyaltySettings,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Compare the rules in force with `proposed` over orders placed and events from `since` until `until`."""
    if until <= since:
        raise ValidationFailed([{"field": "until", "reason": "must be after since"}])
    if until - since > timedelta(days=MAX_DAYS):
        raise ValidationFailed([{"field": "since", "reason": f"a dry run covers at most {MAX_DAYS} days"}])
    with uow.session() as session:
        current = rule_versions.current(session, settings)
        rows = session.execute(
            sa.select(Order.id, Order.customer_id, Order.status, Order.total, Order.refunded_total, Order.placed_at)
            .where(Order.placed_at >= since, Order.placed_at < until, Order.customer_id.is_not(None))
            .where(Order.status.not_in(NOT_EARNING))
            .order_by(Order.placed_at)
        ).all()
        live = live_ids(session, {r.customer_id for r in rows})
        orders = [
            OrderState(r.id, live.get(r.customer_id, r.customer_id), r.status, r.total, r.refunded_total, r.placed_at)
            for r in rows
        ]
        baskets: dict[str, list[rules.Line]] = {}
        if progress:
            progress.start(len(orders), "reading the orders' lines")
        for start in range(0, len(orders), CHUNK):
            chunk = [o.id for o in orders[start : start + CHUNK]]
            baskets.update(effects.order_baskets(session, chunk))
            if progress:
                progress.advance(len(chunk))
        multipliers = tiers.multipliers(session, {o.customer_id for o in orders}, settings)
        events = _first_orders(session, orders) + _birthdays(session, since, until)
    events += _logged(log, since, until)
    return dry_run.compare(
        current,
        proposed,
        [(o, baskets.get(o.id, [])) for o in orders],
        events,
        settings=settings,
        tiers=multipliers,
        since=since,
        until=until,
    )


def _first_orders(session, orders: list[OrderState]) -> list[dry_run.BonusEvent]:
    """Of the period's orders, each customer's first earning order ever."""
    first = dict(
        session.execute(
            sa.select(Order.customer_id, sa.func.min(Order.placed_at))
            .where(Order.customer_id.is_not(None), Order.status.not_in(NOT_EARNING))
            .group_by(Order.customer_id)
        ).all()
    )
    return [
        dry_run.BonusEvent("first_order", o.customer_id, o.placed_at)
        for o in orders
        if first.get(o.customer_id) == o.placed_at
    ]


def _birthdays(session, since: datetime, until: datetime) -> list[dry_run.BonusEvent]:
    born = session.execute(
        sa.select(Customer.id, Customer.birthday).where(
            Customer.merged_into_id.is_(None), Customer.birthday.is_not(None)
        )
    ).all()
    out = []
    for year in range(since.year, until.year + 1):
        for customer_id, birthday in born:
            day = _in_year(birthday, year)
            at = datetime(day.year, day.month, day.day, 9)
            if since <= at < until:
                out.append(dry_run.BonusEvent("birthday", customer_id, at))
    return out


def _in_year(birthday: date, year: int) -> date:
    try:
        return birthday.replace(year=year)
    except ValueError:  # 29 February in a common year
        return date(year, 2, 28)


def _logged(log: EventLog, since: datetime, until: datetime) -> list[dry_run.BonusEvent]:
    by_event = {event: (kind, once) for kind, (event, once) in rules.BONUS_TRIGGERS.items()}
    with log.reader() as r:
        e = r.events.filter(
            r.events.event.isin(list(by_event)),
            r.events.customer_id.notnull(),
            ~r.events.source.isin([BROWSER, VERIFIED]),  # as live: what browsers send earns no bonus
        )
        frame = e.select("message_id", "event", "customer_id", "timestamp").execute()
    frame = frame.sort_values("timestamp")
    once = [event for event, (_, how) in by_event.items() if how == "customer"]
    firsts = frame[frame.event.isin(once)].drop_duplicates(["event", "customer_id"])
    each = frame[~frame.event.isin(once)]
    out = []
    for part in (firsts, each):
        part = part[(part.timestamp >= since) & (part.timestamp < until)]
        for message_id, event, customer_id, at in part.itertuples(index=False):
            out.append(dry_run.BonusEvent(by_event[event][0], customer_id, at.to_pydatetime(), message_id))
    return out
