"""The workspace summary."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from boomerang.api.deps import WorkspaceDep
from boomerang.orchestration.status import summary

router = APIRouter(tags=["status"])


@router.get("/status")
async def status(ws: WorkspaceDep) -> dict:
    return await run_in_threadpool(summary, ws.uow, ws.log)
