"""Predicted CLV and churn as JSON: the fitted models, per-customer predictions, storing them, their evaluation."""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import Offset, WorkspaceDep
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.predictions import backtest, service

router = APIRouter(prefix="/clv", tags=["clv"])

Until = Annotated[date | None, Query(description="end of calibration, included (default: the last purchase)")]


def _row(record: dict) -> dict:
    """A prediction row as JSON: dates as YYYY-MM-DD, missing values (no next purchase) as null."""
    out = {}
    for key, value in record.items():
        if value is None or (isinstance(value, float) and not math.isfinite(value)) or value is pd.NaT:
            out[key] = None
        elif isinstance(value, pd.Timestamp):
            out[key] = value.date().isoformat()
        else:
            out[key] = value.item() if hasattr(value, "item") else value
    return out


@router.get("/model")
async def model(ws: WorkspaceDep, until: Until = None, unit: str = "week") -> dict:
    """BG/NBD (r, alpha, a, b) and Gamma-Gamma (p, q, gamma) fitted on the purchases up to `until`."""
    return await run_in_threadpool(lambda: service.fit(ws.uow, ws.log, until=until, unit=unit))


def _predict(ws, until, unit, horizon_days, churn) -> tuple[dict, pd.DataFrame]:
    return service.predict(ws.uow, ws.log, until=until, unit=unit, horizon_days=horizon_days, churn=churn)


@router.get("/predictions")
async def predictions(
    ws: WorkspaceDep,
    until: Until = None,
    unit: str = "week",
    horizon_days: int = 90,
    churn: bool = True,
    limit: int = Query(100, ge=1, le=10000),
    offset: Offset = 0,
    order: str = Query("predicted_clv", description="a prediction column; highest first"),
) -> dict:
    """One page of per-customer predictions, highest `order` first, with the model they came from."""
    info, frame = await run_in_threadpool(_predict, ws, until, unit, horizon_days, churn)
    if order not in frame:
        raise ValidationFailed([{"field": "order", "reason": f"unknown column (one of {', '.join(frame.columns)})"}])
    page = frame.sort_values([order, "customer_id"], ascending=[False, True]).iloc[offset : offset + limit]
    return {"model": info, "total": len(frame), "items": [_row(r) for r in page.to_dict("records")]}


@router.get("/predictions/{customer_id}")
async def customer(
    customer_id: str,
    ws: WorkspaceDep,
    until: Until = None,
    unit: str = "week",
    horizon_days: int = 90,
    churn: bool = True,
) -> dict:
    """One customer's predictions, by our id or the shop's own (external_id); 404 when they made no purchase up to `until`."""
    info, frame = await run_in_threadpool(_predict, ws, until, unit, horizon_days, churn)
    found = frame[(frame["customer_id"] == customer_id) | (frame["external_id"] == customer_id)]
    if found.empty:
        raise NotFound(f"customer {customer_id!r} made no purchase up to {info['until']}", field="customer_id")
    return {"model": info, **_row(found.iloc[0].to_dict())}


@router.post("/predictions")
async def store(
    ws: WorkspaceDep, until: Until = None, unit: str = "week", horizon_days: int = 90, churn: bool = True
) -> dict:
    """Compute and store every customer's predictions as the `predictions` traits."""
    info, frame = await run_in_threadpool(_predict, ws, until, unit, horizon_days, churn)
    stored = await run_in_threadpool(service.store, ws.log, frame)
    return {"model": info, "trait": service.TRAIT, "customers": stored}


@router.get("/evaluation")
async def evaluation(ws: WorkspaceDep, cutoff: date, horizon_weeks: int = 13, unit: str = "week") -> dict:
    """Forecasts of the `horizon_weeks` after `cutoff` against what happened, beside BG/NBD, recency and frequency."""
    return await run_in_threadpool(
        lambda: backtest.evaluate(ws.uow, ws.log, cutoff=cutoff, horizon_weeks=horizon_weeks, unit=unit)
    )


@router.get("/evaluation/last")
async def last_evaluation(ws: WorkspaceDep) -> dict:
    """The workspace's last stored evaluation (`clv evaluate` or the dashboard's predictions page), with its date."""
    found = backtest.last(ws.settings.home)
    if found is None:
        raise NotFound("no evaluation stored yet: run `boomerang clv evaluate --cutoff D`", field="evaluation")
    return found
