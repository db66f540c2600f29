"""The overview: KPI tiles and trend charts."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from boomerang.core.errors import BoomerangError
from boomerang.dashboard.data import Analytics
from boomerang.dashboard.views.common import BoardDep, Viewer, parse_day, render
from boomerang.metrics.base import REGISTRY, as_json

router = APIRouter()


def overview(
    analytics: Analytics, *, interval: str = "month", date_from: date | None = None, date_to: date | None = None
) -> dict[str, Any]:
    """Everything the overview shows.

    Three metric runs give all of it: the repeat purchase rate is computed from the counts that
    average_order_value reports (the same orders per customer), and the churn rate from those of
    retention_rate (the same active customers), each by that metric's own formula.
    """
    period = {"date_from": date_from, "date_to": date_to}
    aov = analytics.metric("average_order_value", {**period, "interval": interval})
    activity = analytics.metric("retention_rate", {**period, "interval": "month"})
    nps = analytics.metric("nps", {**period, "interval": "month"})

    def repeat_rate(row):
        return as_json(REGISTRY["repeat_purchase_rate"].value(row))

    def churn_rate(row):
        return as_json(REGISTRY["churn_rate"].value(row))

    months = [
        {"bucket": row["bucket"], "retention": row["value"], "churn": churn_rate(row)} for row in activity["series"]
    ]
    latest = next((m for m in reversed(months) if m["retention"] is not None), None)
    return {
        "status": analytics.summary(),
        "from": aov["from"],
        "to": aov["to"],
        "interval": interval,
        "aov": aov["value"],
        "orders": aov["details"].get("orders"),
        "revenue": aov["details"].get("revenue"),
        "repeat_purchase_rate": repeat_rate(aov["details"]) if aov["details"].get("customers") else None,
        "latest_month": latest,
        "window_days": activity["details"].get("window_days"),
        "nps": nps["value"],
        "nps_answers": nps["details"].get("answers"),
        "sales_chart": {
            "type": "bar",
            "labels": [row["bucket"] for row in aov["series"]],
            "datasets": [
                {"label": "Orders", "data": [row.get("orders") for row in aov["series"]], "yAxisID": "y"},
                {
                    "label": "Revenue",
                    "type": "line",
                    "data": [row.get("revenue") for row in aov["series"]],
                    "yAxisID": "y2",
                },
            ],
        },
        "activity_chart": {
            "type": "line",
            "percent": True,
            "labels": [m["bucket"][:7] for m in months],
            "datasets": [
                {"label": "Retention rate", "data": [m["retention"] for m in months]},
                {"label": "Churn rate", "data": [m["churn"] for m in months]},
            ],
        },
    }


@router.get("/")
def overview_page(
    request: Request,
    user: Viewer,
    board: BoardDep,
    interval: Literal["week", "month"] = "month",
    date_from: str | None = None,
    date_to: str | None = None,
) -> Response:
    try:
        data = overview(
            board.analytics,
            interval=interval,
            date_from=parse_day(date_from, "date_from"),
            date_to=parse_day(date_to, "date_to"),
        )
    except BoomerangError as exc:
        return render(
            request,
            "overview.html",
            user=user,
            data=None,
            problem=exc.message,
            status=board.analytics.summary(),
            interval=interval,
            date_from=date_from,
            date_to=date_to,
        )
    return render(
        request,
        "overview.html",
        user=user,
        data=data,
        problem=None,
        status=data["status"],
        interval=interval,
        date_from=date_from,
        date_to=date_to,
    )
