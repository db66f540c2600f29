"""The HTTP API: Segment-compatible tracking under /v1, the secret-key REST API under /api."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from boomerang import __version__
from boomerang.api.deps import require_secret
from boomerang.api.routers import customers, keys, orders, products, status, tracking
from boomerang.auth.service import KeyChecker
from boomerang.bootstrap import Workspace
from boomerang.core.errors import BoomerangError
from boomerang.events.flush import flush


log = logging.getLogger("boomerang.flush")


def _flusher(ws: Workspace, stop: threading.Event) -> None:
    """Moves the inbox into the event log every few moments while the server runs."""
    while not stop.wait(ws.settings.ingest.flush_interval_seconds):
        try:
            flush(ws)
        except Exception:  # noqa: BLE001 - the next round retries; the inbox keeps the events
            log.exception("flush failed; will retry")


def create_app(ws: Workspace, *, background_flush: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        stop = threading.Event()
        worker = threading.Thread(target=_flusher, args=(ws, stop), name="boomerang-flush", daemon=True)
        if background_flush:
            worker.start()
        yield
        stop.set()
        if background_flush:
            worker.join(timeout=30)
            flush(ws)

    app = FastAPI(title="Boomerang", version=__version__, lifespan=lifespan)
    app.state.ws = ws
    app.state.keys = KeyChecker(ws.uow.session)

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

    @app.get("/health", include_in_schema=False)
    def health() -> dict:
        return {"ok": True, "version": __version__}

    app.include_router(tracking.router)
    secret = [Depends(require_secret)]
    for router in (customers.router, products.router, orders.router, keys.router, status.router):
        app.include_router(router, prefix="/api", dependencies=secret)
    return app
