"""Loyalty: what the programme owes (points outstanding, their value, when they expire, the breakage to expect)
and how points flowed month by month."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from boomerang.dashboard.views.common import BoardDep, Viewer, render
from boomerang.loyalty import liability

router = APIRouter()


def charts(report: dict[str, Any]) -> dict[str, Any]:
    """The report's two charts, as Chart.js configurations."""
    unit = report["unit"]
    ahead = report["expiring_by_month"]
    behind = report["flows_by_month"]
    return {
        "expiring": {
            "type": "bar",
            "labels": [row["month"] for row in ahead],
            "datasets": [{"label": f"{unit} expiring", "data": [row["points"] for row in ahead]}],
        },
        "flows": {
            "type": "bar",
            "labels": [row["month"] for row in behind],
            "datasets": [
                {"label": name.capitalize(), "data": [row[name] for row in behind]} for name in liability.FLOWS
            ],
        },
    }


@router.get("/loyalty")
def loyalty_page(request: Request, user: Viewer, board: BoardDep, months: int = Query(12, ge=1, le=120)) -> Response:
    settings = board.ws.settings.loyalty
    with board.ws.uow.session() as s:
        report = liability.report(s, now=board.ws.now(), settings=settings, months=months)
    return render(
        request, "loyalty.html", user=user, report=report, charts=charts(report), settings=settings, months=months
    )
