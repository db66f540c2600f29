"""The overview: KPI tiles, each against the period before, and trend charts.

With no dates chosen the tiles show the last whole calendar month and the charts the twelve months up to
the data's last day; with dates, both follow them. A period that runs past the data is cut there, marked
incomplete and compared with the same days of the period before (see `metrics.periods`).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from boomerang.core.errors import BoomerangError, ValidationFailed
from boomerang.dashboard.data import Analytics
from boomerang.dashboard.views.common import BoardDep, Viewer, parse_day, render
from boomerang.dashboard.views.trends import bucket_label, marked, problem_of, span_label
from boomerang.metrics import headline, periods
from boomerang.metrics.base import REGISTRY, as_json
from boomerang.metrics.periods import Period

router = APIRouter()
TREND_MONTHS = 12  # the charts' default reach


def data_days(status: dict[str, Any]) -> tuple[date, date]:
    """The first and the last day of the event log (a 400 naming `events` when it is empty)."""
    events = status["events"]
    if not events["last"]:
        raise ValidationFailed([{"field": "events", "reason": "the event log is empty"}])
    return date.fromisoformat(events["first"][:10]), date.fromisoformat(events["last"][:10])


def choose(first: date, last: date, date_from: date | None, date_to: date | None) -> tuple[Period, Period, Period]:
    """The tiles' period, the one they are compared with, and the charts' period."""
    if date_from and date_to and date_from > date_to:
        raise ValidationFailed([{"field": "date_from", "reason": "must not be after date_to"}])
    if date_from is None and date_to is None:
        month = periods.last_complete_month(first, last)
        current, before = periods.compared(*((month.start, month.end) if month else (first, last)), last)
        return current, before, Period(_months_back(last, TREND_MONTHS - 1, first), last)
    start, end = date_from or first, date_to or last
    if start > last:
        raise ValidationFailed([{"field": "date_from", "reason": f"after the data's last day, {last.isoformat()}"}])
    current, before = periods.compared(start, end, last)
    return current, before, current


def _months_back(last: date, months: int, first: date) -> date:
    month = last.year * 12 + last.month - 1 - months
    return max(first, date(month // 12, month % 12 + 1, 1))


def overview(
    analytics: Analytics,
    *,
    interval: str = "month",
    date_from: date | None = None,
    date_to: date | None = None,
    currency: str | None = None,
) -> dict[str, Any]:
    """Everything the overview shows."""
    status = analytics.summary()
    first, last = data_days(status)
    current, before, reach = choose(first, last, date_from, date_to)
    with analytics.reading():
        comparable = before.start >= first
        measured = headline.measure_both(analytics.metric, current, before if comparable else None, reach=reach)
        now, then = headline.values(measured[0]), headline.values(measured[1]) if comparable else None
        trend = reach.params()
        sales = analytics.sales({**trend, "interval": interval})
        activity = analytics.metric("retention_rate", {**trend, "interval": "month"})
    return {
        "status": status,
        "period": {"label": span_label(current), "complete": current.complete, **current.params()},
        "before": {"label": span_label(before), "comparable": comparable, **before.params()},
        "reach": {"label": span_label(reach), "complete": reach.complete},
        "last_day": last.isoformat(),
        "interval": interval,
        "tiles": headline.tiles(status, now, then),
        "sales_chart": _sales_chart(sales, interval, currency),
        "activity_chart": _activity_chart(activity),
    }


def _sales_chart(result: dict[str, Any], interval: str, currency: str | None) -> dict[str, Any]:
    rows = result["series"]
    return marked(
        {
            "type": "bar",
            "labels": [bucket_label(row["bucket"], interval) for row in rows],
            "datasets": [
                {"label": "Orders", "data": [row.get("orders") for row in rows], "yAxisID": "y"},
                {
                    "label": f"Revenue ({currency})" if currency else "Revenue",
                    "type": "line",
                    "data": [row.get("revenue") for row in rows],
                    "yAxisID": "y2",
                },
            ],
        },
        rows,
        interval,
        result["to"],
    )


def _activity_chart(result: dict[str, Any]) -> dict[str, Any]:
    """Retention and churn per month; a month that ends before anyone could have lapsed (less than the window after
    the first purchase) is left out, since its 100% retention says nothing."""
    rows = result["series"]
    churn = REGISTRY["churn_rate"].value
    whole = [row.get("complete", True) for row in rows]
    # a rate over part of a month runs higher than over a whole one: beside whole months, a part is left out
    known = [row.get("full_history", True) and (w or not any(whole)) for row, w in zip(rows, whole)]
    chart = marked(
        {
            "type": "line",
            "percent": True,
            "labels": [bucket_label(row["bucket"], "month") for row in rows],
            "datasets": [
                {"label": "Retention rate", "data": [r["value"] if k else None for r, k in zip(rows, known)]},
                {"label": "Churn rate", "data": [as_json(churn(r)) if k else None for r, k in zip(rows, known)]},
            ],
        },
        rows,
        "month",
        result["to"],
    )
    cut = [bucket_label(r["bucket"], "month") for r, w in zip(rows, whole) if not w and any(whole)]
    if cut:
        chart["notes"] = [
            f"Left out: {', '.join(cut)}, part of a month (a rate over a few days is not comparable with whole "
            "months; choose those dates to see it against the same days of the month before)."
        ]
        chart.pop("partial", None)
    skipped = sum(1 for r, k in zip(rows, known) if not k and r.get("complete", True))
    if skipped:
        window = result["details"].get("window_days")
        chart["notes"] = [
            *chart.get("notes", []),
            f"{skipped} month{'s' if skipped > 1 else ''} left out: {'they start' if skipped > 1 else 'it starts'} less "
            f"than the {window}-day window after the first purchase in the data, so the customers active then are not "
            "all known, or could not have lapsed yet.",
        ]
    return chart


@router.get("/")
def overview_page(
    request: Request,
    user: Viewer,
    board: BoardDep,
    interval: Literal["week", "month"] = "month",
    date_from: str | None = None,
    date_to: str | None = None,
) -> Response:
    context = {"interval": interval, "date_from": date_from, "date_to": date_to}
    try:
        data = overview(
            board.analytics,
            interval=interval,
            date_from=parse_day(date_from, "date_from"),
            date_to=parse_day(date_to, "date_to"),
            currency=getattr(request.state, "currency", None),
        )
    except BoomerangError as exc:
        problem, status_code = problem_of(exc)
        return render(
            request,
            "overview.html",
            user=user,
            data=None,
            problem=problem,
            status=board.analytics.summary(),
            status_code=status_code,
            **context,
        )
    return render(request, "overview.html", user=user, data=data, problem=None, status=data["status"], **context)
