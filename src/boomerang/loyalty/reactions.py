"""Loyalty's reactions to what customers do, called by the event pipeline after an accepted batch's effects: fixed
bonuses of the earn rules (`bonuses`), referrals (`referrals`) and achievements (`achievements`). Each is idempotent by
its own references, so a retried or reordered batch changes nothing twice. Loyalty sits below the event pipeline,
so it reads events through `Happening` and hands back the events it has to tell as `tiers.Notice`s, which the caller
writes into the inbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from boomerang.loyalty import achievements, bonuses, referrals
from boomerang.loyalty.orders import OrderLike
from boomerang.loyalty.tiers import Notice


class Happening(Protocol):
    """What loyalty reads of an accepted event (an `events.schemas.Event` is one), its customer resolved."""

    message_id: str
    type: str  # track, identify...
    event: str  # the track event's name ("Order Completed"), "" for the other types
    customer_id: str | None
    timestamp: datetime
    properties: dict[str, Any]
    context: dict[str, Any]
    source: str


def follow(
    session: Session, happenings: Sequence[Happening], orders: Sequence[OrderLike], *, now: datetime
) -> list[Notice]:
    """React to a batch of events and the orders it touched (as they stand now); flushes. Returns the events to tell."""
    notices: list[Notice] = []
    notices += referrals.follow(session, happenings, orders, now=now)  # friends attributed, rewarded
    bonuses.follow(session, happenings, now=now)
    notices += achievements.follow(session, happenings, orders, now=now)  # badges and their points
    return notices
