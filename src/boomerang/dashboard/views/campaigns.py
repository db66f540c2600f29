"""Campaigns: the list, a campaign's page with its results, and scheduling (with a confirmation) and cancelling;
a new campaign is made in the wizard (campaign_wizard)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from boomerang.core.errors import BoomerangError, NotFound, ValidationFailed
from boomerang.dashboard.views import campaign_wizard
from boomerang.dashboard.views.common import BoardDep, Marketer, Viewer, checked_form, missing, redirect, render
from boomerang.dashboard.views.messaging import as_yaml
from boomerang.messaging import campaign_results, campaigns, reach

router = APIRouter()
router.include_router(campaign_wizard.router)  # before /campaigns/{name}: /campaigns/new, /campaigns/audience.json
DONE = {
    "scheduled": "The campaign is scheduled.",
    "cancelled": "The campaign is cancelled: what was still queued is suppressed.",
}


@router.get("/campaigns")
def campaigns_page(request: Request, user: Viewer, board: BoardDep) -> Response:
    with board.ws.uow.session() as s:
        return render(request, "campaigns.html", user=user, listed=campaigns.listing(s))


# -- one campaign ----------------------------------------------------------------------------------


def ordered(summary: dict[str, Any], groups: dict[str, dict]) -> list[tuple[str, dict]]:
    """The variants in the definition's order, then the holdout, then any group a former definition left."""
    names = [v for v in summary["variants"] if v in groups] + (["holdout"] if "holdout" in groups else [])
    return [(n, groups[n]) for n in names + sorted(set(groups) - set(names))]


def charts(groups: list[tuple[str, dict]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two bar charts per group: open, click and conversion rates; revenue per customer."""
    labels = [name for name, _ in groups]

    def data(key: str) -> list:
        return [g.get(key) for _, g in groups]

    rates = {
        "type": "bar",
        "percent": True,
        "labels": labels,
        "datasets": [
            {"label": "Open rate", "data": data("open_rate")},
            {"label": "Click rate", "data": data("click_rate")},
            {"label": "Conversion rate", "data": data("conversion_rate")},
        ],
    }
    revenue = {
        "type": "bar",
        "labels": labels,
        "datasets": [{"label": "Revenue per customer", "data": data("revenue_per_customer")}],
    }
    return rates, revenue


def _campaign_page(request: Request, user, board, name: str, *, status_code: int = 200, **context) -> Response:
    try:
        with board.ws.uow.session() as s:
            campaign = campaigns.get(s, name)
            results = campaigns.stats(s, name)
            share = board.ws.settings.guards.global_control_share
            tests = campaign_results.results(s, name, global_control_share=share)
    except NotFound:
        return missing(request, user, "campaign", name)
    groups = ordered(campaign, results["groups"])
    rates, revenue = charts(groups)
    return render(
        request,
        "campaign.html",
        user=user,
        campaign=campaign,
        definition=as_yaml(campaign["definition"]),
        groups=groups,
        tests=tests,
        rates=rates,
        revenue=revenue,
        status_code=status_code,
        **context,
    )


@router.get("/campaigns/{name}")
def campaign_page(request: Request, name: str, user: Viewer, board: BoardDep, done: str = "") -> Response:
    return _campaign_page(request, user, board, name, done=DONE.get(done))


def _moment(text: str) -> datetime | None:
    """The optional time from the schedule form (UTC); a bad one is a ValidationFailed naming `at`."""
    if not text.strip():
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed([{"field": "at", "reason": "a date and time, YYYY-MM-DD HH:MM (UTC)"}]) from None


async def _act(request: Request, name: str, user, board, done: str, act) -> Response:
    form = await checked_form(request)

    def run() -> None:
        with board.ws.uow.session() as s:
            act(s, form)

    try:
        await run_in_threadpool(run)
    except NotFound:
        return missing(request, user, "campaign", name)
    except BoomerangError as exc:
        return _campaign_page(request, user, board, name, status_code=exc.status_code, errors=exc.errors)
    return redirect(f"/campaigns/{name}?done={done}")


@router.get("/campaigns/{name}/schedule")
def confirm_schedule(request: Request, name: str, user: Marketer, board: BoardDep, at: str = "") -> Response:
    """What scheduling would do, to confirm: when, who (the audience and whom each channel reaches), what is
    sent, the guards that apply, and whether the channels are still the sandbox."""
    try:
        when = _moment(at)
        with board.ws.uow.session() as s:
            campaign = campaigns.get(s, name)
            definition = campaigns.parse(campaign["definition"])
            audience = reach.segment_reach(s, definition.segment, definition.channels)
    except NotFound:
        return missing(request, user, "campaign", name)
    except BoomerangError as exc:
        return _campaign_page(request, user, board, name, status_code=exc.status_code, errors=exc.errors)
    members = audience["members"]
    return render(
        request,
        "campaign_schedule.html",
        user=user,
        campaign=campaign,
        definition=definition,
        at=at.strip(),
        when=when or definition.send_at,
        audience=audience,
        sent=None if members is None else round(members * (1 - definition.holdout_percent / 100)),
        guards=reach.guards_in_words(board.ws.settings.guards, definition.category),
        sandbox=[c for c in definition.channels if c in board.sandboxed()],
    )


@router.post("/campaigns/{name}/schedule")
async def schedule(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    """Schedule a draft at the given time, else at its send_at, else now; without `confirm`, to the confirmation."""
    form = await checked_form(request)
    if form.get("confirm") != "yes":
        at = str(form.get("at") or "").strip()
        return redirect(f"/campaigns/{quote(name, safe='')}/schedule" + (f"?at={quote(at)}" if at else ""))
    return await _act(
        request,
        name,
        user,
        board,
        "scheduled",
        lambda s, form: campaigns.schedule(s, name, at=_moment(str(form.get("at") or "")), now=board.ws.now()),
    )


@router.post("/campaigns/{name}/cancel")
async def cancel(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    return await _act(
        request, name, user, board, "cancelled", lambda s, form: campaigns.cancel(s, name, now=board.ws.now())
    )
