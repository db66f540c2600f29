"""Achievements and missions: the definitions (list, create, edit, turn on and off, archive; the ready-made ones
listed off until stored), a customer's progress and badges, and recounting from history."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from boomerang.api.deps import SessionDep, WorkspaceDep
from boomerang.loyalty import achievements_store as store
from boomerang.loyalty import checkout
from boomerang.loyalty.achievements_rules import KEY_PATTERN, Definition
from boomerang.loyalty.schemas import AchievementProgress
from boomerang.orchestration import achievements as history

router = APIRouter(prefix="/loyalty", tags=["loyalty achievements"])


class DefinitionEdit(Definition):
    """An achievement's new definition; its key is the one in the path."""

    key: str | None = Field(default=None, pattern=KEY_PATTERN)


class RebuildIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[str] | None = Field(default=None, description="only these achievements (default: every one on)")
    tell: bool = Field(default=False, description="log an Achievement Earned event for each one earned")


class CustomerAchievements(BaseModel):
    customer_id: str
    items: list[AchievementProgress]


@router.get("/achievements")
def list_achievements(session: SessionDep, archived: bool = False) -> list[dict]:
    """Every achievement (stored, then ready-made ones not stored yet, off) with how many customers earned it."""
    return store.catalogue(session, archived=archived)


@router.post("/achievements")
def create(body: Definition, ws: WorkspaceDep, session: SessionDep) -> dict:
    """A new achievement; 409 if the key is taken. Off unless `active` is true."""
    return store.create(session, body.model_dump(), now=ws.now())


@router.post("/achievements/rebuild")
def rebuild(body: RebuildIn, ws: WorkspaceDep) -> dict:
    """Recount the progress of those who have not earned yet from the event log, and award what that earns."""
    return history.rebuild(ws, body.keys, tell=body.tell)


@router.get("/achievements/{key}")
def show(key: str, session: SessionDep) -> dict:
    return store.show(session, key)


@router.put("/achievements/{key}")
def update(key: str, body: DefinitionEdit, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Replace the definition; a changed condition forgets unearned progress (`reset`), earned badges stay."""
    return store.update(session, key, body.model_dump(exclude={"key"}), now=ws.now())


@router.post("/achievements/{key}/activate")
def activate(key: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Turn it on: events from now count towards it (`rebuild` counts the past)."""
    return store.set_active(session, key, True, now=ws.now())


@router.post("/achievements/{key}/deactivate")
def deactivate(key: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    return store.set_active(session, key, False, now=ws.now())


@router.post("/achievements/{key}/archive")
def archive(key: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Retire it: it counts no more; badges earned stay."""
    return store.archive(session, key, now=ws.now())


@router.get("/customers/{customer_id}/achievements", response_model=CustomerAchievements)
def customer_achievements(customer_id: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    """The customer's progress towards every achievement on, and every badge they earned."""
    cid = checkout.customer(session, customer_id)
    return {"customer_id": cid, "items": store.progress(session, cid, now=ws.now())}
