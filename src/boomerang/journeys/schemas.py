"""Typed inputs and outputs of the journeys API (definitions come in as data, validated by definition.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Entry(BaseModel):
    customer_id: str
    key: str | None = None
    test: bool = Field(default=False, description="a test run: any status, no rules, not in the results")
    speed: float = Field(default=60, ge=1, le=86400, description="a test run's waits are this many times shorter")


class Decision(BaseModel):
    approved: bool
    by: str
    template: str | None = None


# -- outputs ---------------------------------------------------------------------------------------


class JourneyOut(BaseModel):
    name: str
    title: str
    status: str
    version: int
    trigger: dict[str, Any]
    category: str
    updated_at: str


class JourneySaved(JourneyOut):
    changed: bool


class JourneyListed(JourneyOut):
    running: int


class JourneyList(BaseModel):
    items: list[JourneyListed]


class Validated(BaseModel):
    valid: bool
    name: str
    nodes: int


class PendingApproval(BaseModel):
    key: str
    journey: str
    node: str
    customer_id: str
    note: str
    instance_id: str
    created_at: str


class ApprovalQueue(BaseModel):
    items: list[PendingApproval]


class Decided(BaseModel):
    approval: str
    status: str
    instance: str
    node: str
    instance_status: str


class Entered(BaseModel):
    journey: str
    customer_id: str
    instance: str | None
    reason: str | None
    test: bool = False


class Installed(BaseModel):
    items: list[JourneySaved]
