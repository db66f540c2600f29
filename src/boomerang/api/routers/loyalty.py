"""Loyalty: a customer's points and history; checkout (estimate, hold, confirm, cancel); manual adjustments."""

from __future__ import annotations

from fastapi import APIRouter, Query

from boomerang.api.deps import Offset, SessionDep, WorkspaceDep
from boomerang.loyalty import checkout, liability, rules, service, tiers
from boomerang.loyalty.schemas import (
    AccountOut,
    AdjustIn,
    AdjustOut,
    EstimateIn,
    EstimateOut,
    HistoryOut,
    HoldIn,
    HoldOut,
)

router = APIRouter(prefix="/loyalty", tags=["loyalty"])


@router.get("/customers/{customer_id}", response_model=AccountOut)
def get_account(customer_id: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Points spendable now, pending, held, expiring soon, the lots they are in and lifetime totals."""
    return service.account(session, customer_id, now=ws.now(), settings=ws.settings.loyalty)


@router.get("/customers/{customer_id}/history", response_model=HistoryOut)
def get_history(
    customer_id: str, session: SessionDep, limit: int = Query(50, ge=1, le=1000), offset: Offset = 0
) -> dict:
    """The customer's movements, newest first."""
    return service.history(session, customer_id, limit=limit, offset=offset)


@router.post("/estimate", response_model=EstimateOut)
def estimate(body: EstimateIn, ws: WorkspaceDep, session: SessionDep) -> dict:
    """What an order earns, and the most points that may pay for it."""
    lines = [
        rules.Line(amount=li.price * li.quantity, sku=li.sku, category=li.category, brand=li.brand, name=li.name)
        for li in body.lines
    ]
    return checkout.estimate(
        session, body.customer_id, body.amount(), settings=ws.settings.loyalty, now=ws.now(), lines=lines
    )


@router.post("/holds", response_model=HoldOut)
def hold(body: HoldIn, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Set points aside for an order (idempotent by order id); 409 beyond the balance."""
    return checkout.hold(
        session,
        body.customer_id,
        body.order_id,
        body.points,
        body.total,
        settings=ws.settings.loyalty,
        now=ws.now(),
        ttl_minutes=body.ttl_minutes,
    )


@router.post("/holds/{order_id}/confirm", response_model=HoldOut)
def confirm(order_id: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    """The order is paid: the held points are spent. 409 after the hold expired or was cancelled."""
    return checkout.confirm(session, order_id, now=ws.now())


@router.post("/holds/{order_id}/cancel", response_model=HoldOut)
def cancel(order_id: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    """The checkout was abandoned: the held points go back."""
    return checkout.cancel(session, order_id, now=ws.now())


@router.post("/adjust", response_model=AdjustOut)
def adjust(body: AdjustIn, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Add points (a lot spendable now) or take them (nearest expiry first), with a reason."""
    return service.adjust(
        session,
        body.customer_id,
        body.points,
        reason=body.reason,
        reference=body.reference,
        now=ws.now(),
        settings=ws.settings.loyalty,
    )


@router.get("/liability")
def get_liability(ws: WorkspaceDep, session: SessionDep, months: int = Query(12, ge=1, le=120)) -> dict:
    """What the programme owes: points outstanding and their value, expiry by month ahead, earned, redeemed and
    expired by month behind, the breakage rate seen and the breakage to expect."""
    return liability.report(session, now=ws.now(), settings=ws.settings.loyalty, months=months)


@router.get("/customers/{customer_id}/token")
def get_token(customer_id: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    """The customer's own signed token, for the shop's pages to show their points at /v1/loyalty/{token} (the
    same token opens their preference centre)."""
    cid = checkout.customer(session, customer_id)
    return {"customer_id": cid, "token": ws.links.preferences_token(cid), "url": ws.links.points(cid)}


@router.get("/tiers")
def get_tiers(ws: WorkspaceDep, session: SessionDep) -> dict:
    """The tiers as defined (lowest first: thresholds, multiplier, benefits), each with how many customers hold it."""
    return {"tiers": tiers.distribution(session, ws.settings.loyalty)}
