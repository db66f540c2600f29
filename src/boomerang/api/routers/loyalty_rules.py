"""The programme's earn rules: the version in force, its history, a new version, and a dry run of proposed rules
against a past period (what they would have awarded and cost, beside the rules in force)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from boomerang.api.deps import SessionDep, WorkspaceDep
from boomerang.core.clock import naive_utc
from boomerang.loyalty import rule_versions
from boomerang.loyalty.rules import EarnRules
from boomerang.orchestration import loyalty_dry_run

router = APIRouter(prefix="/loyalty/rules", tags=["loyalty rules"])


class RulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: EarnRules
    note: str = Field(default="", max_length=500, description="why it changed")


class DryRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: EarnRules
    since: datetime | None = Field(default=None, description="default: `days` before until")
    until: datetime | None = Field(default=None, description="default: now")
    days: int = Field(default=90, ge=1, le=loyalty_dry_run.MAX_DAYS)


@router.get("")
def current(ws: WorkspaceDep, session: SessionDep) -> dict[str, Any]:
    """The rules in force and their version (0: the settings' cashback, before any change)."""
    version, rules = rule_versions.current(session, ws.settings.loyalty)
    return {"version": version, "rules": rules.model_dump(mode="json")}


@router.put("")
def replace(body: RulesIn, ws: WorkspaceDep, session: SessionDep) -> dict[str, Any]:
    """Put new rules in force as the next version."""
    return rule_versions.save(session, body.rules, note=body.note, author="api", now=ws.now())


@router.get("/versions")
def versions(session: SessionDep) -> list[dict[str, Any]]:
    """Every version, newest first (without its rules)."""
    return rule_versions.listing(session)


@router.get("/versions/{version}")
def version(version: int, session: SessionDep) -> dict[str, Any]:
    return rule_versions.get(session, version)


@router.post("/dry-run")
def dry_run(body: DryRunIn, ws: WorkspaceDep) -> dict[str, Any]:
    """What `rules` would have awarded and cost over the period, beside the rules in force. Writes nothing."""
    until = naive_utc(body.until) if body.until else ws.now()
    since = naive_utc(body.since) if body.since else until - timedelta(days=body.days)
    return loyalty_dry_run.run(ws.uow, ws.log, body.rules, since=since, until=until, settings=ws.settings.loyalty)
