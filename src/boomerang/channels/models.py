"""Channels in the operational store: each channel's provider and settings, and what the in-store
channels keep (the in-app inbox, browsers' push subscriptions, the sandbox's record)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from boomerang.db import Base, BigInt


class ChannelSetting(Base):
    """One channel's provider and configuration; secret fields are stored encrypted (channels.config)."""

    __tablename__ = "channel_settings"

    channel: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(32))  # smtp, telegram, generic, twilio, vapid, sandbox...
    enabled: Mapped[bool] = mapped_column(default=True)
    config: Mapped[dict[str, Any]]  # secrets as {"encrypted": "<fernet token>"}
    updated_at: Mapped[datetime]


class InboxItem(Base):
    """An in-app message waiting for the customer's app to fetch it."""

    __tablename__ = "inbox_items"
    __table_args__ = (sa.Index("ix_inbox_items_customer", "customer_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    message_key: Mapped[str] = mapped_column(sa.String(200), unique=True)  # one item per message, ever
    message_id: Mapped[int] = mapped_column(BigInt)
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    title: Mapped[str] = mapped_column(sa.String(255), default="")
    body: Mapped[str] = mapped_column(sa.Text(), default="")
    url: Mapped[str | None] = mapped_column(sa.Text())
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    clicked_at: Mapped[datetime | None]


class PushSubscription(Base):
    """A browser's web push subscription (the PushSubscription JSON of the Push API)."""

    __tablename__ = "push_subscriptions"

    endpoint: Mapped[str] = mapped_column(sa.String(1000), primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    p256dh: Mapped[str] = mapped_column(sa.String(200))
    auth: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime]


class FakeChannelLog(Base):
    """Every message the sandbox was given. No unique key, on purpose: a second send would show."""

    __tablename__ = "fake_channel_log"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True, autoincrement=True)
    message_key: Mapped[str] = mapped_column(sa.String(200))
    channel: Mapped[str] = mapped_column(sa.String(16))
    customer_id: Mapped[str] = mapped_column(sa.String(40))
    address: Mapped[str | None] = mapped_column(sa.String(320))
    template: Mapped[str] = mapped_column(sa.String(200))
    at: Mapped[datetime]
