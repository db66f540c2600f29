"""Segments: the list with size trends, refreshing, a segment's page with its members and explain, the matrix.
The builder (segment_builder) and the members' export (segment_members) are routers of their own, included here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from boomerang.core.errors import BoomerangError
from boomerang.dashboard.views import segment_builder, segment_members, segment_notices
from boomerang.dashboard.views.common import BoardDep, Marketer, Viewer, checked_form, missing, redirect, render
from boomerang.dashboard.views.segment_builder import pretty
from boomerang.dashboard.views.segment_explain import explain
from boomerang.journeys.matrix import matrix
from boomerang.segments import library, membership, service

router = APIRouter()
# before /segments/{name}: /segments/new, /preview, /parse, /explain, /vocabulary.json are not segments
router.include_router(segment_builder.router)
router.include_router(segment_members.router)


def size_chart(points: list[dict[str, Any]], *, spark: bool = False) -> dict[str, Any]:
    return {
        "type": "line",
        "spark": spark,
        "labels": [p["at"][:16].replace("T", " ") for p in points],
        "datasets": [{"label": "Members", "data": [p["size"] for p in points]}],
    }


# -- the list --------------------------------------------------------------------------------------


def _list_page(request: Request, user, board, *, status_code: int = 200, **context) -> Response:
    with board.ws.uow.session() as s:
        segments = service.list_segments(s)
        trends = {g["name"]: size_chart(service.history(s, g["name"], limit=60), spark=True) for g in segments}
    return render(
        request, "segments.html", user=user, segments=segments, trends=trends, status_code=status_code, **context
    )


@router.get("/segments")
def segments_page(request: Request, user: Viewer, board: BoardDep, installed: str = "") -> Response:
    notice = segment_notices.read(request)
    response = _list_page(
        request,
        user,
        board,
        installed=int(installed) if installed.isdigit() else None,
        refreshed=notice.get("refreshed"),
        more=notice.get("more", 0),
        errors=notice.get("errors"),
    )
    return segment_notices.shown(response, notice)


@router.post("/segments/library")
async def install(request: Request, user: Marketer, board: BoardDep) -> Response:
    await checked_form(request)
    try:
        made = await run_in_threadpool(_install, board)
    except BoomerangError as exc:
        return segment_notices.redirect_with("/segments", request, {"errors": exc.errors})
    return redirect(f"/segments?installed={len(made)}")


def _install(board) -> list[dict[str, Any]]:
    with board.ws.uow.session() as s:
        return library.install(s, now=board.ws.now())


@router.post("/segments/refresh")
async def refresh_all(request: Request, user: Marketer, board: BoardDep) -> Response:
    await checked_form(request)
    try:
        results = await run_in_threadpool(membership.refresh, board.ws.segments)
    except BoomerangError as exc:
        return segment_notices.redirect_with("/segments", request, {"errors": exc.errors})
    return segment_notices.redirect_with("/segments", request, segment_notices.outcome(results))


@router.post("/segments/{name}/refresh")
async def refresh_one(request: Request, name: str, user: Marketer, board: BoardDep) -> Response:
    form = await checked_form(request)
    back = f"/segments/{name}" if form.get("back") == "segment" else "/segments"
    try:
        results = await run_in_threadpool(membership.refresh, board.ws.segments, [name])
    except BoomerangError as exc:
        if exc.status_code == 400 and exc.field == "segment":  # no such segment
            return missing(request, user, "segment", name)
        return segment_notices.redirect_with("/segments", request, {"errors": exc.errors})
    return segment_notices.redirect_with(back, request, segment_notices.outcome(results))


# -- the matrix ------------------------------------------------------------------------------------


@router.get("/segments/matrix")
def matrix_page(request: Request, user: Viewer, board: BoardDep) -> Response:
    with board.ws.uow.session() as s:
        return render(request, "segments_matrix.html", user=user, m=matrix(s))


# -- one segment -----------------------------------------------------------------------------------


def _segment_page(
    request: Request, user, board, name: str, *, customer: str, as_of: str, asked: dict[str, str]
) -> Response:
    notice = segment_notices.read(request)
    status_code = 200
    with board.ws.uow.session() as s:
        try:
            current = membership.current(s, name)
        except BoomerangError:
            return missing(request, user, "segment", name)
        points = service.history(s, name)
        listed = segment_members.listing(s, name, **asked)
    if listed["errors"]:
        status_code = 400
    explained, explain_errors = None, None
    if customer.strip():
        try:
            explained = explain(board, name, customer, as_of)
        except BoomerangError as exc:
            explain_errors = exc.errors
            status_code = max(status_code, exc.status_code)
    response = render(
        request,
        "segment.html",
        user=user,
        segment=current,
        definition=pretty(current["rule"]),
        chart=size_chart(points) if points else None,
        history=points,
        members=listed,
        customer=customer,
        as_of=as_of,
        explained=explained,
        explain_errors=explain_errors,
        saved=notice.get("saved"),
        refreshed=notice.get("refreshed"),
        errors=notice.get("errors"),
        status_code=status_code,
    )
    return segment_notices.shown(response, notice)


@router.get("/segments/{name}")
def segment_page(
    request: Request,
    name: str,
    user: Viewer,
    board: BoardDep,
    customer: str = "",
    as_of: str = "",
    sort: str = "",
    dir: str = "",  # noqa: A002 - the query parameter's name
    page: str = "",
    per_page: str = "",
) -> Response:
    asked = {"sort": sort, "direction": dir, "page": page, "per_page": per_page}
    return _segment_page(request, user, board, name, customer=customer, as_of=as_of, asked=asked)
