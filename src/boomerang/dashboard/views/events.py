"""The events debugger: what reached the tracking API lately and what was set aside, with a live refresh."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from boomerang.core.errors import BoomerangError
from boomerang.dashboard.views.common import HEADERS, BoardDep, Viewer, render, templates
from boomerang.events import debugger

router = APIRouter()
LIMIT = 50
LIVE_SECONDS = 3


def asked(
    kind: str = Query("", alias="type", max_length=1000),
    event: str = Query("", max_length=1000),
    who: str = Query("", alias="user", max_length=1000),
    source: str = Query("", max_length=100),
    aside: str = "",
    live: str = "",
    limit: int = Query(LIMIT, ge=1, le=debugger.MAX_LIMIT),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> dict[str, Any]:
    """The filters and the page the query asks for (`user` and `type` in the URL)."""
    return {
        "filters": debugger.Filters(type=kind.strip(), event=event.strip(), user=who.strip(), source=source.strip()),
        "aside": bool(aside),
        "live": bool(live),
        "limit": limit,
        "offset": offset,
    }


Asked = Annotated[dict[str, Any], Depends(asked)]


def _listing(board, asked: dict[str, Any]) -> dict[str, Any]:
    """The page's context: its filters, the counts of the last hour and a page of events or set-aside messages."""
    filters, aside, limit, offset = asked["filters"], asked["aside"], asked["limit"], asked["offset"]
    shown = {"type": filters.type, "event": filters.event, "user": filters.user, "source": filters.source}
    flags = {
        "aside": "1" if aside else "",
        "live": "1" if asked["live"] else "",
        "limit": limit if limit != LIMIT else "",
    }
    params = {k: v for k, v in {**shown, **flags}.items() if v}
    others = {k: v for k, v in params.items() if k != "aside"}  # for the tabs
    context = dict(
        params=params,
        others=others,
        aside=aside,
        live=asked["live"],
        limit=limit,
        offset=offset,
        rows=[],
        total=0,
        counts=None,
    )
    try:
        with board.ws.uow.session() as s:
            if aside:
                rows, total = debugger.set_aside(s, filters, limit=limit, offset=offset)
            else:
                rows, total = debugger.latest(s, board.ws.log, filters, limit=limit, offset=offset)
            context.update(rows=rows, total=total)
            context["counts"] = debugger.last_hour(s, board.ws.log, now=board.ws.now(), source=filters.source)
    except BoomerangError as exc:
        context.update(errors=exc.errors, status_code=exc.status_code)
    return context


@router.get("/events")
def events_page(request: Request, user: Viewer, board: BoardDep, asked: Asked) -> Response:
    context = _listing(board, asked)
    return render(request, "events.html", user=user, types=debugger.TYPES, live_seconds=LIVE_SECONDS, **context)


@router.get("/events/live")
def events_live(request: Request, user: Viewer, board: BoardDep, asked: Asked) -> Response:
    """The page's list alone (the template's `live` block), for the Live toggle to swap in."""
    context = _listing(board, asked)
    status_code = context.pop("status_code", 200)
    template = templates.env.get_template("events.html")
    html = "".join(template.blocks["live"](template.new_context({**context, "user": user})))
    return HTMLResponse(html, status_code=status_code, headers=HEADERS)
