"""Typed inputs of the channels: a channel's settings, a browser's push subscription."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ChannelSettings(BaseModel):
    provider: str
    config: dict[str, Any] = {}
    enabled: bool = True


class Keys(BaseModel):
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)


class BrowserSubscription(BaseModel):
    """The browser's PushSubscription.toJSON()."""

    endpoint: str = Field(max_length=1000)
    keys: Keys


class Subscribe(BaseModel):
    userId: str | None = Field(default=None, max_length=255)
    anonymousId: str | None = Field(default=None, max_length=255)
    writeKey: str | None = None
    subscription: BrowserSubscription


class Unsubscribe(BaseModel):
    endpoint: str = Field(max_length=1000)
    writeKey: str | None = None


# -- outputs ---------------------------------------------------------------------------------------


class ChannelOut(BaseModel):
    """A channel's provider and settings, secrets masked."""

    channel: str
    provider: str
    enabled: bool
    config: dict[str, Any]
    providers: list[str]
    updated_at: str | None


class ChannelList(BaseModel):
    items: list[ChannelOut]
