"""Typed inputs and outputs of the keys API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["write", "secret", "identity"]
    name: str = Field(default="", max_length=255)


class KeyOut(BaseModel):
    """A key as listed: never its value, only its first characters."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str  # shown once


class KeyList(BaseModel):
    items: list[KeyOut]
