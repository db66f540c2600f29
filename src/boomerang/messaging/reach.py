"""Who a send to a segment would reach, before it is sent: the segment's members as last computed, and how
many of them each channel can reach (consent granted and, where the channel needs one, an address). An
estimate: the guards still decide each message when it leaves (caps, quiet hours, the global control group,
preferences), and the segment may change before then."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.config import GuardSettings
from boomerang.core.vocab import ADDRESS_FIELDS
from boomerang.customers.models import Consent, Customer
from boomerang.experiments import stats
from boomerang.orders.models import Order
from boomerang.orders.per_customer import NOT_COUNTED
from boomerang.segments.models import Segment, SegmentMember


def _reachable(segment_id: int, channel: str) -> sa.Select:
    """The members with consent on `channel` and, where it needs one, an address."""
    query = (
        sa.select(Consent.customer_id)
        .join(SegmentMember, SegmentMember.customer_id == Consent.customer_id)
        .where(SegmentMember.segment_id == segment_id, Consent.channel == channel, Consent.granted.is_(True))
    )
    field = ADDRESS_FIELDS.get(channel)
    if field:
        address = getattr(Customer, field)
        query = query.join(Customer, Customer.id == Consent.customer_id).where(address.is_not(None), address != "")
    return query


def _count(session: Session, query: sa.Select | sa.CompoundSelect) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0)


def segment_reach(session: Session, segment: str, channels: list[str]) -> dict[str, Any]:
    """The segment's size as last computed, when, and the members each channel (and any of them) reaches."""
    row = session.scalar(sa.select(Segment).where(Segment.name == segment))
    if row is None or row.refreshed_at is None:
        return {"segment": segment, "computed_at": None, "members": None, "channels": {}, "any": None}
    members = _count(session, sa.select(SegmentMember.customer_id).where(SegmentMember.segment_id == row.id))
    per_channel = {c: _count(session, _reachable(row.id, c)) for c in channels}
    either = _count(session, sa.union(*(_reachable(row.id, c) for c in channels))) if channels else 0
    return {
        "segment": segment,
        "computed_at": row.refreshed_at,
        "members": members,
        "channels": per_channel,
        "any": either,
    }


def buying_share(session: Session, segment: str, days: float, *, now: datetime) -> float | None:
    """The share of the segment's members who bought within the last `days`: what its holdout is likely to do
    within a campaign's attribution window of that length (None when the segment has no members computed)."""
    row = session.scalar(sa.select(Segment).where(Segment.name == segment))
    if row is None or row.refreshed_at is None:
        return None
    members = sa.select(SegmentMember.customer_id).where(SegmentMember.segment_id == row.id)
    total = _count(session, members)
    if not total:
        return None
    buyers = sa.select(Order.customer_id).where(
        Order.customer_id.in_(members), Order.placed_at >= now - timedelta(days=days), Order.status.not_in(NOT_COUNTED)
    )
    return _count(session, buyers.distinct()) / total


def detectable_lift(share: float, members: int, holdout_percent: float, variants: int) -> float | None:
    """The smallest difference in conversion (in share points) between one variant and the holdout that the
    campaign's results (always-valid intervals, experiments.stats) find 8 times in 10, when the holdout converts at
    `share` (None when a group would be empty)."""
    held = members * holdout_percent / 100
    each = (members - held) / max(variants, 1)
    if not 0 < share < 1:
        return None
    return stats.detectable_effect(math.sqrt(share * (1 - share)), each, held, sequential=True)


def guards_in_words(guards: GuardSettings, category: str) -> list[str]:
    """The rules the guards apply to a message of `category`, as a person reads them."""
    said = ["consent on the channel and an address are needed; a withdrawn consent stops the message"]
    if category == "transactional":
        return said
    caps = ", ".join(
        f"{cap.count} per {cap.days:g} days on {'all channels' if name == 'all' else name}"
        for name, cap in guards.caps.items()
    )
    said += [
        f"at most {caps}",
        f"nothing between {guards.quiet_start} and {guards.quiet_end} in the customer's time (held until morning)",
        f"the same message again within {guards.duplicate_window_hours:g} hours is suppressed",
        f"{guards.global_control_share:.0%} of customers (the global control group) get no marketing at all",
    ]
    if category == "promotional":
        said.append(f"no promotion within {guards.priority_gap_hours:g} hours after a triggered or transactional one")
    return said
