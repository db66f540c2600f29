"""Loyalty as segments see it: one row per customer with a tier, points or a badge, which the scheduled round
stores beside the event log (`orchestration.loyalty_traits`) for segment rules' `trait` leaves."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.config import LoyaltySettings
from boomerang.loyalty import programme, tiers, view
from boomerang.loyalty.achievements_store import PROGRESS
from boomerang.loyalty.ledger import BALANCES, LOTS

# trait name -> its type, as segments/definition.TRAITS lists them under the kind "loyalty"
COLUMNS = {
    "loyalty_tier": "string",
    "loyalty_tier_rank": "number",  # 0 for the first tier, 1 for the next...
    "loyalty_points": "number",  # spendable now
    "loyalty_pending": "number",  # earned, spendable later
    "loyalty_expiring": "number",  # of the spendable, expiring within 30 days
    "loyalty_lifetime_points": "number",  # earned over their whole history
    "loyalty_achievements": "list",  # keys of the achievements earned
}


def rows(session: Session, *, now: datetime, settings: LoyaltySettings | None = None) -> list[dict[str, Any]]:
    """Every customer with a tier, a ledger balance or an achievement earned, sorted by id."""
    settings = settings or programme.of(session)
    held = dict(session.execute(sa.select(tiers.TIERS.c.customer_id, tiers.TIERS.c.tier)).all())
    lifetime = dict(session.execute(sa.select(BALANCES.c.customer_id, -BALANCES.c.earned)).all())
    earned: dict[str, list[str]] = {}
    badges = (
        sa.select(PROGRESS.c.customer_id, PROGRESS.c.achievement_key)
        .where(PROGRESS.c.earned_at.is_not(None), PROGRESS.c.earned_at <= now)
        .order_by(PROGRESS.c.customer_id, PROGRESS.c.achievement_key)
    )
    for cid, key in session.execute(badges):
        earned.setdefault(cid, []).append(key)
    with_lots = session.scalars(sa.select(LOTS.c.customer_id).where(LOTS.c.remaining > 0).distinct())
    owners = set(held) | set(lifetime) | set(earned) | set(with_lots)
    points = view.points(session, owners, now=now)
    out = []
    for cid in sorted(owners):
        rank = tiers.index(settings, held.get(cid))
        mine = points[cid]
        out.append(
            {
                "customer_id": cid,
                "loyalty_tier": settings.tiers[rank].name,
                "loyalty_tier_rank": rank,
                "loyalty_points": mine.available,
                "loyalty_pending": mine.pending,
                "loyalty_expiring": mine.expiring,
                "loyalty_lifetime_points": lifetime.get(cid, 0),
                "loyalty_achievements": earned.get(cid, []),
            }
        )
    return out
