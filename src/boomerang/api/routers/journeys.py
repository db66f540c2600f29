"""Journeys as JSON: definitions (versioned), activation, manual entry, stats, the approval queue."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Body, Query
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import SessionDep, WorkspaceDep
from boomerang.journeys import library, runtime, service
from boomerang.journeys.definition import parse_journey
from boomerang.journeys.schemas import (
    ApprovalQueue,
    Decided,
    Decision,
    Entered,
    Entry,
    Installed,
    JourneyList,
    JourneyOut,
    JourneySaved,
    Validated,
)
from boomerang.journeys.simulate import simulate

router = APIRouter(prefix="/journeys", tags=["journeys"])


@router.get("", response_model=JourneyList)
def index(session: SessionDep) -> dict:
    return {"items": service.list_journeys(session)}


@router.post("", status_code=201, response_model=JourneySaved)
def save(ws: WorkspaceDep, session: SessionDep, definition: dict[str, Any] = Body(...)) -> dict:
    """Create a journey (a draft), or a new version when its definition changed."""
    return service.save(session, definition, now=ws.now())


@router.post("/validate", response_model=Validated)
async def validate(definition: dict[str, Any] = Body(...)) -> dict:
    journey = parse_journey(definition)
    return {"valid": True, "name": journey.name, "nodes": len(journey.nodes)}


@router.post("/library", response_model=Installed)
def install(ws: WorkspaceDep, session: SessionDep) -> dict:
    """Save the ready-made journeys as drafts."""
    return {"items": library.install(session, now=ws.now())}


@router.get("/approvals", response_model=ApprovalQueue)
def approvals(session: SessionDep) -> dict:
    return {"items": service.pending_approvals(session)}


@router.post("/approvals/{key}", response_model=Decided)
def decide(key: str, decision: Decision, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Approve (optionally with another template) or reject a step waiting for a person."""
    return runtime.decide(
        session, key, approved=decision.approved, by=decision.by, template=decision.template, now=ws.now()
    )


@router.get("/{name}")
def stats(name: str, session: SessionDep) -> dict:
    return service.stats(session, name)


@router.get("/{name}/results")
def results(name: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    """The journey against its control group and the global one, per send node and per split variant: conversion
    and revenue per customer with always-valid intervals, verdicts, the lift over time and the sample-ratio check."""
    return service.results(session, name, global_control_share=ws.settings.guards.global_control_share)


@router.get("/{name}/simulation")
async def simulation(
    name: str,
    ws: WorkspaceDep,
    date_from: date = Query(alias="from"),
    date_to: date = Query(alias="to"),
    step_hours: float | None = Query(None, gt=0, le=24 * 365),
) -> dict:
    """Replay history through the journey, writing nothing: entries, messages per week, guards that fire."""
    step = timedelta(hours=step_hours) if step_hours else None
    return await run_in_threadpool(
        lambda: simulate(ws.segments, ws.settings.guards, name, date_from=date_from, date_to=date_to, step=step)
    )


@router.post("/{name}/activate", response_model=JourneyOut)
def activate(name: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    return service.set_status(session, name, "active", now=ws.now())


@router.post("/{name}/pause", response_model=JourneyOut)
def pause(name: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    return service.set_status(session, name, "paused", now=ws.now())


@router.post("/{name}/enter", response_model=Entered)
def enter(name: str, entry: Entry, ws: WorkspaceDep, session: SessionDep) -> dict:
    """The manual or API trigger; with `test`, a test run for one customer (waits `speed` times shorter)."""
    speed = entry.speed if entry.test else None
    return runtime.enter_manually(session, name, entry.customer_id, key=entry.key, test_speed=speed, now=ws.now())
