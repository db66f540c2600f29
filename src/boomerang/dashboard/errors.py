"""What a browser sees for an address that is no page: an unknown path gets the dashboard's 404 page, and an
action's address opened directly (a reload after a form, a link copied from the address bar) goes back to the
page the action belongs to. Programs (the API, anything that does not ask for HTML) keep FastAPI's JSON."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException

from boomerang.dashboard.auth import LoginRequired
from boomerang.dashboard.views.common import current_user, redirect, render

API = ("/v1/", "/api/", "/static/", "/docs", "/openapi.json", "/health")


def wants_page(request: Request) -> bool:
    """A browser asking for a page (not a program, not the API, not an asset)."""
    path = request.url.path
    return (
        request.method in ("GET", "HEAD")
        and "text/html" in request.headers.get("accept", "")
        and not any(path == p.rstrip("/") or path.startswith(p) for p in API)
    )


def page_of(path: str) -> str:
    """The page an action's address belongs to: /segments/vip/refresh -> /segments/vip."""
    parent = path.rstrip("/").rsplit("/", 1)[0]
    return parent or "/"


def install(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        if not wants_page(request) or exc.status_code not in (404, 405):
            return await http_exception_handler(request, exc)
        if exc.status_code == 405:
            return redirect(page_of(request.url.path))
        try:
            user = current_user(request)
        except LoginRequired:
            user = None
        return render(
            request,
            "error.html",
            user=user,
            status_code=404,
            title="No such page",
            message=f"There is no page at {request.url.path}. It may have moved, or the link is mistyped.",
        )
