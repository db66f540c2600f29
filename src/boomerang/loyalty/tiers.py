"""Loyalty tiers: levels defined as settings data (`LoyaltySettings.tiers`, lowest first), reached with the paid spend
or the number of paid orders over the rolling `tier_period_days` (either qualifies). Each customer's tier is kept in
`loyalty_tiers` with what last qualified them.

- **Up at once**: when the ledger follows orders (`follow`, called by the event pipeline right after
  `loyalty.orders.follow`, in the same transaction), a customer who now qualifies for a higher tier gets it.
- **Down at the round only**: a customer found below their tier is marked `below_since`; the scheduled round
  (`review_round`) recounts everyone not counted for a day, and moves down those still below after
  `tier_grace_days` (to the tier they qualify for). Qualifying again clears the mark.
- The tier held when an order earns multiplies its cashback (`multipliers`, read by `loyalty.orders.follow`).
- Points about to expire: `warn_expiring` finds the lots expiring within `expiry_notice_days`, once per lot
  (`loyalty_expiry_notices`).

Loyalty sits below events, so it writes no event itself: every change comes back as a `Notice` (`Loyalty Tier
Changed`: from, to, direction up|down; `Loyalty Points Expiring`: points, expires_at, lot_id), and the caller that
sees both domains writes them into the inbox in the same transaction (`events.effects.log_loyalty_notices`). Orders
are read the same way: loyalty and orders are siblings, so the caller hands over how to count a customer's spend
(`Spending`; `events.effects.order_spending`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.config import LoyaltySettings, TierSettings
from boomerang.customers.merge import live_ids
from boomerang.db import UnitOfWork, in_chunks
from boomerang.loyalty import programme
from boomerang.loyalty.models import LoyaltyExpiryNotice, LoyaltyLot, LoyaltyTier

TIERS = LoyaltyTier.__table__
NOTICES = LoyaltyExpiryNotice.__table__
LOTS = LoyaltyLot.__table__
CHANGED = "Loyalty Tier Changed"
EXPIRING = "Loyalty Points Expiring"
QUALIFYING_STATUSES = ("paid", "shipped", "delivered", "partially_refunded")  # paid, not cancelled or returned
RECOUNT_AFTER = timedelta(days=1)  # the round recounts a customer's qualification this often


@dataclass(frozen=True)
class Qualified:
    """What counts towards a tier over the period: paid spend net of refunds, and paid orders."""

    spend: float = 0.0
    orders: int = 0


class Spending(Protocol):
    """Each customer's qualifying spend and orders placed after `since` (orders with `QUALIFYING_STATUSES`;
    customers without any may be left out)."""

    def __call__(self, session: Session, customer_ids: Sequence[str], since: datetime) -> dict[str, Qualified]: ...


@dataclass(frozen=True)
class Notice:
    """An event loyalty has to tell (the caller writes it: loyalty cannot reach the event inbox)."""

    message_id: str
    event: str
    customer_id: str
    at: datetime
    properties: dict[str, Any] = field(default_factory=dict)


Emit = Callable[[Session, list[Notice]], None]


# -- the levels ------------------------------------------------------------------------------------------------


def qualifies(tier: TierSettings, q: Qualified) -> bool:
    if not tier.min_spend and not tier.min_orders:
        return True
    return bool((tier.min_spend and q.spend >= tier.min_spend) or (tier.min_orders and q.orders >= tier.min_orders))


def reached(settings: LoyaltySettings, q: Qualified) -> int:
    """The highest tier (its index) these qualify for."""
    return max(i for i, tier in enumerate(settings.tiers) if qualifies(tier, q))


def index(settings: LoyaltySettings, name: str | None) -> int:
    """A tier's rank; a name the settings no longer have counts as the first tier."""
    folded = (name or "").casefold()
    return next((i for i, tier in enumerate(settings.tiers) if tier.name.casefold() == folded), 0)


def held(session: Session, customer_ids: Iterable[str]) -> dict[str, Any]:
    """The tier rows of these customers (those who have one)."""
    return {row.customer_id: row for row in in_chunks(session, lambda ids: _rows(ids), set(customer_ids))}


def _rows(ids: Sequence[str]) -> sa.Select:
    return sa.select(TIERS).where(TIERS.c.customer_id.in_(ids))


def multipliers(session: Session, customer_ids: Iterable[str], settings: LoyaltySettings) -> dict[str, float]:
    """The cashback multiplier of each customer's tier as held now (the first tier's for those without a row)."""
    ids = set(customer_ids)
    rows = held(session, ids)
    base = settings.tiers[0].multiplier
    return {cid: settings.tiers[index(settings, rows[cid].tier)].multiplier if cid in rows else base for cid in ids}


# -- following and reviewing -----------------------------------------------------------------------------------


def _changed(customer_id: str, old: TierSettings, new: TierSettings, direction: str, now: datetime, q: Qualified):
    return Notice(
        f"loyalty-tier:{customer_id}:{new.name}:{now.isoformat()}",
        CHANGED,
        customer_id,
        now,
        {"from": old.name, "to": new.name, "direction": direction, "spend": round(q.spend, 2), "orders": q.orders},
    )


def _count(
    session: Session,
    customer_ids: Sequence[str],
    *,
    now: datetime,
    spending: Spending,
    settings: LoyaltySettings,
    downgrade: bool,
) -> list[Notice]:
    """Recount these (live) customers and store their tiers: up at once; down only with `downgrade`, after the
    grace; flushes. Returns the changes."""
    if not customer_ids:
        return []
    counted = spending(session, customer_ids, now - timedelta(days=settings.tier_period_days))
    rows = held(session, customer_ids)
    grace = timedelta(days=settings.tier_grace_days)
    notices, inserts, updates = [], [], []
    for cid in customer_ids:
        q = counted.get(cid, Qualified())
        target = reached(settings, q)
        row = rows.get(cid)
        values = {"qualified_spend": round(q.spend, 4), "qualified_orders": q.orders, "updated_at": now}
        if row is None:
            inserts.append({"customer_id": cid, "tier": settings.tiers[target].name, "since": now, **values})
            if target > 0:
                notices.append(_changed(cid, settings.tiers[0], settings.tiers[target], "up", now, q))
            continue
        current = index(settings, row.tier)
        if target > current:
            values.update(tier=settings.tiers[target].name, since=now, below_since=None)
            notices.append(_changed(cid, settings.tiers[current], settings.tiers[target], "up", now, q))
        elif target == current:
            values.update(tier=settings.tiers[current].name, below_since=None)  # the name as the settings spell it
        else:
            below = row.below_since or now
            if downgrade and below + grace <= now:
                values.update(tier=settings.tiers[target].name, since=now, below_since=None)
                notices.append(_changed(cid, settings.tiers[current], settings.tiers[target], "down", now, q))
            else:
                values.update(below_since=below)
        updates.append({"b_customer": cid, **values})
    conn = session.connection()
    if inserts:
        conn.execute(sa.insert(TIERS), [{**r, "below_since": None} for r in inserts])
    columns = ("tier", "since", "below_since", "qualified_spend", "qualified_orders", "updated_at")
    for keys in {tuple(sorted(u)) for u in updates}:  # one statement per shape of update
        same = [u for u in updates if tuple(sorted(u)) == keys]
        statement = sa.update(TIERS).where(TIERS.c.customer_id == sa.bindparam("b_customer"))
        conn.execute(statement.values({c: sa.bindparam(c) for c in columns if c in keys}), same)
    return notices


def follow(
    session: Session,
    customer_ids: Iterable[str | None],
    *,
    now: datetime,
    spending: Spending,
    settings: LoyaltySettings | None = None,
) -> list[Notice]:
    """Recount the customers whose orders just changed (upgrades at once; a customer now below their tier is only
    marked); flushes. Returns the tier changes, for the caller to write as events."""
    settings = settings or programme.of(session)
    live = sorted(set(live_ids(session, {c for c in customer_ids if c}).values()))
    return _count(session, live, now=now, spending=spending, settings=settings, downgrade=False)


def review(
    session: Session,
    *,
    now: datetime,
    spending: Spending,
    settings: LoyaltySettings | None = None,
    after: str = "",
    limit: int = 500,
) -> tuple[list[Notice], str | None]:
    """One chunk of the scheduled review: recount the customers not counted for a day (or whose grace is over),
    move down those below their tier for the grace; flushes. Returns the changes and the last customer looked at
    (None when none was left)."""
    settings = settings or programme.of(session)
    grace_over = now - timedelta(days=settings.tier_grace_days)
    ids = list(
        session.scalars(
            sa.select(TIERS.c.customer_id)
            .where(
                TIERS.c.customer_id > after,
                sa.or_(TIERS.c.updated_at <= now - RECOUNT_AFTER, TIERS.c.below_since <= grace_over),
            )
            .order_by(TIERS.c.customer_id)
            .limit(limit)
        )
    )
    if not ids:
        return [], None
    return _count(session, ids, now=now, spending=spending, settings=settings, downgrade=True), ids[-1]


def review_round(
    uow: UnitOfWork,
    now: datetime,
    *,
    spending: Spending,
    emit: Emit,
    settings: LoyaltySettings | None = None,
    limit: int = 500,
) -> dict[str, int]:
    """The scheduled round: `review` chunk by chunk, each in its own transaction with its events (`emit`), then
    the points about to expire (`warn_expiring`). Returns what it did."""
    out = {"up": 0, "down": 0, "expiring": 0}
    after: str | None = ""
    while after is not None:
        with uow.session() as session:
            notices, after = review(session, now=now, spending=spending, settings=settings, after=after, limit=limit)
            emit(session, notices)
        for notice in notices:
            out[notice.properties["direction"]] += 1
    while True:
        with uow.session() as session:
            notices = warn_expiring(session, now=now, settings=settings, limit=limit * 10)
            emit(session, notices)
        out["expiring"] += len(notices)
        if len(notices) < limit * 10:
            return out


# -- points about to expire ------------------------------------------------------------------------------------


def warn_expiring(
    session: Session, *, now: datetime, settings: LoyaltySettings | None = None, limit: int = 5000
) -> list[Notice]:
    """The spendable lots expiring within `expiry_notice_days` not announced yet: one `Loyalty Points Expiring`
    each, recorded so that it is never told twice; flushes."""
    settings = settings or programme.of(session)
    if not settings.expiry_notice_days:
        return []
    told = sa.select(NOTICES.c.lot_id).where(NOTICES.c.lot_id == LOTS.c.id)
    lots = session.execute(
        sa.select(LOTS.c.id, LOTS.c.customer_id, LOTS.c.remaining, LOTS.c.expires_at)
        .where(
            LOTS.c.state != "expired",
            LOTS.c.remaining > 0,
            LOTS.c.available_at <= now,
            LOTS.c.expires_at > now,
            LOTS.c.expires_at <= now + timedelta(days=settings.expiry_notice_days),
            ~sa.exists(told),
        )
        .order_by(LOTS.c.expires_at, LOTS.c.id)
        .limit(limit)
    ).all()
    if not lots:
        return []
    session.connection().execute(sa.insert(NOTICES), [{"lot_id": lot.id, "sent_at": now} for lot in lots])
    return [
        Notice(
            f"loyalty-expiring:{lot.id}",
            EXPIRING,
            lot.customer_id,
            now,
            {"points": lot.remaining, "expires_at": lot.expires_at.isoformat(), "lot_id": lot.id},
        )
        for lot in lots
    ]


# -- reading ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """A customer's tier as templates, the bot and the API show it."""

    tier: str
    since: datetime | None
    multiplier: float
    benefits: dict[str, Any]
    next_tier: str | None
    missing_spend: float | None  # to the next tier, as last counted (None: it has no spend threshold)
    missing_orders: int | None
    qualified_spend: float
    qualified_orders: int
    below_since: datetime | None
    down_after: datetime | None  # when the round may move them down, while below

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.tier,
            "since": self.since,
            "multiplier": self.multiplier,
            "benefits": self.benefits,
            "next": self.next_tier,
            "missing": {"spend": self.missing_spend, "orders": self.missing_orders} if self.next_tier else None,
            "qualified": {"spend": self.qualified_spend, "orders": self.qualified_orders},
            "below_since": self.below_since,
            "down_after": self.down_after,
        }


def standings(
    session: Session, customer_ids: Iterable[str], settings: LoyaltySettings | None = None
) -> dict[str, Standing]:
    """Each customer's standing (the first tier, counted as nothing, for those without a row). Reads only."""
    settings = settings or programme.of(session)
    ids = set(customer_ids)
    rows = held(session, ids)
    out = {}
    for cid in ids:
        row = rows.get(cid)
        i = index(settings, row.tier) if row else 0
        tier = settings.tiers[i]
        spend = float(row.qualified_spend or 0) if row else 0.0
        orders = int(row.qualified_orders or 0) if row else 0
        up = settings.tiers[i + 1] if i + 1 < len(settings.tiers) else None
        below = row.below_since if row else None
        out[cid] = Standing(
            tier=tier.name,
            since=row.since if row else None,
            multiplier=tier.multiplier,
            benefits=tier.benefits.model_dump(),
            next_tier=up.name if up else None,
            missing_spend=round(max(0.0, up.min_spend - spend), 2) if up and up.min_spend else None,
            missing_orders=max(0, up.min_orders - orders) if up and up.min_orders else None,
            qualified_spend=spend,
            qualified_orders=orders,
            below_since=below,
            down_after=below + timedelta(days=settings.tier_grace_days) if below else None,
        )
    return out


def distribution(session: Session, settings: LoyaltySettings | None = None) -> list[dict[str, Any]]:
    """The tiers as defined, each with how many customers hold it (customers who never ordered hold no row)."""
    settings = settings or programme.of(session)
    counts: dict[int, int] = {}
    for name, n in session.execute(sa.select(TIERS.c.tier, sa.func.count()).group_by(TIERS.c.tier)):
        counts[index(settings, name)] = counts.get(index(settings, name), 0) + n
    return [{**tier.model_dump(), "customers": counts.get(i, 0)} for i, tier in enumerate(settings.tiers)]


def in_grace(
    session: Session, settings: LoyaltySettings | None = None, *, limit: int = 50
) -> tuple[list[dict[str, Any]], int]:
    """The customers found below their tier, longest first, and how many there are: their tier, since when they are
    below it, when the round may move them down, and the tier they qualify for as last counted. Reads only."""
    settings = settings or programme.of(session)
    below = TIERS.c.below_since.is_not(None)
    total = session.scalar(sa.select(sa.func.count()).select_from(TIERS).where(below)) or 0
    rows = session.execute(
        sa.select(TIERS).where(below).order_by(TIERS.c.below_since, TIERS.c.customer_id).limit(limit)
    ).all()
    grace = timedelta(days=settings.tier_grace_days)
    out = []
    for row in rows:
        q = Qualified(float(row.qualified_spend or 0), int(row.qualified_orders or 0))
        out.append(
            {
                "customer_id": row.customer_id,
                "tier": settings.tiers[index(settings, row.tier)].name,
                "since": row.since,
                "below_since": row.below_since,
                "down_after": row.below_since + grace,
                "qualifies_for": settings.tiers[reached(settings, q)].name,
                "qualified_spend": q.spend,
                "qualified_orders": q.orders,
            }
        )
    return out, total


# -- merges and privacy ----------------------------------------------------------------------------------------


def follow_merge(session: Session, from_id: str, into_id: str, now: datetime) -> None:
    """The surviving profile keeps the higher of the two tiers (and the larger counts until the next recount)."""
    rows = held(session, [from_id, into_id])
    gone, kept = rows.get(from_id), rows.get(into_id)
    if gone is None:
        return
    settings = programme.of(session)
    conn = session.connection()
    conn.execute(sa.delete(TIERS).where(TIERS.c.customer_id == from_id))
    if kept is None:
        conn.execute(sa.insert(TIERS), [{**gone._mapping, "customer_id": into_id, "updated_at": now}])
        return
    best = gone if index(settings, gone.tier) > index(settings, kept.tier) else kept
    conn.execute(
        sa.update(TIERS)
        .where(TIERS.c.customer_id == into_id)
        .values(
            tier=best.tier,
            since=best.since,
            below_since=best.below_since,
            qualified_spend=max(gone.qualified_spend or 0, kept.qualified_spend or 0),
            qualified_orders=max(gone.qualified_orders or 0, kept.qualified_orders or 0),
            updated_at=now - RECOUNT_AFTER,  # the round recounts the merged orders soon
        )
    )


def erase(session: Session, customer_id: str) -> int:
    """An erased customer holds no tier; returns how many rows went."""
    return session.execute(sa.delete(TIERS).where(TIERS.c.customer_id == customer_id)).rowcount
