"""The monthly review as JSON (orchestration.review): the same dict the dashboard page, the CLI and the email show."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import WorkspaceDep
from boomerang.orchestration import review

router = APIRouter(prefix="/review", tags=["review"])


@router.get("")
async def monthly_review(
    ws: WorkspaceDep,
    month: Annotated[str | None, Query(description="YYYY-MM; default: the data's last whole month")] = None,
) -> dict:
    """A month's KPIs against the month before, its funnel leaks, each journey's and campaign's incremental
    revenue with intervals, the segments that moved most and what the guards suppressed, with chart data."""

    def build() -> dict:
        first = review.parse_month(month, today=ws.now().date())
        share = ws.settings.guards.global_control_share
        return review.build(ws.uow, ws.log, month=first, global_control_share=share)

    return await run_in_threadpool(build)
