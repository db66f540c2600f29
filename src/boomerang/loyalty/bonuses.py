"""The fixed bonuses of the earn rules: points for signing up, a first order, a review, an NPS answer, joining the
Telegram bot, and a birthday. Each is a lot posted once per reference: per customer (`bonus:registration:{id}`),
per event (`bonus:review:{message id}`) or per year (`bonus:birthday:{id}:{year}`), so retries and reordering
change nothing; the daily cap counts them with the orders' points. A bonus is spendable at once, except the first
order's, which waits for the order's own points. The event pipeline calls `follow` (through `reactions`); orders
call `first_orders`; the scheduled round calls `birthdays`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.config import LoyaltySettings
from boomerang.core.vocab import trusted
from boomerang.customers.models import Customer
from boomerang.db import UnitOfWork
from boomerang.loyalty import lots, programme, rule_versions
from boomerang.loyalty.daily import DailyCap
from boomerang.loyalty.ledger import LOTS, TRANSACTIONS, Book
from boomerang.loyalty.rules import BONUS_TRIGGERS, EarnRules

SOURCE = "bonus"
BY_EVENT = {event: kind for kind, (event, _) in BONUS_TRIGGERS.items()}


class Seen(Protocol):
    """What a bonus reads of an event (a `reactions.Happening` is one)."""

    message_id: str
    type: str
    event: str
    customer_id: str | None
    timestamp: datetime
    source: str


class Dated(Protocol):
    id: str
    placed_at: datetime


def reference(kind: str, customer_id: str, at: datetime, message_id: str | None = None) -> str:
    once = BONUS_TRIGGERS[kind][1]
    if once == "event" and message_id:
        return f"bonus:{kind}:{message_id}"
    if once == "year":
        return f"bonus:{kind}:{customer_id}:{at.year}"
    return f"bonus:{kind}:{customer_id}"


def follow(session: Session, seen: Sequence[Seen], *, now: datetime, settings: LoyaltySettings | None = None) -> int:
    """Bonuses for these events (the rules in force); flushes. Returns how many were posted."""
    kinds = [
        (BY_EVENT[e.event], e)
        for e in seen
        if e.type == "track" and e.event in BY_EVENT and e.customer_id and trusted(e.source)  # not browsers': free
    ]
    if not kinds:
        return 0
    settings = settings or programme.of(session)
    version, earn_rules = rule_versions.current(session, settings)
    wanted = [(kind, e) for kind, e in kinds if earn_rules.bonus(kind)]
    if not wanted:
        return 0
    book = Book(session, now)
    book.lock(e.customer_id for _, e in wanted)
    cap = DailyCap(earn_rules.caps.per_day, session)
    grants = [
        (reference(kind, e.customer_id, e.timestamp, e.message_id), kind, e.customer_id, e.timestamp, {})
        for kind, e in wanted
    ]
    posted = _post(book, grants, earn_rules, settings, cap, version)
    book.write()
    cap.write()
    return posted


def first_orders(
    book: Book,
    firsts: Mapping[str, Dated],
    earn_rules: EarnRules,
    settings: LoyaltySettings,
    cap: DailyCap,
    version: int,
    source: str,
) -> int:
    """The first-order bonus for these customers' first earning orders: only where the ledger holds no earlier
    order of theirs (the customers are locked in `book`)."""
    seen_before = set(
        book.conn.scalars(
            sa.select(LOTS.c.customer_id)
            .where(
                LOTS.c.customer_id.in_(list(firsts)),
                LOTS.c.order_id.is_not(None),
                LOTS.c.order_id.not_in([str(o.id) for o in firsts.values()]),
            )
            .distinct()
        )
    )
    grants = []
    for customer, order in firsts.items():
        if customer in seen_before:
            continue
        available = programme.available_at(order.placed_at, settings)
        grants.append(
            ("bonus:first_order:" + customer, "first_order", customer, order.placed_at, {"order_id": str(order.id)})
            + (available,)
        )
    return _post(book, grants, earn_rules, settings, cap, version, source=source)


def revoke_first_orders(book: Book, lost: Mapping[str, str], source: str) -> None:
    """Take back the first-order bonus of customers whose first order (`lost`: customer -> order id) is cancelled
    or returned whole; a partial refund keeps it. Never posted again for them."""
    references = {f"bonus:first_order:{customer}": order_id for customer, order_id in lost.items()}
    done = book.taken(f"{reference}:reverse" for reference in references)
    paid = book.conn.execute(
        sa.select(TRANSACTIONS.c.id, TRANSACTIONS.c.reference, TRANSACTIONS.c.detail).where(
            TRANSACTIONS.c.reference.in_(list(references))
        )
    )
    for row in paid:
        order_id = references[row.reference]
        if f"{row.reference}:reverse" in done or (row.detail or {}).get("order_id") != order_id:
            continue
        lots.revoke(book, book.lot(row.id), f"{row.reference}:reverse", source, {"order_id": order_id})


def birthdays(uow: UnitOfWork, now: datetime, *, settings: LoyaltySettings | None = None, limit: int = 500) -> int:
    """The scheduled round: the birthday bonus for everyone whose birthday is today (29 February counts on the 28th
    in other years), a chunk per transaction. Returns how many were posted."""
    with uow.session() as session:
        settings = settings or programme.of(session)
        version, earn_rules = rule_versions.current(session, settings)
        if not earn_rules.bonus("birthday"):
            return 0
        ids = list(session.scalars(_born_today(now.date())))
    posted = 0
    for start in range(0, len(ids), limit):
        chunk = ids[start : start + limit]
        with uow.session() as session:
            book = Book(session, now)
            book.lock(chunk)
            cap = DailyCap(earn_rules.caps.per_day, session)
            grants = [(reference("birthday", c, now), "birthday", c, now, {}) for c in chunk]
            posted += _post(book, grants, earn_rules, settings, cap, version)
            book.write()
            cap.write()
    return posted


def _born_today(today: date) -> sa.Select:
    month, day = sa.func.extract("month", Customer.birthday), sa.func.extract("day", Customer.birthday)
    days = [today.day] + ([29] if (today.month, today.day) == (2, 28) and not _leap(today.year) else [])
    return (
        sa.select(Customer.id)
        .where(Customer.merged_into_id.is_(None), Customer.birthday.is_not(None), month == today.month, day.in_(days))
        .order_by(Customer.id)
    )


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _post(
    book: Book,
    grants: Iterable[tuple[Any, ...]],
    earn_rules: EarnRules,
    settings: LoyaltySettings,
    cap: DailyCap,
    version: int,
    *,
    source: str = SOURCE,
) -> int:
    """Post each grant (reference, kind, customer, when, detail[, available at]) not posted before."""
    grants = list(grants)
    taken = book.taken(g[0] for g in grants)
    posted = 0
    for ref, kind, customer, at, detail, *available in grants:
        if ref in taken:
            continue
        taken.add(ref)
        points = cap.grant(customer, at.date(), earn_rules.bonus(kind))
        if points <= 0:
            continue
        since = max(available[0] if available else book.now, book.now)
        posting = lots.credit(
            book,
            customer,
            points,
            reference=ref,
            kind="bonus",
            source=source,
            available_at=since,
            expires_at=programme.expires_at(since, settings),
            reason=kind.replace("_", " "),
        )
        posting.detail = {"bonus": kind, "rules_version": version, **detail}
        posted += 1
    return posted
