"""Segments as JSON: definitions (versioned), preview, members, explain, refresh, history, the matrix."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Body, Query
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import Offset, SessionDep, WorkspaceDep
from boomerang.journeys.matrix import matrix as segment_matrix_of
from boomerang.segments import library, membership, service
from boomerang.segments.schemas import (
    Installed,
    MembersPage,
    Preview,
    SegmentCurrent,
    SegmentList,
    SegmentSaved,
    SizeHistory,
)

router = APIRouter(prefix="/segments", tags=["segments"])
Definition = Body(
    ...,
    examples=[
        {
            "name": "coffee_lovers",
            "title": "Coffee lovers",
            "rule": {
                "event": "Product Viewed",
                "where": [{"property": "category", "op": "starts_with", "value": "Coffee"}],
                "within_days": 7,
                "op": "gte",
                "value": 3,
            },
        }
    ],
)


@router.get("", response_model=SegmentList)
def index(session: SessionDep) -> dict:
    return {"items": service.list_segments(session)}


@router.post("", status_code=201, response_model=SegmentSaved)
def save(ws: WorkspaceDep, session: SessionDep, definition: dict[str, Any] = Definition) -> dict:
    """Create a segment, or a new version of it when its definition changed."""
    return service.save(session, definition, now=ws.now())


@router.post("/library", response_model=Installed)
def install(ws: WorkspaceDep, session: SessionDep) -> dict:
    """Save the ready-made segments."""
    return {"items": library.install(session, now=ws.now())}


@router.post("/preview", response_model=Preview)
async def preview_definition(
    ws: WorkspaceDep,
    definition: dict[str, Any] = Definition,
    as_of: date | None = None,
    sample: int = Query(10, ge=0, le=1000),
) -> dict:
    """Size and a sample of members of an unsaved definition."""
    return await run_in_threadpool(lambda: ws.segments.preview(definition, as_of=as_of, sample=sample))


@router.get("/matrix")
def segment_matrix(session: SessionDep) -> dict:
    """Segment x goal x channel, with the holes flagged."""
    return segment_matrix_of(session)


@router.get("/{name}", response_model=SegmentCurrent)
def get(name: str, session: SessionDep) -> dict:
    return membership.current(session, name)


@router.delete("/{name}", status_code=204)
def delete(name: str, session: SessionDep) -> None:
    service.delete(session, name)


@router.get("/{name}/preview", response_model=Preview)
async def preview(
    name: str, ws: WorkspaceDep, as_of: date | None = None, sample: int = Query(10, ge=0, le=1000)
) -> dict:
    return await run_in_threadpool(lambda: ws.segments.preview(name, as_of=as_of, sample=sample))


@router.get("/{name}/members", response_model=MembersPage)
async def members(
    name: str,
    ws: WorkspaceDep,
    as_of: date | None = None,
    limit: int = Query(1000, ge=1, le=100_000),
    offset: Offset = 0,
) -> dict:
    """Members computed now (or as of a day), a page of ids at a time."""
    frame = await run_in_threadpool(lambda: ws.segments.members(name, as_of=as_of))
    return {"total": len(frame), "items": frame["customer_id"].iloc[offset : offset + limit].tolist()}


@router.get("/{name}/explain/{customer_id}")
async def explain(name: str, customer_id: str, ws: WorkspaceDep, as_of: date | None = None) -> dict:
    """Why the customer is or is not a member, condition by condition."""
    return await run_in_threadpool(lambda: ws.segments.explain(name, customer_id, as_of=as_of))


@router.post("/{name}/refresh")
async def refresh(name: str, ws: WorkspaceDep) -> dict:
    """Recompute membership now; entries and exits are recorded as events."""
    return (await run_in_threadpool(membership.refresh, ws.segments, [name]))[0]


@router.get("/{name}/history", response_model=SizeHistory)
def history(name: str, session: SessionDep) -> dict:
    return {"items": service.history(session, name)}
