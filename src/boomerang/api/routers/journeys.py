"""Journeys as JSON: definitions (versioned), activation, manual entry, stats, the approval queue."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import WorkspaceDep
from boomerang.core.clock import naive_utc
from boomerang.journeys import library, runtime, service
from boomerang.journeys.definition import parse_journey
from boomerang.journeys.simulate import simulate

router = APIRouter(prefix="/journeys", tags=["journeys"])


class Entry(BaseModel):
    customer_id: str
    key: str | None = None


class Decision(BaseModel):
    approved: bool
    by: str
    template: str | None = None


@router.get("")
async def index(ws: WorkspaceDep) -> dict:
    return {"items": await run_in_threadpool(service.list_journeys, ws)}


@router.post("", status_code=201)
async def save(ws: WorkspaceDep, definition: dict[str, Any] = Body(...)) -> dict:
    """Create a journey (a draft), or a new version when its definition changed."""
    return await run_in_threadpool(service.save, ws, definition)


@router.post("/validate")
async def validate(definition: dict[str, Any] = Body(...)) -> dict:
    journey = parse_journey(definition)
    return {"valid": True, "name": journey.name, "nodes": len(journey.nodes)}


@router.post("/library")
async def install(ws: WorkspaceDep) -> dict:
    """Save the ready-made journeys as drafts."""
    return {"items": await run_in_threadpool(library.install, ws)}


@router.get("/approvals")
async def approvals(ws: WorkspaceDep) -> dict:
    return {"items": await run_in_threadpool(service.pending_approvals, ws)}


@router.post("/approvals/{key}")
async def decide(key: str, decision: Decision, ws: WorkspaceDep) -> dict:
    """Approve (optionally with another template) or reject a step waiting for a person."""
    return await run_in_threadpool(
        lambda: runtime.decide(
            ws,
            key,
            approved=decision.approved,
            by=decision.by,
            template=decision.template,
            now=naive_utc(ws.clock.now()),
        )
    )


@router.get("/{name}")
async def stats(name: str, ws: WorkspaceDep) -> dict:
    return await run_in_threadpool(service.stats, ws, name)


@router.get("/{name}/simulation")
async def simulation(
    name: str,
    ws: WorkspaceDep,
    date_from: date = Query(alias="from"),
    date_to: date = Query(alias="to"),
    step_hours: float | None = Query(None, gt=0),
) -> dict:
    """Replay history through the journey, writing nothing: entries, messages per week, guards that fire."""
    step = timedelta(hours=step_hours) if step_hours else None
    return await run_in_threadpool(lambda: simulate(ws, name, date_from=date_from, date_to=date_to, step=step))


@router.post("/{name}/activate")
async def activate(name: str, ws: WorkspaceDep) -> dict:
    return await run_in_threadpool(service.set_status, ws, name, "active")


@router.post("/{name}/pause")
async def pause(name: str, ws: WorkspaceDep) -> dict:
    return await run_in_threadpool(service.set_status, ws, name, "paused")


@router.post("/{name}/enter")
async def enter(name: str, entry: Entry, ws: WorkspaceDep) -> dict:
    """The manual or API trigger."""
    return await run_in_threadpool(lambda: service.enter_manually(ws, name, entry.customer_id, key=entry.key))
