"""Typed inputs and outputs of the messaging API (templates and campaigns come in as data, validated by
service.py and campaigns.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class TestSend(BaseModel):
    channel: str
    customer_id: str
    template: str


class Preview(BaseModel):
    template: str | dict[str, Any]
    customer_id: str | None = None
    channels: list[str] | None = None


class PreferenceChange(BaseModel):
    channels: dict[str, bool] | None = None
    topics: dict[str, bool] | None = None
    frequency: str | None = None


class Schedule(BaseModel):
    at: datetime | None = None


# -- outputs ---------------------------------------------------------------------------------------


class TemplateOut(BaseModel):
    name: str
    title: str
    topic: str | None
    default_locale: str
    locales: dict[str, Any]
    version: int
    updated_at: str


class TemplateListed(BaseModel):
    name: str
    title: str
    topic: str | None
    locales: list[str]
    channels: list[str]
    version: int
    updated_at: str


class TemplateList(BaseModel):
    items: list[TemplateListed]


class Installed(BaseModel):
    items: list[str]


class SendOutcome(BaseModel):
    """What became of a test send."""

    key: str
    status: str
    channel: str | None
    reason: str | None
    provider_id: str | None


class Preferences(BaseModel):
    customer_id: str
    channels: dict[str, bool]
    topics: dict[str, bool]
    frequency: str


class InboxToken(BaseModel):
    customer_id: str
    token: str
    url: str


class CampaignSummary(BaseModel):
    name: str
    title: str
    status: str
    segment: str
    variants: list[str]
    channels: list[str]
    scheduled_for: str | None
    started_at: str | None
    audience: int | None


class CampaignOut(CampaignSummary):
    definition: dict[str, Any]


class CampaignList(BaseModel):
    items: list[CampaignSummary]
