"""What the programme owes: the points customers hold (spendable and pending) and what they are worth, when they
expire, the points that flowed each month (earned, redeemed, lost to expiry), and the breakage to expect: of the
points that reached their expiry date, the share that lapsed unspent, applied to what is outstanding.

Read from the lots and the ledger as of `now`, so a lot past its time counts as expired before the round has
written its deduction. Reads only."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.config import LoyaltySettings
from boomerang.core.errors import ValidationFailed
from boomerang.loyalty.ledger import ENTRIES, LOTS, TRANSACTIONS

FLOWS = ("earned", "redeemed", "expired")  # the programme's accounts whose monthly movement is charted


def _month(at: datetime | date) -> str:
    return f"{at.year:04d}-{at.month:02d}"


def _months_back(now: datetime, count: int) -> list[str]:
    year, month = now.year, now.month
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def report(session: Session, *, now: datetime, settings: LoyaltySettings, months: int = 12) -> dict[str, Any]:
    """The liability: outstanding points and value, expiry by month ahead, flows by month behind, breakage."""
    if not 1 <= months <= 120:
        raise ValidationFailed([{"field": "months", "reason": "must be between 1 and 120"}])
    available = pending = 0
    holders: set[str] = set()
    expiring: dict[str, int] = defaultdict(int)
    never = 0
    live = sa.or_(LOTS.c.expires_at.is_(None), LOTS.c.expires_at > now)
    rows = session.execute(
        sa.select(LOTS.c.customer_id, LOTS.c.remaining, LOTS.c.available_at, LOTS.c.expires_at).where(
            LOTS.c.remaining > 0, LOTS.c.state != "expired", live
        )
    )
    for row in rows:
        holders.add(row.customer_id)
        if row.available_at > now:
            pending += row.remaining
        else:
            available += row.remaining
        if row.expires_at is None:
            never += row.remaining
        else:
            expiring[_month(row.expires_at)] += row.remaining
    matured = int(  # points of lots whose expiry date has come, net of what refunds took back
        session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(LOTS.c.amount - LOTS.c.reversed), 0)).where(
                LOTS.c.expires_at.is_not(None), LOTS.c.expires_at <= now
            )
        )
    )
    lapsed = int(
        session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(ENTRIES.c.amount), 0)).where(ENTRIES.c.account == "expired")
        )
    )
    # what lapsed without its round having run yet: remaining points of lots already past their expiry
    lapsed += int(
        session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(LOTS.c.remaining), 0)).where(
                LOTS.c.state != "expired", LOTS.c.expires_at.is_not(None), LOTS.c.expires_at <= now
            )
        )
    )
    breakage = lapsed / matured if matured else None
    outstanding = available + pending
    point_value = settings.point_value
    behind = _months_back(now, months)
    flows = {name: dict.fromkeys(behind, 0) for name in FLOWS}
    since = datetime(int(behind[0][:4]), int(behind[0][5:]), 1)
    moved = session.execute(
        sa.select(TRANSACTIONS.c.at, ENTRIES.c.account, ENTRIES.c.amount)
        .join(TRANSACTIONS, TRANSACTIONS.c.id == ENTRIES.c.transaction_id)
        .where(ENTRIES.c.account.in_(FLOWS), TRANSACTIONS.c.at >= since, TRANSACTIONS.c.at <= now)
    )
    for at, account, amount in moved:
        # the programme's side: earning takes points out of `earned` (negative), the others take them in
        flows[account][_month(at)] += -amount if account == "earned" else amount
    ahead = sorted(expiring)[:months]
    return {
        "as_of": now,
        "unit": settings.unit_name,
        "point_value": point_value,
        "customers": len(holders),
        "available": available,
        "pending": pending,
        "outstanding": outstanding,
        "value": round(outstanding * point_value, 2),
        "never_expiring": never,
        "breakage_rate": breakage,
        "expected_breakage": round(outstanding * breakage) if breakage is not None else None,
        "expected_breakage_value": round(outstanding * breakage * point_value, 2) if breakage is not None else None,
        "expiring_by_month": [{"month": m, "points": expiring[m]} for m in ahead],
        "later": sum(points for m, points in expiring.items() if m not in ahead),
        "flows_by_month": [{"month": m, **{name: flows[name][m] for name in FLOWS}} for m in behind],
    }
