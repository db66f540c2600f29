"""The monthly review page: the month's KPIs against the month before, funnel leaks, what journeys and campaigns
changed with intervals, the segments that moved most and what the guards suppressed, with charts
(orchestration.review builds it; the email and Telegram message the owners get link here)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from boomerang.core.errors import BoomerangError
from boomerang.dashboard.views.common import BoardDep, Viewer, render
from boomerang.dashboard.views.trends import problem_of
from boomerang.orchestration import review

router = APIRouter()


@router.get("/review")
def review_page(request: Request, user: Viewer, board: BoardDep, month: str | None = None) -> Response:
    try:
        first = review.parse_month(month, today=board.ws.now().date())
        status = board.analytics.summary()
        with board.analytics.reading():
            data = review.build(
                board.ws.uow,
                board.ws.log,
                month=first,
                global_control_share=board.ws.settings.guards.global_control_share,
                run=board.analytics.metric,
                status=status,
            )
    except BoomerangError as exc:
        problem, status_code = problem_of(exc)
        return render(
            request, "review.html", user=user, data=None, problem=problem, month=month, status_code=status_code
        )
    return render(request, "review.html", user=user, data=data, problem=None, month=data["month"])
