"""The dashboard's routes, mounted on the API app at `/` with its static files under `/static`."""

from __future__ import annotations

from importlib import resources
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

from boomerang.bootstrap import Workspace
from boomerang.dashboard.auth import CsrfFailed, Forbidden, Keys, LoginRequired
from boomerang.dashboard.data import Analytics
from boomerang.dashboard.views import (
    account,
    analytics,
    campaigns,
    channels,
    customers,
    events,
    experiments,
    journey_editor,
    journeys,
    login,
    loyalty,
    loyalty_achievements,
    loyalty_codes,
    loyalty_programme,
    loyalty_referrals,
    loyalty_rules,
    messaging,
    overview,
    predictions,
    recommendations,
    recommendations_editor,
    review,
    segments,
    users,
)
from boomerang.dashboard.views.common import Dashboard, redirect, render


def mount(app: FastAPI, ws: Workspace, *, warm: bool = True) -> None:
    """Add the dashboard to `app`; with `warm`, showing the login page starts computing the overview."""
    board = Dashboard(ws=ws, keys=Keys(ws.secret), analytics=Analytics(ws), warm=warm)
    app.state.dashboard = board
    for module in (
        login,
        account,
        overview,
        analytics,
        predictions,
        customers,
        events,
        segments,
        journey_editor,  # before journeys: /journeys/new is not a journey named new
        journeys,
        campaigns,
        experiments,
        review,
        loyalty,
        loyalty_programme,
        loyalty_codes,
        loyalty_achievements,
        loyalty_referrals,
        loyalty_rules,
        recommendations,
        recommendations_editor,
        messaging,
        channels,
        users,
    ):
        app.include_router(module.router, include_in_schema=False)
    app.mount(
        "/static", StaticFiles(directory=str(resources.files("boomerang") / "dashboard" / "static")), name="static"
    )

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _: LoginRequired):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect("/login" if target == "/" else f"/login?next={quote(target, safe='/')}")

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden):
        return render(
            request,
            "error.html",
            user=None,
            status_code=403,
            title="Not allowed",
            message=f"Your role cannot open this page: it needs the {exc.needed} role.",
        )

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, _: CsrfFailed):
        return render(
            request,
            "error.html",
            user=None,
            status_code=403,
            title="Form expired",
            message="The form's security token did not match your session. Go back, reload and try again.",
        )
