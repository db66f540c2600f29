"""The experiments page: every test the shop runs (journeys against their control groups, campaigns' variants
against their holdouts, imported experiments) with verdicts and interval bars, last-touch attribution beside
them and the monthly share of revenue after triggered and mass messages; a calculator of the sample a test needs;
and an imported experiment's own page (its report and who responds)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from boomerang.core.errors import NotFound
from boomerang.dashboard.views.common import BoardDep, Viewer, missing, render
from boomerang.experiments import imported, stats
from boomerang.orchestration import incrementality

router = APIRouter()


def _plan(base_rate: float | None, lift: float | None, audience: int | None, holdout: float) -> dict[str, Any] | None:
    """The calculator's answer (None when nothing was asked); `error` names the field that is wrong."""
    if base_rate is None and lift is None and audience is None:
        return None
    if base_rate is None or not 0 < base_rate < 100:
        return {"error": "Base rate: a conversion rate in percent, above 0 and below 100."}
    if not 0 < holdout < 100:
        return {"error": "Held out: a percentage above 0 and below 100."}
    p, share = base_rate / 100, 1 - holdout / 100
    sd = math.sqrt(p * (1 - p))
    out: dict[str, Any] = {"base_rate": p, "holdout": holdout}
    if lift:
        if not 0 < lift / 100 < 1 - p:
            return {"error": "Lift: points of rate above 0, e.g. 1 for 5 % -> 6 %."}
        for kind in ("sequential", "fixed"):
            out[kind] = stats.sample_size(sd, lift / 100, share_treated=share, sequential=kind == "sequential")
        out["lift"] = lift / 100
    elif audience and audience >= 2:
        for kind in ("sequential", "fixed"):
            out[kind] = stats.detectable_effect(
                sd, audience * share, audience * (1 - share), sequential=kind == "sequential"
            )
        out["audience"] = audience
    else:
        return {"error": "Give either the lift to find or the customers you have (at least 2)."}
    return out


def _shares_chart(months: list[dict[str, Any]]) -> dict[str, Any]:
    labels = [m["month"] + (" (so far)" if m.get("partial") else "") for m in months]
    names = {
        "triggered": "After a journey",
        "mass": "After a campaign",
        "other": "After another send",
        "none": "No message",
    }
    return {
        "type": "bar",
        "percent": True,
        "stacked": True,
        "partial": [bool(m.get("partial")) for m in months],
        "labels": labels,
        "datasets": [{"label": label, "data": [m["shares"][k] for m in months]} for k, label in names.items()],
    }


@router.get("/experiments")
def experiments_page(
    request: Request,
    user: Viewer,
    board: BoardDep,
    base_rate: float | None = Query(None, ge=0, le=100),
    lift: float | None = Query(None, ge=0, le=100),
    audience: int | None = Query(None, ge=0, le=10**9),
    holdout: float = Query(10.0, ge=0, le=100),
) -> Response:
    ws = board.ws
    with ws.uow.session() as s:
        share = ws.settings.guards.global_control_share
        found = incrementality.overview(s, global_control_share=share, now=ws.now(), log=ws.log)
    months = found["attribution"]["months"]
    return render(
        request,
        "experiments.html",
        user=user,
        tests=found["tests"],
        attribution=found["attribution"],
        shares=_shares_chart(months),
        plan=_plan(base_rate, lift, audience, holdout),
        asked={"base_rate": base_rate, "lift": lift, "audience": audience, "holdout": holdout},
    )


@router.get("/experiments/imported/{name}")
def imported_page(request: Request, name: str, user: Viewer, board: BoardDep) -> Response:
    try:
        with board.ws.uow.session() as s:
            found = imported.dashboard(s, name)
    except NotFound:
        return missing(request, user, "imported experiment", name)
    return render(request, "experiment_imported.html", user=user, imported=found)
