"""The programme's settings as the ledger applies them: how many points an amount earns, how much of an order points
may pay, when a lot becomes spendable and when it expires.

Callers that have the workspace's settings pass them (the API, the CLI). Paths that reach the ledger from deeper
down (orders seen by the event pipeline, a journey's award) read them from the session: the composition root lends
them to every session it opens (`session_info`); a session without them applies the defaults."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from boomerang.config import LoyaltySettings

KEY = "boomerang.loyalty.programme"
DEFAULT = LoyaltySettings()


def session_info(settings: LoyaltySettings) -> dict:
    """What the unit of work puts in every session's `info` for the ledger."""
    return {KEY: settings}


def of(session: Session) -> LoyaltySettings:
    """The programme the session was lent, or the default one."""
    return session.info.get(KEY) or DEFAULT


def _exact(value: float) -> Decimal:
    return Decimal(repr(float(value)))


def spend_limit(total: float, programme: LoyaltySettings) -> int:
    """The most points that may pay for an order of `total`: its allowed share, in whole points."""
    if not total or total <= 0 or not math.isfinite(total):
        return 0
    value = _exact(total) * _exact(programme.max_redeem_share) / _exact(programme.point_value)
    return int(value.to_integral_value(rounding="ROUND_FLOOR"))


def available_at(placed_at: datetime, programme: LoyaltySettings) -> datetime:
    """When an order's points become spendable."""
    return placed_at + timedelta(days=programme.pending_days)


def expires_at(available: datetime, programme: LoyaltySettings) -> datetime | None:
    """When points spendable from `available` expire (never, with expiry_days 0)."""
    return available + timedelta(days=programme.expiry_days) if programme.expiry_days else None


def hold_until(now: datetime, programme: LoyaltySettings, ttl_minutes: float | None = None) -> datetime:
    return now + timedelta(minutes=ttl_minutes or programme.hold_ttl_minutes)
