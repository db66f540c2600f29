"""Typed outputs of the segments API (definitions come in as JSON or YAML data, parsed by definition.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class SegmentOut(BaseModel):
    name: str
    title: str
    description: str
    version: int
    rule: Any
    triggers: list[str]
    expires: bool
    size: int | None
    refreshed_at: str | None
    updated_at: str


class SegmentSaved(SegmentOut):
    changed: bool


class SegmentCurrent(SegmentOut):
    members: int


class SegmentList(BaseModel):
    items: list[SegmentOut]


class Preview(BaseModel):
    name: str
    as_of: str
    size: int
    customers: int
    share: float | None
    sample: list[str]
    seconds: float


class MembersPage(BaseModel):
    total: int
    items: list[str]


class SizePoint(BaseModel):
    at: str
    size: int
    entered: int
    exited: int


class SizeHistory(BaseModel):
    items: list[SizePoint]


class Installed(BaseModel):
    items: list[SegmentSaved]
