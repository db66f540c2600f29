"""Referrals: a customer's referral code and link (made on demand), the referrals with their status, and every
decision with its reason (`loyalty.referrals` has the rules)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from boomerang.api.deps import Offset, SessionDep, WorkspaceDep
from boomerang.loyalty import referrals_links

router = APIRouter(prefix="/loyalty/referrals", tags=["loyalty referrals"])
Limit = Query(50, ge=1, le=referrals_links.MAX_LIMIT)


@router.get("")
def list_referrals(
    session: SessionDep,
    referrer: str | None = Query(None, description="one referrer's: Boomerang's id, the shop's id or the email"),
    status: str | None = Query(None, description="attributed, rewarded, void, rejected or reversed"),
    limit: int = Limit,
    offset: Offset = 0,
) -> dict:
    """Referrals, newest first: friend, referrer, code, channel, status, the first order."""
    return referrals_links.referrals(session, referrer=referrer, status=status, limit=limit, offset=offset)


@router.get("/decisions")
def list_decisions(
    session: SessionDep,
    referrer: str | None = None,
    friend: str | None = None,
    decision: str | None = Query(None, description="attributed, rejected, rewarded, void or reversed"),
    limit: int = Limit,
    offset: Offset = 0,
) -> dict:
    """Every decision with its reason and details, newest first."""
    return referrals_links.decisions(
        session, referrer=referrer, friend=friend, decision=decision, limit=limit, offset=offset
    )


@router.get("/summary")
def summary(session: SessionDep) -> dict:
    """Referrals by status, decisions by reason, the referrers with the most friends."""
    return referrals_links.summary(session)


@router.get("/customers/{customer_id}")
def customer_link(
    customer_id: str,
    ws: WorkspaceDep,
    session: SessionDep,
    channel: str = Query("link", description="the link's utm_medium: email, sms, telegram, link..."),
) -> dict:
    """The customer's referral code and link (made the first time), and how their referrals stand."""
    return referrals_links.referral_link(
        session, customer_id, shop_url=ws.settings.messaging.shop_url, channel=channel, now=ws.now()
    )
