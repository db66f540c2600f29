"""Retention metrics as JSON: the catalogue, one metric for a period, and storing per-customer results."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import WorkspaceDep
from boomerang.metrics import rolled, service

router = APIRouter(prefix="/metrics", tags=["metrics"])


@router.get("")
def index() -> dict:
    return {"items": service.catalogue()}


def _params(date_from, date_to, interval, window_days, steps, category, window_hours) -> dict:
    return {
        "date_from": date_from,
        "date_to": date_to,
        "interval": interval,
        "window_days": window_days,
        "steps": steps,
        "category": category,
        "window_hours": window_hours,
    }


def _for(name: str, params: dict) -> dict:
    fields = service.metric(name).query_type.model_fields
    return {k: v for k, v in params.items() if k in fields}


@router.get("/{name}")
async def calculate(
    name: str,
    ws: WorkspaceDep,
    date_from: Annotated[date | None, Query(alias="from", description="first day")] = None,
    date_to: Annotated[date | None, Query(alias="to", description="last day, included")] = None,
    interval: str = "month",
    window_days: int | None = None,
    steps: Annotated[list[str] | None, Query()] = None,
    category: str | None = None,
    window_hours: int | None = None,
) -> dict:
    """One metric over the period (`value`, `details`) and per interval (`series`)."""
    params = _for(name, _params(date_from, date_to, interval, window_days, steps, category, window_hours))
    return await run_in_threadpool(rolled.answer, ws.uow, ws.log, name, params)


@router.post("/{name}/traits")
async def store(
    name: str,
    ws: WorkspaceDep,
    date_to: Annotated[date | None, Query(alias="to", description="as of this day")] = None,
    window_days: int | None = None,
) -> dict:
    """Compute and store each customer's result (rfm, lifecycle); lifecycle also logs its transitions."""
    params = _for(name, {"date_to": date_to, "window_days": window_days})
    return await run_in_threadpool(lambda: service.store_traits(ws.uow, ws.log, name, params, now=ws.now()))
