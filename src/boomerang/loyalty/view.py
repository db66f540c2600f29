"""Reading the ledger without writing: what a customer can spend now, what waits, what is held and what expires soon
(as of any time, so a lot past its time reads right before the expiry round has run), and their history."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.db import in_chunks
from boomerang.loyalty.ledger import BALANCES, ENTRIES, LOTS, TRANSACTIONS
from boomerang.loyalty.models import LoyaltyHold

HOLDS = LoyaltyHold.__table__
SOON_DAYS = 30  # "expiring soon"


@dataclass
class Points:
    """A customer's points as of a moment."""

    available: int = 0  # spendable now
    pending: int = 0  # earned, spendable later
    held: int = 0  # set aside for checkouts not yet confirmed
    expiring: int = 0  # of the available, expiring within SOON_DAYS
    expiring_at: datetime | None = None  # the next expiry among them
    lots: list[dict[str, Any]] = field(default_factory=list)


def points(
    session: Session, customer_ids: Iterable[str], *, now: datetime, with_lots: bool = False
) -> dict[str, Points]:
    """Each customer's points as of `now`, read from their lots and holds."""
    out = {cid: Points() for cid in customer_ids}
    soon = now + timedelta(days=SOON_DAYS)
    lots = in_chunks(
        session,
        lambda ids: (
            sa.select(LOTS)
            .where(LOTS.c.customer_id.in_(ids), LOTS.c.state != "expired", LOTS.c.remaining > 0)
            .order_by(LOTS.c.expires_at.is_(None), LOTS.c.expires_at, LOTS.c.id)
        ),
        out,
    )
    for lot in lots:
        mine = out[lot.customer_id]
        expired = lot.expires_at is not None and lot.expires_at <= now
        if expired:
            continue
        if lot.available_at > now:
            mine.pending += lot.remaining
        else:
            mine.available += lot.remaining
            if lot.expires_at is not None and lot.expires_at <= soon:
                mine.expiring += lot.remaining
                mine.expiring_at = min(filter(None, (mine.expiring_at, lot.expires_at)))
        if with_lots:
            mine.lots.append(
                {
                    "id": lot.id,
                    "order_id": lot.order_id,
                    "amount": lot.amount,
                    "remaining": lot.remaining,
                    "state": "pending" if lot.available_at > now else "available",
                    "available_at": lot.available_at,
                    "expires_at": lot.expires_at,
                }
            )
    lapsed: list[tuple[str, int]] = []
    for hold in in_chunks(
        session,
        lambda ids: sa.select(HOLDS.c.customer_id, HOLDS.c.points, HOLDS.c.expires_at, HOLDS.c.drawn).where(
            HOLDS.c.customer_id.in_(ids), HOLDS.c.state == "held"
        ),
        out,
    ):
        if hold.expires_at > now:
            out[hold.customer_id].held += hold.points
        else:  # past its time, not released yet: its points are back where their lots have not expired
            lapsed += [(hold.customer_id, int(lot_id), points) for lot_id, points in (hold.drawn or {}).items()]
    if lapsed:
        alive = _alive(session, {lot_id for _, lot_id, _ in lapsed}, now)
        for customer_id, lot_id, points in lapsed:
            out[customer_id].available += points if lot_id in alive else 0
    return out


def _alive(session: Session, lot_ids: set[int], now: datetime) -> set[int]:
    """Which of these lots have not expired by `now`."""
    rows = in_chunks(session, lambda ids: sa.select(LOTS.c.id, LOTS.c.expires_at).where(LOTS.c.id.in_(ids)), lot_ids)
    return {row.id for row in rows if row.expires_at is None or row.expires_at > now}


def totals(session: Session, customer_id: str) -> dict[str, int]:
    """What the customer earned, redeemed, lost to expiry and had adjusted, over their whole history."""
    row = session.execute(sa.select(BALANCES).where(BALANCES.c.customer_id == customer_id)).first()
    if row is None:
        return {"earned": 0, "redeemed": 0, "expired": 0, "adjusted": 0}
    return {"earned": -row.earned, "redeemed": row.redeemed, "expired": row.expired, "adjusted": -row.adjusted}


def history(session: Session, customer_id: str, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """The customer's transactions, newest first, each with what it did to their own accounts."""
    rows = session.execute(
        sa.select(TRANSACTIONS)
        .where(TRANSACTIONS.c.customer_id == customer_id)
        .order_by(TRANSACTIONS.c.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    effects: dict[int, dict[str, int]] = {row.id: {} for row in rows}
    transfers = {row.id for row in rows if row.kind == "transfer"}  # both sides are there: count the receiving one
    for entry in in_chunks(
        session,
        lambda ids: sa.select(
            ENTRIES.c.transaction_id, ENTRIES.c.customer_id, ENTRIES.c.account, ENTRIES.c.amount
        ).where(ENTRIES.c.transaction_id.in_(ids), ENTRIES.c.account.in_(("wallet", "pending", "held"))),
        effects,
    ):
        if entry.transaction_id in transfers and entry.customer_id != customer_id:
            continue
        mine = effects[entry.transaction_id]
        mine[entry.account] = mine.get(entry.account, 0) + entry.amount
    return [
        {
            "id": row.id,
            "reference": row.reference,
            "kind": row.kind,
            "order_id": row.order_id,
            "source": row.source,
            "reason": row.reason,
            "at": row.at,
            "change": {k: v for k, v in effects[row.id].items() if v},
            "detail": row.detail or {},
        }
        for row in rows
    ]
