"""The HTTP API: Segment-compatible tracking under /v1, the secret-key REST API under /api."""

from __future__ import annotations

from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from boomerang import __version__
from boomerang.api import openapi
from boomerang.api.deps import require_secret, storable_input
from boomerang.api.routers import (
    auth,
    bot,
    catalog,
    channels,
    channels_email,
    channels_push,
    channels_sms,
    customers,
    events,
    experiments_import,
    journeys,
    loyalty,
    loyalty_achievements,
    loyalty_codes,
    loyalty_public,
    loyalty_referrals,
    loyalty_rules,
    messaging,
    messaging_public,
    metrics,
    orders,
    predictions,
    reco_widget,
    recommendations,
    review,
    segments,
    status,
)
from boomerang.auth.service import IdentityVerifier, KeyChecker
from boomerang.bootstrap import Workspace
from boomerang.core.errors import BoomerangError
from boomerang.dashboard import errors as dashboard_errors
from boomerang.dashboard import mount as mount_dashboard
from boomerang.worker import BotPoller, Pipeline


def create_app(ws: Workspace, *, background: bool = True) -> FastAPI:
    """The app; with `background`, a pipeline process processes and flushes accepted events, and (unless
    `telegram.poll_in_serve` is off) a thread long-polls Telegram for the bot's updates while it has no webhook."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pipeline = Pipeline(ws.settings) if background else None
        poller = BotPoller(ws.bot) if background and ws.settings.telegram.poll_in_serve else None
        app.state.pipeline, app.state.poller = pipeline, poller
        if pipeline:
            pipeline.start()
        if poller:
            poller.start()
        yield
        if poller:
            poller.stop()  # asked first: its long poll and the pipeline's last round end side by side
        if pipeline:
            pipeline.stop()
        if poller:
            poller.join()

    app = FastAPI(title="Boomerang", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    openapi.install(app)  # the spec as the server behaves; Swagger UI at /docs from the package, no CDN
    if ws.settings.cors_origins:  # the shop's pages call /v1 from their own origin, with the write key
        app.add_middleware(
            CORSMiddleware,
            allow_origins=ws.settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            max_age=600,
            allow_headers=["Authorization", "Content-Type", "Content-Encoding"],
        )
    app.state.ws = ws
    app.state.pipeline = app.state.poller = None
    app.state.keys = KeyChecker(ws.uow.reading)
    app.state.identities = IdentityVerifier(ws.uow.reading, ws.secret)

    @app.exception_handler(BoomerangError)
    async def _domain_error(_: Request, exc: BoomerangError):
        return JSONResponse({"success": False, **exc.to_dict()}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        errors = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "reason": e["msg"]}
            for e in exc.errors()
        ]
        return JSONResponse({"success": False, "errors": errors}, status_code=400)

    @app.exception_handler(OverflowError)
    @app.exception_handler(sa.exc.DataError)
    async def _out_of_range(_: Request, exc: Exception):
        """A number too large for the store's column (a JSON integer above 2^63, say): the sender's mistake."""
        problem = {"field": "body", "reason": "a value is out of range for the store (too large a number?)"}
        return JSONResponse({"success": False, "errors": [problem]}, status_code=400)

    @app.exception_handler(sa.exc.IntegrityError)
    async def _conflict(_: Request, exc: Exception):
        """Two writers at the same moment (the same new name, say): the unique index let one through."""
        problem = {"field": "body", "reason": "conflicts with a change made at the same moment: try again"}
        return JSONResponse({"success": False, "errors": [problem]}, status_code=409)

    @app.exception_handler(RecursionError)
    async def _too_deep(_: Request, exc: RecursionError):
        problem = {"field": "body", "reason": "nested too deeply"}
        return JSONResponse({"success": False, "errors": [problem]}, status_code=400)

    @app.get("/health", include_in_schema=False)
    def health() -> dict:
        return {"ok": True, "version": __version__}

    app.include_router(events.router)
    app.include_router(messaging_public.router)  # public: each link carries its own signature
    app.include_router(loyalty_public.router)  # the customer's own points, by their signed token
    app.include_router(recommendations.public)  # blocks for the shop's pages, with the write key
    app.include_router(reco_widget.router)  # the script that shows those blocks on any page and tracks them
    for hooks in (channels_email.router, channels_sms.router, bot.router):  # providers sign their callbacks
        app.include_router(hooks)
    app.include_router(channels_push.router)  # browsers subscribe with the write key; the service worker
    secret = [Depends(require_secret), Depends(storable_input)]
    for router in (
        events.admin,
        customers.router,
        catalog.router,
        orders.router,
        auth.router,
        status.router,
        metrics.router,
        predictions.router,
        recommendations.router,
        segments.router,
        journeys.router,
        loyalty.router,
        loyalty_achievements.router,
        loyalty_codes.router,
        loyalty_referrals.router,
        loyalty_rules.router,
        messaging.router,
        channels.router,
        experiments_import.router,
        review.router,
    ):
        app.include_router(router, prefix="/api", dependencies=secret)
    mount_dashboard(app, ws, warm=background)  # pages at /, assets at /static
    dashboard_errors.install(app)  # a browser gets pages for unknown paths, programs keep JSON
    return app
