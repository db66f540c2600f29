"""Loyalty as the customer sees it: their points, what expires and when, their latest movements and their live
promo codes, read with their own signed token (the preference centre's, which every message links to), so that a
shop's site or app can show them. Read only; the secret key's `GET /api/loyalty/customers/{id}/token` gives it."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel

from boomerang.api.deps import Unauthorized
from boomerang.core.errors import NotFound
from boomerang.core.signing import BadToken
from boomerang.customers.merge import live_ids
from boomerang.loyalty import achievements_store, referrals_links, service, view
from boomerang.loyalty.schemas import AchievementProgress
from boomerang.messaging import links

router = APIRouter(tags=["loyalty"])
MOVEMENTS = 20


class Movement(BaseModel):
    at: datetime
    kind: str
    spendable: int  # what it did to the points the customer may spend now
    pending: int  # and to those they may spend later
    order_id: str | None


class PublicCode(BaseModel):
    code: str
    discount_percent: float | None
    expires_at: datetime | None


class Statement(BaseModel):
    unit: str
    balance: int
    pending: int
    held: int
    expiring: int
    expiring_at: datetime | None
    movements: list[Movement]
    codes: list[PublicCode]
    referral_link: str | None = None  # theirs to share (made on first use); none while referrals are off
    achievements: list[AchievementProgress] = []  # badges earned, then the progress towards those on


def customer_of(request: Request, token: str) -> str:
    """The live customer a preference-centre token names; 401 for a token that is not one."""
    ws = request.app.state.ws
    try:
        customer_id = ws.links.customer_of(links.PREFERENCES, token)
    except BadToken:
        raise Unauthorized("invalid or altered token", field="token") from None
    return customer_id


@router.get("/v1/loyalty/{token}", response_model=Statement, openapi_extra={"security": []})
def statement(token: str, request: Request) -> dict:
    """The customer's points and codes, for the shop's own pages."""
    ws = request.app.state.ws
    customer_id = customer_of(request, token)
    with ws.uow.session() as session:
        customer_id = live_ids(session, [customer_id]).get(customer_id)
        if customer_id is None:  # erased
            raise NotFound("no such customer", field="token")
        wallet = service.wallets(session, [customer_id], now=ws.now())[customer_id]
        moves = view.history(session, customer_id, limit=MOVEMENTS)
        badges = achievements_store.progress(session, customer_id, now=ws.now())
        shop_url, refer = ws.settings.messaging.shop_url, ws.settings.loyalty.referrals.enabled
        referral = referrals_links.links_of(session, [customer_id], shop_url=shop_url, now=ws.now()) if refer else {}
    return {
        "unit": ws.settings.loyalty.unit_name,
        "balance": wallet.points,
        "pending": wallet.pending,
        "held": wallet.held,
        "expiring": wallet.expiring,
        "expiring_at": wallet.expiring_at,
        "movements": [
            {
                "at": m["at"],
                "kind": m["kind"],
                "spendable": m["change"].get("wallet", 0),
                "pending": m["change"].get("pending", 0),
                "order_id": m["order_id"],
            }
            for m in moves
            if m["change"].get("wallet") or m["change"].get("pending")
        ],
        "codes": [vars(code) for code in wallet.codes],
        "referral_link": referral.get(customer_id),
        "achievements": badges,
    }
