"""How the recommendation blocks perform (`orchestration.reco_performance`): impressions, clicks, attributed orders
and revenue per block and variant, and the incremental revenue against each block's control."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from boomerang.api.deps import SessionDep, WorkspaceDep
from boomerang.orchestration import reco_performance
from boomerang.recommendations import store

router = APIRouter(prefix="/recommendations", tags=["recommendations"])


@router.get("/performance")
def performance(
    ws: WorkspaceDep,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=reco_performance.MAX_DAYS, description="the period: the last N days")] = (
        reco_performance.DEFAULT_DAYS
    ),
) -> dict[str, Any]:
    """Every block (the shop's, the ready-made, and any other the widget reported), by variant, over the period."""
    names = [b["name"] for b in store.listing(session)]
    return reco_performance.compute(ws.log, now=ws.now(), days=days, blocks=names)
