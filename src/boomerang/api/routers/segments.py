"""Segments as JSON: definitions (versioned), preview, members, explain, refresh, history, the matrix."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Body, Query
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import WorkspaceDep
from boomerang.segments import library, matrix, membership, service

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


@router.get("")
async def index(ws: WorkspaceDep) -> dict:
    return {"items": await run_in_threadpool(service.list_segments, ws)}


@router.post("", status_code=201)
async def save(ws: WorkspaceDep, definition: dict[str, Any] = Definition) -> dict:
    """Create a segment, or a new version of it when its definition changed."""
    return await run_in_threadpool(service.save, ws, definition)


@router.post("/library")
async def install(ws: WorkspaceDep) -> dict:
    """Save the ready-made segments."""
    return {"items": await run_in_threadpool(library.install, ws)}


@router.post("/preview")
async def preview_definition(
    ws: WorkspaceDep,
    definition: dict[str, Any] = Definition,
    as_of: date | None = None,
    sample: int = Query(10, ge=0, le=1000),
) -> dict:
    """Size and a sample of members of an unsaved definition."""
    return await run_in_threadpool(lambda: service.preview(ws, definition, as_of=as_of, sample=sample))


@router.get("/matrix")
async def segment_matrix(ws: WorkspaceDep) -> dict:
    """Segment x goal x channel, with the holes flagged."""
    return await run_in_threadpool(matrix.matrix, ws)


@router.get("/{name}")
async def get(name: str, ws: WorkspaceDep) -> dict:
    return await run_in_threadpool(membership.current, ws, name)


@router.delete("/{name}", status_code=204)
async def delete(name: str, ws: WorkspaceDep) -> None:
    await run_in_threadpool(service.delete, ws, name)


@router.get("/{name}/preview")
async def preview(
    name: str, ws: WorkspaceDep, as_of: date | None = None, sample: int = Query(10, ge=0, le=1000)
) -> dict:
    return await run_in_threadpool(lambda: service.preview(ws, name, as_of=as_of, sample=sample))


@router.get("/{name}/members")
async def members(
    name: str,
    ws: WorkspaceDep,
    as_of: date | None = None,
    limit: int = Query(1000, ge=1, le=100_000),
    offset: int = Query(0, ge=0),
) -> dict:
    """Members computed now (or as of a day), a page of ids at a time."""
    frame = await run_in_threadpool(lambda: service.members(ws, name, as_of=as_of))
    return {"total": len(frame), "items": frame["customer_id"].iloc[offset : offset + limit].tolist()}


@router.get("/{name}/explain/{customer_id}")
async def explain(name: str, customer_id: str, ws: WorkspaceDep, as_of: date | None = None) -> dict:
    """Why the customer is or is not a member, condition by condition."""
    return await run_in_threadpool(lambda: service.explain(ws, name, customer_id, as_of=as_of))


@router.post("/{name}/refresh")
async def refresh(name: str, ws: WorkspaceDep) -> dict:
    """Recompute membership now; entries and exits are recorded as events."""
    return (await run_in_threadpool(membership.refresh, ws, [name]))[0]


@router.get("/{name}/history")
async def history(name: str, ws: WorkspaceDep) -> dict:
    return {"items": await run_in_threadpool(service.history, ws, name)}
