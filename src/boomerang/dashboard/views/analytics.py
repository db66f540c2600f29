"""Cohort heatmap, RFM grid and funnel pages; each group they count (an RFM group or cell, a cohort or one of its
months, a funnel leak) opens its customers or the segment builder with its rule, to save it and act on it."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from boomerang.core.errors import BoomerangError
from boomerang.dashboard.views.common import BoardDep, Viewer, parse_day, render
from boomerang.dashboard.views.overview import data_days
from boomerang.dashboard.views.segment_builder import suggested
from boomerang.dashboard.views.trends import problem_of
from boomerang.metrics import periods
from boomerang.metrics.rfm import GROUPS
from boomerang.segments import audiences

router = APIRouter()
LEVELS = 10  # cell colours: classes heat-0 .. heat-10


def _level(value: float | None, top: float | None) -> int:
    if not value or not top:
        return 0
    return max(1, min(LEVELS, round(LEVELS * value / top)))


def _period(date_from: str | None, date_to: str | None) -> dict[str, Any]:
    return {"date_from": parse_day(date_from, "date_from"), "date_to": parse_day(date_to, "date_to")}


def cohort_table(result: dict[str, Any]) -> dict[str, Any]:
    """Rows of cells with their colour level: month 0 is everyone, so later months are scaled to their own best."""
    cohorts = result["cohorts"]
    partial = not result["details"].get("last_month_complete", True)  # each cohort's last cell: a month in progress
    later = [share for c in cohorts for share in c["retention"][1 : -1 if partial else None] if share]
    top = max(later, default=None)
    width = max((len(c["retention"]) for c in cohorts), default=0)
    rows = [
        {
            **c,
            "act": _cohort_url(c["cohort"], 0),
            "cells": [
                {
                    "share": share,
                    "buyers": buyers,
                    "revenue": revenue,
                    "level": LEVELS if k == 0 else _level(share, top),
                    "act": _cohort_url(c["cohort"], k),
                    "partial": partial and k == len(c["retention"]) - 1,
                }
                for k, (share, buyers, revenue) in enumerate(zip(c["retention"], c["buyers"], c["revenue_by_month"]))
            ],
        }
        for c in cohorts
    ]
    average = [
        {"share": share, "level": LEVELS if k == 0 else _level(share, top)}
        for k, share in enumerate(result["details"]["average_retention"])
    ]
    return {"rows": rows, "width": width, "average": average, "top": top}


def _cohort_url(month: str, offset: int) -> str:
    first = date.fromisoformat(f"{month}-01")
    if not offset:
        return suggested(audiences.cohort(first), audiences.name_for("cohort", month), f"First bought in {month}")
    title = f"First bought in {month}, bought again in month {offset} after"
    return suggested(audiences.cohort(first, offset), audiences.name_for("cohort", month, f"m{offset}"), title)


@router.get("/cohorts")
def cohorts_page(
    request: Request, user: Viewer, board: BoardDep, date_from: str | None = None, date_to: str | None = None
) -> Response:
    try:
        result = board.analytics.metric("cohorts", _period(date_from, date_to))
    except BoomerangError as exc:
        problem, status_code = problem_of(exc)
        return render(
            request,
            "cohorts.html",
            user=user,
            result=None,
            problem=problem,
            status_code=status_code,
            date_from=date_from,
            date_to=date_to,
        )
    table = cohort_table(result)
    chart = {
        "type": "line",
        "percent": True,
        "labels": [f"M{k}" for k in range(1, table["width"])],
        "datasets": [{"label": "Average retention", "data": result["details"]["average_retention"][1:]}],
    }
    return render(
        request,
        "cohorts.html",
        user=user,
        result=result,
        table=table,
        chart=chart,
        problem=None,
        date_from=date_from,
        date_to=date_to,
    )


def group_of(r: int, f: int) -> str:
    return next((name for name, rs, fs in GROUPS if r in rs and f in fs), "hibernating")


@router.get("/rfm")
def rfm_page(request: Request, user: Viewer, board: BoardDep, date_to: str | None = None) -> Response:
    try:
        result = board.analytics.metric("rfm", {"date_to": parse_day(date_to, "date_to")})
    except BoomerangError as exc:
        problem, status_code = problem_of(exc)
        return render(
            request, "rfm.html", user=user, result=None, problem=problem, status_code=status_code, date_to=date_to
        )
    top = max((n for row in result["grid"] for n in row), default=0)
    grid = [
        {
            "r": 5 - i,
            "cells": [
                {
                    "f": j + 1,
                    "customers": n,
                    "level": _level(n, top),
                    "group": group_of(5 - i, j + 1),
                    "act": suggested(
                        audiences.rfm_cell(5 - i, j + 1),
                        audiences.name_for("rfm", f"r{5 - i}", f"f{j + 1}"),
                        f"RFM R{5 - i} F{j + 1}",
                    ),
                }
                for j, n in enumerate(row)
            ],
        }
        for i, row in enumerate(result["grid"])
    ]
    acts = {
        g["group"]: {
            "customers": "/customers?" + urlencode({"rfm": g["group"]}),
            "segment": suggested(
                audiences.rfm_group(g["group"]),
                audiences.name_for("rfm", g["group"]),
                "RFM: " + g["group"].replace("_", " "),
            ),
        }
        for g in result["groups"]
    }
    return render(request, "rfm.html", user=user, result=result, grid=grid, acts=acts, problem=None, date_to=date_to)


@router.get("/funnel")
def funnel_page(
    request: Request,
    user: Viewer,
    board: BoardDep,
    date_from: str | None = None,
    date_to: str | None = None,
    category: str | None = None,
    step: list[str] = Query(default=[]),
) -> Response:
    context = {"date_from": date_from, "date_to": date_to, "category": category or "", "steps_given": step}
    try:
        period = _period(date_from, date_to)
        if not date_from and not date_to:  # as the overview's tiles: the last whole month, the whole data a click away
            first, last = data_days(board.analytics.summary())
            month = periods.last_complete_month(first, last)
            asked = [("category", category or ""), *(("step", s) for s in step)]
            context["whole"] = urlencode([("date_from", first.isoformat()), ("date_to", last.isoformat()), *asked])
            context["defaulted"] = month is not None
            period = month.params() if month else period
        params = {
            **period,
            "category": (category or "").strip() or None,
            "steps": [s for s in step if s.strip()] or None,
            "series": False,  # the page shows the whole period
        }
        result = board.analytics.metric("funnel", params)
    except BoomerangError as exc:
        problem, status_code = problem_of(exc)
        return render(
            request, "funnel.html", user=user, result=None, problem=problem, status_code=status_code, **context
        )
    chart = {
        "type": "bar",
        "labels": [s["step"] for s in result["steps"]],
        "datasets": [{"label": "Customers", "data": [s["customers"] for s in result["steps"]]}],
    }
    categories = sorted(result["by_category"], key=lambda c: -(c["steps"][0]["customers"] or 0))
    start, end = date.fromisoformat(result["from"]), date.fromisoformat(result["to"])
    window = max(1, round(result["query"]["window_hours"] / 24))
    leaks = [
        {
            **leak,
            "act": suggested(
                audiences.funnel_leak(
                    leak["from"], leak["to"], start, end, category=params["category"], window_days=window
                ),
                audiences.name_for("leak", leak["from"], "not", leak["to"]),
                f"{leak['from']}, not {leak['to']} ({result['from']} – {result['to']})",
            ),
        }
        for leak in result["leaks"]
    ]
    return render(
        request,
        "funnel.html",
        user=user,
        result=result,
        chart=chart,
        categories=categories,
        leaks=leaks,
        problem=None,
        **context,
    )
