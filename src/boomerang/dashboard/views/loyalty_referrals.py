"""Loyalty › Referrals: how referrals stand (by status, the top referrers), the referrals of one referrer or all,
and every decision with its reason."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from boomerang.core.errors import BoomerangError
from boomerang.dashboard.views.common import BoardDep, Viewer, render
from boomerang.loyalty import referrals_links
from boomerang.loyalty.models import REFERRAL_STATES

router = APIRouter()
SHOWN = 100


@router.get("/loyalty/referrals")
def referrals_page(
    request: Request,
    user: Viewer,
    board: BoardDep,
    referrer: str | None = None,
    status: str | None = None,
    decision: str | None = None,
) -> Response:
    params = {k: v for k, v in {"referrer": referrer, "status": status, "decision": decision}.items() if v}
    errors, listed, decided = [], {"items": []}, {"items": []}
    with board.ws.uow.session() as s:
        summary = referrals_links.summary(s)
        try:
            listed = referrals_links.referrals(s, referrer=referrer, status=status, limit=SHOWN)
            decided = referrals_links.decisions(s, referrer=referrer, decision=decision, limit=SHOWN)
        except BoomerangError as exc:
            errors = exc.errors
    return render(
        request,
        "loyalty_referrals.html",
        user=user,
        status_code=400 if errors else 200,
        summary=summary,
        referrals=listed["items"],
        decisions=decided["items"],
        params=params,
        errors=errors,
        states=REFERRAL_STATES,
        kinds=referrals_links.DECISION_KINDS,
        settings=board.ws.settings.loyalty.referrals,
        unit=board.ws.settings.loyalty.unit_name,
    )
